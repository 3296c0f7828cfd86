"""cunorm's ops with torch.nn.functional's signatures and semantics: layer_norm, rms_norm and
batch_norm, differentiable once (input, weight and bias) through autograd.

Inputs cunorm does not serve (float64, other devices, a non-contiguous input that is not
channels-last, a parameter dtype that is neither float32 nor the input's) run torch's own
implementation instead, or raise RuntimeError when CUNORM_TORCH_STRICT=1. Invalid arguments raise
the exception type torch raises, before anything is written."""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as torch_functional
from torch import Tensor

from . import _library, _ops
from ._backend import Unsupported, fall_back

__all__ = ["layer_norm", "rms_norm", "batch_norm"]

_ShapeLike = Union[int, Sequence[int], torch.Size]


def _normalized_shape(normalized_shape: _ShapeLike) -> Tuple[int, ...]:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    try:
        shape = tuple(normalized_shape)
    except TypeError:
        raise TypeError(f"normalized_shape must be an int or a sequence of ints, got {normalized_shape!r}") from None
    if not all(isinstance(d, numbers.Integral) for d in shape):
        raise TypeError(f"normalized_shape must be an int or a sequence of ints, got {normalized_shape!r}")
    return tuple(int(d) for d in shape)


def _check_tensor(name: str, value: object, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, Tensor):
        kind = "a Tensor or None" if optional else "a Tensor"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")


def _check_row_norm(op: str, input: Tensor, shape: Tuple[int, ...], params: Sequence[Tuple[str, Optional[Tensor]]]) -> None:
    """Raises what torch raises for a bad row-norm call (TypeError, RuntimeError)."""
    _check_tensor("input", input, optional=False)
    for name, param in params:
        _check_tensor(name, param, optional=True)
    if len(shape) == 0 or any(d <= 0 for d in shape):
        raise RuntimeError(f"{op}: normalized_shape must be non-empty with every size > 0, got {list(shape)}")
    if input.dim() < len(shape) or tuple(input.shape[input.dim() - len(shape) :]) != shape:
        raise RuntimeError(
            f"{op}: normalized_shape {list(shape)} must be the trailing sizes of the input, got input of size "
            f"{list(input.shape)}"
        )
    for name, param in params:
        if param is None:
            continue
        if tuple(param.shape) != shape:
            raise RuntimeError(f"{op}: {name} must have shape {list(shape)}, got {list(param.shape)}")
        if param.device != input.device:
            raise RuntimeError(f"{op}: {name} is on {param.device} but input is on {input.device}")


def _served_row_norm(input: Tensor, params: Sequence[Optional[Tensor]]) -> None:
    """Unsupported unless the row-norm kernels serve these tensors as they are."""
    _ops.check_activation(input)
    if not input.is_contiguous():
        raise Unsupported("input is not contiguous")
    _ops.param_dtype(input, params)


class _LayerNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], cols: int, eps: float) -> Tensor:  # type: ignore[override]
        y, mean, rstd = _library.layer_norm_forward(input, weight, bias, cols, eps)
        ctx.save_for_backward(input, weight, bias, mean, rstd)
        ctx.cols = cols
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        input, weight, bias, mean, rstd = ctx.saved_tensors
        wanted = ctx.needs_input_grad
        dx, dweight, dbias = _library.layer_norm_backward(
            grad_output.contiguous(), input, mean, rstd, weight, bias, ctx.cols, wanted[1], wanted[2]
        )
        return dx, _library.wanted_or_none(dweight, wanted[1]), _library.wanted_or_none(dbias, wanted[2]), None, None


class _RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input: Tensor, weight: Optional[Tensor], cols: int, eps: float) -> Tensor:  # type: ignore[override]
        y, rrms = _library.rms_norm_forward(input, weight, cols, eps)
        ctx.save_for_backward(input, weight, rrms)
        ctx.cols = cols
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        input, weight, rrms = ctx.saved_tensors
        wanted = ctx.needs_input_grad[1]
        dx, dweight = _library.rms_norm_backward(grad_output.contiguous(), input, rrms, weight, ctx.cols, wanted)
        return dx, _library.wanted_or_none(dweight, wanted), None, None


def _autocast_float32(input: Tensor, *params: Optional[Tensor]) -> Tuple[Tensor, ...]:
    """torch.autocast runs layer_norm (and rms_norm) in float32 on CUDA: the same here."""
    if input.is_cuda and torch.is_autocast_enabled():
        return tuple(None if t is None else t.float() for t in (input, *params))  # type: ignore[misc]
    return (input, *params)  # type: ignore[return-value]


def layer_norm(
    input: Tensor,
    normalized_shape: _ShapeLike,
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    eps: float = 1e-5,
) -> Tensor:
    """torch.nn.functional.layer_norm: normalizes over the trailing dimensions normalized_shape,
    y = (x - mean) * rstd * weight + bias with rstd = 1/sqrt(var + eps), var biased.

    Statistics are Welford/Chan merges in float32; y has the input's dtype; weight and bias are
    float32 or the input's dtype (both the same)."""
    shape = _normalized_shape(normalized_shape)
    _check_row_norm("layer_norm", input, shape, (("weight", weight), ("bias", bias)))
    input, weight, bias = _autocast_float32(input, weight, bias)
    try:
        _served_row_norm(input, (weight, bias))
        _ops.check_eps(eps)
    except Unsupported as reason:
        return fall_back("layer_norm", reason, torch_functional.layer_norm, input, shape, weight, bias, eps)
    cols = 1
    for d in shape:
        cols *= d
    return _LayerNormFunction.apply(input, weight, bias, cols, float(eps))


def _torch_rms_norm(input: Tensor, shape: Tuple[int, ...], weight: Optional[Tensor], eps: float) -> Tensor:
    """torch's RMSNorm where torch has one (2.4 and later), else its definition in torch ops,
    computed in float32 (float64 for float64 inputs) as torch does."""
    native = getattr(torch_functional, "rms_norm", None)
    if native is not None:
        return native(input, list(shape), weight, eps)
    compute = torch.float64 if input.dtype == torch.float64 else torch.float32
    x = input.to(compute)
    dims = tuple(range(input.dim() - len(shape), input.dim()))
    y = x * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + eps)
    if weight is not None:
        y = y * weight.to(compute)
    return y.to(input.dtype if weight is None else torch.promote_types(input.dtype, weight.dtype))


def rms_norm(
    input: Tensor,
    normalized_shape: _ShapeLike,
    weight: Optional[Tensor] = None,
    eps: Optional[float] = None,
) -> Tensor:
    """torch.nn.functional.rms_norm (torch 2.4): y = x * rrms * weight over the trailing dimensions
    normalized_shape, rrms = 1/sqrt(mean(x^2) + eps); eps=None is torch.finfo(input.dtype).eps."""
    shape = _normalized_shape(normalized_shape)
    _check_row_norm("rms_norm", input, shape, (("weight", weight),))
    input, weight = _autocast_float32(input, weight)
    if eps is None:
        eps = torch.finfo(input.dtype).eps if input.is_floating_point() else torch.finfo(torch.float32).eps
    try:
        _served_row_norm(input, (weight,))
        _ops.check_eps(eps)
    except Unsupported as reason:
        return fall_back("rms_norm", reason, _torch_rms_norm, input, shape, weight, eps)
    cols = 1
    for d in shape:
        cols *= d
    return _RMSNormFunction.apply(input, weight, cols, float(eps))


class _BatchNormTrainingFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, running_mean, running_var, layout, momentum, eps):  # type: ignore[override]
        y, saved_mean, saved_invstd = _library.batch_norm_forward_training(
            input, weight, bias, running_mean, running_var, layout, momentum, eps
        )
        ctx.save_for_backward(input, weight, bias, saved_mean, saved_invstd)
        ctx.layout = layout
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        input, weight, bias, saved_mean, saved_invstd = ctx.saved_tensors
        wanted = ctx.needs_input_grad
        dx, dweight, dbias = _library.batch_norm_backward(
            _ops.in_layout(grad_output, ctx.layout), input, weight, bias, saved_mean, saved_invstd, ctx.layout,
            wanted[1], wanted[2],
        )
        dweight, dbias = _library.wanted_or_none(dweight, wanted[1]), _library.wanted_or_none(dbias, wanted[2])
        return dx, dweight, dbias, None, None, None, None, None


class _BatchNormInferenceFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, running_mean, running_var, layout, eps):  # type: ignore[override]
        y = _library.batch_norm_forward_inference(input, weight, bias, running_mean, running_var, layout, eps)
        ctx.save_for_backward(input, weight, bias, running_mean, running_var)
        ctx.layout = layout
        ctx.eps = eps
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        input, weight, bias, running_mean, running_var = ctx.saved_tensors
        wanted = ctx.needs_input_grad
        dx, dweight, dbias = _library.batch_norm_backward_inference(
            _ops.in_layout(grad_output, ctx.layout), input, weight, bias, running_mean, running_var, ctx.layout,
            ctx.eps, wanted[1], wanted[2],
        )
        dweight, dbias = _library.wanted_or_none(dweight, wanted[1]), _library.wanted_or_none(dbias, wanted[2])
        return dx, dweight, dbias, None, None, None, None


def _check_batch_norm(
    input: Tensor,
    running_mean: Optional[Tensor],
    running_var: Optional[Tensor],
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    training: bool,
) -> None:
    """Raises what torch raises for a bad batch_norm call (TypeError, ValueError, RuntimeError)."""
    _check_tensor("input", input, optional=False)
    named = (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias))
    for name, tensor in named:
        _check_tensor(name, tensor, optional=True)
    if input.dim() < 2:
        raise ValueError(f"batch_norm: input must have at least 2 dimensions (N, C, ...), got {input.dim()}")
    channels = input.shape[1]
    for name, tensor in named:
        if tensor is None:
            continue
        if tuple(tensor.shape) != (channels,):
            raise RuntimeError(f"batch_norm: {name} must have shape [{channels}] (the input's C), got {list(tensor.shape)}")
        if tensor.device != input.device:
            raise RuntimeError(f"batch_norm: {name} is on {tensor.device} but input is on {input.device}")
    if (running_mean is None) != (running_var is None):
        raise RuntimeError("batch_norm: running_mean and running_var must be both given or both None")
    if not training and running_mean is None:
        raise RuntimeError("batch_norm: running_mean and running_var must be given when training is False")
    if training and channels > 0 and input.numel() // channels == 1:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got input of size {list(input.shape)}"
        )


def batch_norm(
    input: Tensor,
    running_mean: Optional[Tensor],
    running_var: Optional[Tensor],
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """torch.nn.functional.batch_norm over an (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W)
    input, contiguous or channels-last (the NHWC kernels, without a copy).

    training=True: batch statistics, and running_mean/running_var (when given) updated in place,
    running = (1 - momentum) * running + momentum * batch statistic, the variance unbiased.
    training=False: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias."""
    _check_batch_norm(input, running_mean, running_var, weight, bias, training)
    try:
        layout = _ops.batch_norm_layout(input)
        _ops.param_dtype(input, (weight, bias))
        _ops.check_eps(eps)
        if training and running_mean is not None:
            _ops.check_momentum(momentum)
    except Unsupported as reason:
        return fall_back(
            "batch_norm", reason, torch_functional.batch_norm, input, running_mean, running_var, weight, bias,
            training, momentum, eps,
        )
    if training:
        return _BatchNormTrainingFunction.apply(
            input, weight, bias, running_mean, running_var, layout, float(momentum), float(eps)
        )
    return _BatchNormInferenceFunction.apply(input, weight, bias, running_mean, running_var, layout, float(eps))

