"""Modules with torch.nn's constructor arguments, parameters and buffers (same names, same order,
so state_dicts load both ways) whose forward runs cunorm.torch.functional. LayerNorm and
BatchNorm*d subclass torch's modules and replace forward alone; RMSNorm has torch 2.4's signature
(torch 1.13 has none). The modules hold no native handle: deepcopy, pickle and .to() work as on
torch's."""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from . import functional

__all__ = ["LayerNorm", "RMSNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class LayerNorm(torch.nn.LayerNorm):
    """torch.nn.LayerNorm computed by cunorm.torch.functional.layer_norm."""

    def forward(self, input: Tensor) -> Tensor:
        return functional.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)


class RMSNorm(torch.nn.Module):
    """torch.nn.RMSNorm (torch 2.4): y = x / sqrt(mean(x^2) + eps) * weight over the trailing
    dimensions normalized_shape; eps=None is torch.finfo(input.dtype).eps."""

    __constants__ = ["normalized_shape", "eps", "elementwise_affine"]
    normalized_shape: Tuple[int, ...]
    eps: Optional[float]
    elementwise_affine: bool

    def __init__(
        self,
        normalized_shape: Union[int, Sequence[int], torch.Size],
        eps: Optional[float] = None,
        elementwise_affine: bool = True,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = torch.nn.Parameter(torch.empty(self.normalized_shape, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Sets the weight to ones, as torch does."""
        if self.weight is not None:
            torch.nn.init.ones_(self.weight)

    def forward(self, input: Tensor) -> Tensor:
        return functional.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class _CunormBatchNorm:
    """torch's _BatchNorm.forward (momentum=None: the cumulative average over
    num_batches_tracked) with cunorm.torch.functional.batch_norm."""

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)  # type: ignore[attr-defined]
        factor = 0.0 if self.momentum is None else self.momentum  # type: ignore[attr-defined]
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:  # type: ignore[attr-defined]
            self.num_batches_tracked.add_(1)  # type: ignore[attr-defined]
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum  # type: ignore[attr-defined]
        use_batch = self.training or (self.running_mean is None and self.running_var is None)  # type: ignore[attr-defined]
        keep = not self.training or self.track_running_stats  # type: ignore[attr-defined]
        return functional.batch_norm(
            input,
            self.running_mean if keep else None,  # type: ignore[attr-defined]
            self.running_var if keep else None,  # type: ignore[attr-defined]
            self.weight,  # type: ignore[attr-defined]
            self.bias,  # type: ignore[attr-defined]
            use_batch,
            factor,
            self.eps,  # type: ignore[attr-defined]
        )


class BatchNorm1d(_CunormBatchNorm, torch.nn.BatchNorm1d):
    """torch.nn.BatchNorm1d on (N, C) or (N, C, L) inputs, computed by cunorm."""


class BatchNorm2d(_CunormBatchNorm, torch.nn.BatchNorm2d):
    """torch.nn.BatchNorm2d on (N, C, H, W) inputs, contiguous or channels_last, computed by cunorm."""


class BatchNorm3d(_CunormBatchNorm, torch.nn.BatchNorm3d):
    """torch.nn.BatchNorm3d on (N, C, D, H, W) inputs, contiguous or channels_last_3d, computed by cunorm."""
