"""cunorm for PyTorch: drop-in replacements for torch.nn.functional's layer_norm, rms_norm and
batch_norm (cunorm.torch.functional) and torch.nn's LayerNorm, RMSNorm and BatchNorm1d/2d/3d
(cunorm.torch.nn). docs/python.md describes the design and what is not built yet."""

from . import functional, nn

__all__ = ["functional", "nn"]
