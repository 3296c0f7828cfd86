"""What cunorm.torch does to a whole model: convert() puts cunorm's modules in place of torch's
(keeping every parameter, buffer and hook object), and calibrate_batch_norm() sets each BatchNorm
layer's running statistics to the exact mean and unbiased variance of its inputs over a dataset
(seed 001's "calibrate the batch norm at the end of training")."""

from __future__ import annotations

import copy
from typing import Any, Dict, Iterable, List, Type

import torch

from . import nn
from ._backend import Unsupported
from ._ops import Calibration

__all__ = ["convert", "calibrate_batch_norm"]


_REPLACEMENTS: Dict[Type[torch.nn.Module], Type[torch.nn.Module]] = {
    torch.nn.LayerNorm: nn.LayerNorm,
    torch.nn.BatchNorm1d: nn.BatchNorm1d,
    torch.nn.BatchNorm2d: nn.BatchNorm2d,
    torch.nn.BatchNorm3d: nn.BatchNorm3d,
}
if hasattr(torch.nn, "RMSNorm"):  # torch >= 2.4
    _REPLACEMENTS[torch.nn.RMSNorm] = nn.RMSNorm


def _swapped(module: torch.nn.Module, cls: Type[torch.nn.Module]) -> torch.nn.Module:
    """A `cls` holding the module's attributes: the same parameter, buffer and hook objects, in
    containers of its own (so that the two modules do not share later registrations)."""
    replacement = cls.__new__(cls)
    replacement.__dict__.update(
        {key: copy.copy(value) if isinstance(value, (dict, set)) else value for key, value in module.__dict__.items()}
    )
    return replacement


def convert(module: torch.nn.Module) -> torch.nn.Module:
    """Replaces, throughout `module`, every torch.nn.LayerNorm, BatchNorm1d/2d/3d and (torch >= 2.4)
    RMSNorm, of exactly that type (not subclasses, whose forward may differ), by the cunorm.torch.nn
    module of the same name, and returns `module`, or its replacement when it is one of those.

    The replacements hold the same parameter and buffer objects, so optimizers built before the
    call keep working, and state_dicts are unchanged. Modules are changed in place: use the
    returned model, not references to the replaced modules taken before."""
    for name, child in list(module._modules.items()):
        if child is not None:
            module._modules[name] = convert(child)
    cls = _REPLACEMENTS.get(type(module))
    return module if cls is None else _swapped(module, cls)


class _Reached(Exception):
    """Ends a forward pass once the layer being calibrated has seen its input."""


def _batch_norm_layers(model: torch.nn.Module) -> List[torch.nn.modules.batchnorm._BatchNorm]:
    return [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        and m.running_mean is not None
        and m.running_var is not None
    ]


def _call_order(model: torch.nn.Module, first_batch: Any, layers: List[torch.nn.Module]) -> List[torch.nn.Module]:
    """The layers in the order model(first_batch) first calls them."""
    order: List[torch.nn.Module] = []

    def record(layer: torch.nn.Module, _inputs: Any) -> None:
        if layer not in order:
            order.append(layer)

    hooks = [layer.register_forward_pre_hook(record) for layer in layers]
    try:
        model(first_batch)
    finally:
        for hook in hooks:
            hook.remove()
    missed = [name for name, m in model.named_modules() if m in layers and m not in order]
    if missed:
        raise ValueError(f"calibrate_batch_norm: model(batch) does not call the BatchNorm layers {missed}")
    return order


def _calibrate_layer(model: torch.nn.Module, layer: torch.nn.modules.batchnorm._BatchNorm, batches: List[Any]) -> None:
    calibration = Calibration(layer.num_features)

    def accumulate(_layer: torch.nn.Module, inputs: Any) -> None:
        try:
            calibration.accumulate(inputs[0])
        except Unsupported as reason:
            raise RuntimeError(f"calibrate_batch_norm: cunorm does not serve the input of {layer}: {reason}") from None
        raise _Reached

    hook = layer.register_forward_pre_hook(accumulate)
    try:
        for batch in batches:
            try:
                model(batch)
            except _Reached:
                pass
    finally:
        hook.remove()
    calibration.finalize(layer.running_mean, layer.running_var)  # type: ignore[arg-type]


def calibrate_batch_norm(model: torch.nn.Module, batches: Iterable[Any]) -> torch.nn.Module:
    """Sets the running_mean and running_var of every BatchNorm layer of `model` (torch's or
    cunorm's, with running statistics) to the exact mean and unbiased variance, per channel, of
    the inputs it receives from model(batch) over all `batches`, as if they were one batch, and
    returns `model`.

    Layers are calibrated one at a time in the order the model calls them, in eval mode, so that
    each one sees its inputs as inference will: normalized by the layers before it, already
    calibrated. That is one pass over `batches` per layer (each pass stops at its layer), so
    `batches` is read more than once (an iterator is first stored as a list). Runs under
    torch.no_grad(); the training flag of every module is restored afterwards. The statistics of
    each batch are computed by cunorm in float32 and merged in float64 (Chan's formula), whatever
    the batch sizes. num_batches_tracked is left as it is. On an error every running statistic is
    restored to what it was."""
    batch_list = list(batches)
    if not batch_list:
        raise ValueError("calibrate_batch_norm: batches is empty")
    layers = _batch_norm_layers(model)
    training = {m: m.training for m in model.modules()}
    saved = [(layer.running_mean.clone(), layer.running_var.clone()) for layer in layers]  # type: ignore[union-attr]
    try:
        model.eval()
        with torch.no_grad():
            try:
                for layer in _call_order(model, batch_list[0], layers) if layers else []:
                    _calibrate_layer(model, layer, batch_list)
            except BaseException:
                for layer, (mean, var) in zip(layers, saved):
                    layer.running_mean.copy_(mean)  # type: ignore[union-attr]
                    layer.running_var.copy_(var)  # type: ignore[union-attr]
                raise
    finally:
        for m, flag in training.items():
            m.training = flag
    return model
