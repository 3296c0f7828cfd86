"""cunorm: fused LayerNorm, RMSNorm and BatchNorm kernels for CUDA GPUs, with exact Welford/Chan
statistics, and the CPU SIMT engine that runs the same kernels where no GPU exists.

``import cunorm.torch`` gives the PyTorch ops and modules (torch is not imported before that).
This module holds the package's version and the error type of the native library.
"""

from ._C import VERSION as _VERSION
from ._C import Error

__all__ = ["Error", "__version__"]

__version__: str = f"{_VERSION // 10000}.{_VERSION // 100 % 100}.{_VERSION % 100}"
