"""The native calls on torch tensors: each op's forward and backward allocates its outputs with
torch and runs one C entry point through cunorm._C. The checks that decide whether cunorm serves an
input (raising Unsupported) live here too; functional.py validates arguments before any of this."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from .. import _C
from ._backend import Unsupported, address, call_scope, check_device, dtype_code

_FLOAT32 = torch.float32


def check_activation(input: Tensor) -> int:
    """The dtype code of an input cunorm can run on its device; Unsupported otherwise."""
    code = dtype_code(input.dtype)
    check_device(input.device)
    return code


def param_dtype(input: Tensor, params: Sequence[Optional[Tensor]]) -> int:
    """The C API's param_dtype for these optional parameters: float32 or the input's dtype, the
    same for all of them (the input's when there are none)."""
    dtypes = {p.dtype for p in params if p is not None}
    if len(dtypes) > 1:
        raise Unsupported(f"the parameters have different dtypes {sorted(str(d) for d in dtypes)}")
    dtype = dtypes.pop() if dtypes else input.dtype
    if dtype not in (_FLOAT32, input.dtype):
        raise Unsupported(f"parameter dtype {dtype} is neither float32 nor the input's {input.dtype}")
    return dtype_code(dtype)


def check_eps(eps: float) -> None:
    if not (eps >= 0 and math.isfinite(eps)):
        raise Unsupported(f"eps must be finite and >= 0, got {eps}")


def check_momentum(momentum: float) -> None:
    if not 0 <= momentum <= 1:
        raise Unsupported(f"momentum must be in [0, 1], got {momentum}")


def _contiguous(tensor: Optional[Tensor]) -> Optional[Tensor]:
    return None if tensor is None else tensor.contiguous()


def _floats(count: int, like: Tensor) -> Tensor:
    return torch.empty(count, dtype=_FLOAT32, device=like.device)


def _gradient(like: Optional[Tensor], wanted: bool, empty_batch: bool) -> Optional[Tensor]:
    """A parameter's gradient buffer: zeros for an empty batch, where the library writes nothing."""
    if like is None or not wanted:
        return None
    return torch.zeros_like(like) if empty_batch else torch.empty_like(like, memory_format=torch.contiguous_format)


# ---- LayerNorm and RMSNorm: rows x cols, contiguous -------------------------------------------


def layer_norm_forward(
    input: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], cols: int, eps: float
) -> Tuple[Tensor, Tensor, Tensor]:
    """y, mean and rstd (float32, one per row) of a contiguous input."""
    rows = input.numel() // cols
    dtype, pdtype = dtype_code(input.dtype), param_dtype(input, (weight, bias))
    weight, bias = _contiguous(weight), _contiguous(bias)
    y = torch.empty_like(input, memory_format=torch.contiguous_format)
    mean, rstd = _floats(rows, input), _floats(rows, input)
    with call_scope(input.device, lambda h: _C.layer_norm_workspace_size(h, rows, cols, dtype, pdtype)) as handle:
        _C.layer_norm_forward(
            handle, rows, cols, dtype, pdtype, address(input), address(weight), address(bias), eps, address(y),
            address(mean), address(rstd),
        )
    return y, mean, rstd


def layer_norm_backward(
    dy: Tensor,
    input: Tensor,
    mean: Tensor,
    rstd: Tensor,
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    cols: int,
    wanted: Tuple[bool, bool],
) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """dx, and dweight and dbias where those parameters are given and wanted, of a contiguous dy."""
    rows = input.numel() // cols
    dtype, pdtype = dtype_code(input.dtype), param_dtype(input, (weight, bias))
    weight = _contiguous(weight)
    dx = torch.empty_like(input, memory_format=torch.contiguous_format)
    dweight, dbias = _gradient(weight, wanted[0], rows == 0), _gradient(bias, wanted[1], rows == 0)
    with call_scope(input.device, lambda h: _C.layer_norm_workspace_size(h, rows, cols, dtype, pdtype)) as handle:
        _C.layer_norm_backward(
            handle, rows, cols, dtype, pdtype, address(dy), address(input), address(mean), address(rstd),
            address(weight), address(dx), address(dweight), address(dbias),
        )
    return dx, dweight, dbias


def rms_norm_forward(input: Tensor, weight: Optional[Tensor], cols: int, eps: float) -> Tuple[Tensor, Tensor]:
    """y and rrms (float32, one per row) of a contiguous input."""
    rows = input.numel() // cols
    dtype, pdtype = dtype_code(input.dtype), param_dtype(input, (weight,))
    weight = _contiguous(weight)
    y = torch.empty_like(input, memory_format=torch.contiguous_format)
    rrms = _floats(rows, input)
    with call_scope(input.device, lambda h: _C.layer_norm_workspace_size(h, rows, cols, dtype, pdtype)) as handle:
        _C.rms_norm_forward(handle, rows, cols, dtype, pdtype, address(input), address(weight), eps, address(y), address(rrms))
    return y, rrms


def rms_norm_backward(
    dy: Tensor, input: Tensor, rrms: Tensor, weight: Optional[Tensor], cols: int, weight_wanted: bool
) -> Tuple[Tensor, Optional[Tensor]]:
    """dx, and dweight where weight is given and wanted, of a contiguous dy."""
    rows = input.numel() // cols
    dtype, pdtype = dtype_code(input.dtype), param_dtype(input, (weight,))
    weight = _contiguous(weight)
    dx = torch.empty_like(input, memory_format=torch.contiguous_format)
    dweight = _gradient(weight, weight_wanted, rows == 0)
    with call_scope(input.device, lambda h: _C.layer_norm_workspace_size(h, rows, cols, dtype, pdtype)) as handle:
        _C.rms_norm_backward(
            handle, rows, cols, dtype, pdtype, address(dy), address(input), address(rrms), address(weight),
            address(dx), address(dweight),
        )
    return dx, dweight


# ---- BatchNorm: (N, C, *spatial), NCHW (contiguous) or NHWC (channels last) ---------------------


def _channels_last_order(dim: int) -> Tuple[int, ...]:
    """The permutation that puts an (N, C, *spatial) tensor's channels last: (0, 2, ..., dim-1, 1)."""
    return (0, *range(2, dim), 1)


def batch_norm_layout(input: Tensor) -> int:
    """The layout code of an input cunorm serves as it is; Unsupported for any other strides."""
    check_activation(input)
    if input.is_contiguous():
        return _C.LAYOUT_NCHW
    if input.dim() >= 3 and input.permute(_channels_last_order(input.dim())).is_contiguous():
        return _C.LAYOUT_NHWC
    raise Unsupported("input is neither contiguous nor channels-last")


def in_layout(tensor: Tensor, layout: int) -> Tensor:
    """The tensor with the strides of that layout (itself when it has them): an incoming gradient
    may come in either memory format."""
    if layout == _C.LAYOUT_NCHW:
        return tensor.contiguous()
    order = _channels_last_order(tensor.dim())
    permuted = tensor.permute(order)
    if permuted.is_contiguous():
        return tensor
    inverse = [0] * len(order)
    for position, axis in enumerate(order):
        inverse[axis] = position
    return permuted.contiguous().permute(inverse)


def _sizes(input: Tensor) -> Tuple[int, int, int]:
    n, c = input.shape[0], input.shape[1]
    s = 1
    for d in input.shape[2:]:
        s *= d
    return n, c, s


def _float32_statistic(tensor: Optional[Tensor]) -> Optional[Tensor]:
    """A running statistic as the float32 contiguous tensor the C API reads and writes (itself
    when it is one; a module converted with .half() holds half ones)."""
    if tensor is None or (tensor.dtype == _FLOAT32 and tensor.is_contiguous()):
        return tensor
    return tensor.to(_FLOAT32).contiguous()


def _output_like(input: Tensor) -> Tensor:
    return torch.empty_like(input)  # the input's strides, NCHW or NHWC: both are dense


def batch_norm_forward_training(
    input: Tensor,
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    running_mean: Optional[Tensor],
    running_var: Optional[Tensor],
    layout: int,
    momentum: float,
    eps: float,
) -> Tuple[Tensor, Tensor, Tensor]:
    """y, and the batch's mean and invstd per channel; running statistics updated in place."""
    n, c, s = _sizes(input)
    dtype, pdtype = dtype_code(input.dtype), param_dtype(input, (weight, bias))
    weight, bias = _contiguous(weight), _contiguous(bias)
    mean32, var32 = _float32_statistic(running_mean), _float32_statistic(running_var)
    y = _output_like(input)
    saved_mean, saved_invstd = _floats(c, input), _floats(c, input)
    with call_scope(
        input.device, lambda h: _C.batch_norm_workspace_size(h, layout, n, c, s, dtype, pdtype)
    ) as handle:
        _C.batch_norm_forward_training(
            handle, layout, n, c, s, dtype, pdtype, address(input), address(weight), address(bias), eps, momentum,
            address(mean32), address(var32), address(y), address(saved_mean), address(saved_invstd),
        )
    for statistic, updated in ((running_mean, mean32), (running_var, var32)):
        if statistic is not None and updated is not statistic:
            statistic.copy_(updated)
    return y, saved_mean, saved_invstd


def batch_norm_forward_inference(
    input: Tensor,
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    running_mean: Tensor,
    running_var: Tensor,
    layout: int,
    eps: float,
) -> Tensor:
    """y from the running statistics."""
    n, c, s = _sizes(input)
    dtype, pdtype = dtype_code(input.dtype), param_dtype(input, (weight, bias))
    weight, bias = _contiguous(weight), _contiguous(bias)
    mean32, var32 = _float32_statistic(running_mean), _float32_statistic(running_var)
    y = _output_like(input)
    with call_scope(
        input.device, lambda h: _C.batch_norm_workspace_size(h, layout, n, c, s, dtype, pdtype)
    ) as handle:
        _C.batch_norm_forward_inference(
            handle, layout, n, c, s, dtype, pdtype, address(input), address(weight), address(bias), address(mean32),
            address(var32), eps, address(y),
        )
    return y


def _backward_buffers(input: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], wanted: Tuple[bool, bool]):
    """What both BatchNorm backwards start from: the sizes, dtype codes, the contiguous weight, and
    dx, dweight and dbias to write (the parameters' where given and wanted)."""
    n, c, s = _sizes(input)
    dtype, pdtype = dtype_code(input.dtype), param_dtype(input, (weight, bias))
    empty = n * s == 0
    dweight, dbias = _gradient(weight, wanted[0], empty), _gradient(bias, wanted[1], empty)
    return n, c, s, dtype, pdtype, _contiguous(weight), _output_like(input), dweight, dbias


def batch_norm_backward(
    dy: Tensor,
    input: Tensor,
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    saved_mean: Tensor,
    saved_invstd: Tensor,
    layout: int,
    wanted: Tuple[bool, bool],
) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """dx, and dweight and dbias where given and wanted, through the batch statistics; dy in the
    input's layout."""
    n, c, s, dtype, pdtype, weight, dx, dweight, dbias = _backward_buffers(input, weight, bias, wanted)
    with call_scope(
        input.device, lambda h: _C.batch_norm_workspace_size(h, layout, n, c, s, dtype, pdtype)
    ) as handle:
        _C.batch_norm_backward(
            handle, layout, n, c, s, dtype, pdtype, address(dy), address(input), address(weight), address(saved_mean),
            address(saved_invstd), address(dx), address(dweight), address(dbias),
        )
    return dx, dweight, dbias


def batch_norm_backward_inference(
    dy: Tensor,
    input: Tensor,
    weight: Optional[Tensor],
    bias: Optional[Tensor],
    running_mean: Tensor,
    running_var: Tensor,
    layout: int,
    eps: float,
    wanted: Tuple[bool, bool],
) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """dx, dweight and dbias through the inference form (the running statistics are constants)."""
    n, c, s, dtype, pdtype, weight, dx, dweight, dbias = _backward_buffers(input, weight, bias, wanted)
    mean32, var32 = _float32_statistic(running_mean), _float32_statistic(running_var)
    with call_scope(
        input.device, lambda h: _C.batch_norm_workspace_size(h, layout, n, c, s, dtype, pdtype)
    ) as handle:
        _C.batch_norm_backward_inference(
            handle, layout, n, c, s, dtype, pdtype, address(dy), address(input), address(weight), address(mean32),
            address(var32), eps, address(dx), address(dweight), address(dbias),
        )
    return dx, dweight, dbias


class Calibration:
    """Exact population statistics of the inputs of one BatchNorm layer over many batches
    (cunormBatchNormCalibration*: per-channel float64 Chan merges of each batch's statistics)."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self._native: Optional[_C.BatchNormCalibration] = None
        self._device: Optional[torch.device] = None

    def accumulate(self, input: Tensor) -> None:
        """Merges one batch, (N, C, *spatial) with C == channels, on the device of the first one."""
        if input.dim() < 2 or input.shape[1] != self.channels:
            raise ValueError(f"expected an input of shape (N, {self.channels}, ...), got {tuple(input.shape)}")
        if self._device is not None and input.device != self._device:
            raise ValueError(f"every batch must be on {self._device}, got one on {input.device}")
        try:
            layout = batch_norm_layout(input)
        except Unsupported:
            input = input.contiguous()
            layout = batch_norm_layout(input)
        n, c, s = _sizes(input)
        dtype = dtype_code(input.dtype)
        with call_scope(
            input.device, lambda h: _C.batch_norm_workspace_size(h, layout, n, c, s, dtype, dtype)
        ) as handle:
            if self._native is None:
                self._native, self._device = _C.BatchNormCalibration(handle, c), input.device
            self._native.accumulate(layout, n, s, dtype, address(input))

    def finalize(self, running_mean: Tensor, running_var: Tensor) -> None:
        """Writes the mean and unbiased variance of every value accumulated into the two tensors."""
        if self._native is None or self._device is None:
            raise RuntimeError("no batch was accumulated")
        mean32 = _float32_statistic(running_mean.to(self._device))
        var32 = _float32_statistic(running_var.to(self._device))
        with call_scope(self._device, lambda h: 0) as handle:
            self._native.finalize(address(mean32), address(var32))
        running_mean.copy_(mean32)
        running_var.copy_(var32)
