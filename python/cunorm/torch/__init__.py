"""cunorm for PyTorch: drop-in replacements for torch.nn.functional's layer_norm, rms_norm and
batch_norm (cunorm.torch.functional) and torch.nn's LayerNorm, RMSNorm and BatchNorm1d/2d/3d
(cunorm.torch.nn), convert(model) to put those modules in place of torch's, and
calibrate_batch_norm(model, batches) for exact BatchNorm population statistics. docs/python.md
describes the design and what is not built yet."""

from . import functional, nn
from ._model import calibrate_batch_norm, convert

__all__ = ["functional", "nn", "convert", "calibrate_batch_norm"]
