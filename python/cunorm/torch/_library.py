"""The native calls of _ops as torch operators (namespace ``cunorm``), so that torch.compile
treats each as one opaque op: registered with torch.library.custom_op where torch has it (2.4 and
later), each with a fake implementation that gives the outputs' shapes, dtypes and strides
without running anything. On older torch these are _ops' plain functions. functional.py's
autograd.Functions call the names below, whichever they are.

Operators return tensors only: a gradient that is not wanted (or of a parameter that is absent)
comes back as an empty tensor, which the autograd.Functions turn into None (`wanted_or_none`)."""

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from . import _ops

__all__ = [
    "registered",
    "layer_norm_forward",
    "layer_norm_backward",
    "rms_norm_forward",
    "rms_norm_backward",
    "batch_norm_forward_training",
    "batch_norm_forward_inference",
    "batch_norm_backward",
    "batch_norm_backward_inference",
    "wanted_or_none",
]

# Whether the names below are torch operators (torch.ops.cunorm.*).
registered = hasattr(torch.library, "custom_op")


def wanted_or_none(gradient: Tensor, wanted: bool) -> Optional[Tensor]:
    """An operator's parameter gradient as autograd takes it: None where it was not wanted."""
    return gradient if wanted else None


def _gradient_or_empty(gradient: Optional[Tensor], like: Tensor) -> Tensor:
    return gradient if gradient is not None else like.new_empty(0)


def _rows(input: Tensor, cols: int) -> int:
    return input.numel() // cols


def _dense_like(input: Tensor) -> Tensor:
    return torch.empty_like(input, memory_format=torch.contiguous_format)


def _floats(count: int, like: Tensor) -> Tensor:
    return like.new_empty(count, dtype=torch.float32)


def _parameter_gradient(param: Optional[Tensor], wanted: bool, like: Tensor) -> Tensor:
    return torch.empty_like(param, memory_format=torch.contiguous_format) if param is not None and wanted else like.new_empty(0)


# ---- the eager implementations, with the operators' signatures ---------------------------------


def _layer_norm_forward(
    input: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], cols: int, eps: float
) -> Tuple[Tensor, Tensor, Tensor]:
    return _ops.layer_norm_forward(input, weight, bias, cols, eps)


def _layer_norm_backward(
    grad_output: Tensor,
    input: Tensor,
    mean: Tensor,
    rstd: Tensor,
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    cols: int,
    weight_wanted: bool,
    bias_wanted: bool,
) -> Tuple[Tensor, Tensor, Tensor]:
    dx, dweight, dbias = _ops.layer_norm_backward(
        grad_output, input, mean, rstd, weight, bias, cols, (weight_wanted, bias_wanted)
    )
    return dx, _gradient_or_empty(dweight, input), _gradient_or_empty(dbias, input)


def _rms_norm_forward(input: Tensor, weight: Optional[Tensor], cols: int, eps: float) -> Tuple[Tensor, Tensor]:
    return _ops.rms_norm_forward(input, weight, cols, eps)


def _rms_norm_backward(
    grad_output: Tensor, input: Tensor, rrms: Tensor, weight: Optional[Tensor], cols: int, weight_wanted: bool
) -> Tuple[Tensor, Tensor]:
    dx, dweight = _ops.rms_norm_backward(grad_output, input, rrms, weight, cols, weight_wanted)
    return dx, _gradient_or_empty(dweight, input)


def _batch_norm_forward_training(
    input: Tensor,
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    running_mean: Optional[Tensor],
    running_var: Optional[Tensor],
    layout: int,
    momentum: float,
    eps: float,
) -> Tuple[Tensor, Tensor, Tensor]:
    return _ops.batch_norm_forward_training(input, weight, bias, running_mean, running_var, layout, momentum, eps)


def _batch_norm_forward_inference(
    input: Tensor,
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    running_mean: Tensor,
    running_var: Tensor,
    layout: int,
    eps: float,
) -> Tensor:
    return _ops.batch_norm_forward_inference(input, weight, bias, running_mean, running_var, layout, eps)


def _batch_norm_backward(
    grad_output: Tensor,
    input: Tensor,
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    saved_mean: Tensor,
    saved_invstd: Tensor,
    layout: int,
    weight_wanted: bool,
    bias_wanted: bool,
) -> Tuple[Tensor, Tensor, Tensor]:
    dx, dweight, dbias = _ops.batch_norm_backward(
        grad_output, input, weight, bias, saved_mean, saved_invstd, layout, (weight_wanted, bias_wanted)
    )
    return dx, _gradient_or_empty(dweight, input), _gradient_or_empty(dbias, input)


def _batch_norm_backward_inference(
    grad_output: Tensor,
    input: Tensor,
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    running_mean: Tensor,
    running_var: Tensor,
    layout: int,
    eps: float,
    weight_wanted: bool,
    bias_wanted: bool,
) -> Tuple[Tensor, Tensor, Tensor]:
    dx, dweight, dbias = _ops.batch_norm_backward_inference(
        grad_output, input, weight, bias, running_mean, running_var, layout, eps, (weight_wanted, bias_wanted)
    )
    return dx, _gradient_or_empty(dweight, input), _gradient_or_empty(dbias, input)


# ---- fake implementations: the outputs' metadata, as the eager implementations allocate them ----


def _layer_norm_forward_fake(input, weight, bias, cols, eps):  # type: ignore[no-untyped-def]
    rows = _rows(input, cols)
    return _dense_like(input), _floats(rows, input), _floats(rows, input)


def _layer_norm_backward_fake(grad_output, input, mean, rstd, weight, bias, cols, weight_wanted, bias_wanted):  # type: ignore[no-untyped-def]
    return (
        _dense_like(input),
        _parameter_gradient(weight, weight_wanted, input),
        _parameter_gradient(bias, bias_wanted, input),
    )


def _rms_norm_forward_fake(input, weight, cols, eps):  # type: ignore[no-untyped-def]
    return _dense_like(input), _floats(_rows(input, cols), input)


def _rms_norm_backward_fake(grad_output, input, rrms, weight, cols, weight_wanted):  # type: ignore[no-untyped-def]
    return _dense_like(input), _parameter_gradient(weight, weight_wanted, input)


def _batch_norm_forward_training_fake(input, weight, bias, running_mean, running_var, layout, momentum, eps):  # type: ignore[no-untyped-def]
    channels = input.shape[1]
    return torch.empty_like(input), _floats(channels, input), _floats(channels, input)


def _batch_norm_forward_inference_fake(input, weight, bias, running_mean, running_var, layout, eps):  # type: ignore[no-untyped-def]
    return torch.empty_like(input)


def _batch_norm_backward_fake(grad_output, input, weight, bias, saved_mean, saved_invstd, layout, weight_wanted, bias_wanted):  # type: ignore[no-untyped-def]
    return (
        torch.empty_like(input),
        _parameter_gradient(weight, weight_wanted, input),
        _parameter_gradient(bias, bias_wanted, input),
    )


def _batch_norm_backward_inference_fake(  # type: ignore[no-untyped-def]
    grad_output, input, weight, bias, running_mean, running_var, layout, eps, weight_wanted, bias_wanted
):
    return (
        torch.empty_like(input),
        _parameter_gradient(weight, weight_wanted, input),
        _parameter_gradient(bias, bias_wanted, input),
    )


def _operator(name: str, eager: Callable, fake: Callable, mutates: Tuple[str, ...] = ()) -> Callable:
    """cunorm::name as a torch operator running `eager`, with `fake` for tracing; or `eager`
    itself where torch cannot register operators."""
    if not registered:
        return eager
    op = torch.library.custom_op(f"cunorm::{name}", eager, mutates_args=mutates)
    op.register_fake(fake)
    return op


layer_norm_forward = _operator("layer_norm_forward", _layer_norm_forward, _layer_norm_forward_fake)
layer_norm_backward = _operator("layer_norm_backward", _layer_norm_backward, _layer_norm_backward_fake)
rms_norm_forward = _operator("rms_norm_forward", _rms_norm_forward, _rms_norm_forward_fake)
rms_norm_backward = _operator("rms_norm_backward", _rms_norm_backward, _rms_norm_backward_fake)
batch_norm_forward_training = _operator(
    "batch_norm_forward_training",
    _batch_norm_forward_training,
    _batch_norm_forward_training_fake,
    mutates=("running_mean", "running_var"),
)
batch_norm_forward_inference = _operator(
    "batch_norm_forward_inference", _batch_norm_forward_inference, _batch_norm_forward_inference_fake
)
batch_norm_backward = _operator("batch_norm_backward", _batch_norm_backward, _batch_norm_backward_fake)
batch_norm_backward_inference = _operator(
    "batch_norm_backward_inference", _batch_norm_backward_inference, _batch_norm_backward_inference_fake
)
