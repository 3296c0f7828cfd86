"""What every cunorm.torch op shares: the native handle of a tensor's device and thread, the call
scope that binds a CUDA handle to torch's current stream and gives it workspace from torch's
allocator, dtype codes, and the rule for inputs cunorm does not serve (fall back to torch, or raise
under CUNORM_TORCH_STRICT=1)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Callable, Dict, Iterator, Optional, Tuple, TypeVar

import torch

from .. import _C

T = TypeVar("T")

_DTYPE_CODES: Dict[torch.dtype, int] = {
    torch.float32: _C.FLOAT32,
    torch.float16: _C.FLOAT16,
    torch.bfloat16: _C.BFLOAT16,
}


class Unsupported(Exception):
    """An input that is valid for torch but that cunorm does not serve; the text says why."""


def dtype_code(dtype: torch.dtype) -> int:
    """The C API's code of an activation or parameter dtype; Unsupported for any other dtype."""
    code = _DTYPE_CODES.get(dtype)
    if code is None:
        raise Unsupported(f"dtype {dtype} is not float32, float16 or bfloat16")
    return code


def address(tensor: Optional[torch.Tensor]) -> int:
    """The address the C API takes for an optional tensor: its data, or 0 (NULL) for None."""
    return 0 if tensor is None else tensor.data_ptr()


def strict() -> bool:
    """Whether CUNORM_TORCH_STRICT=1 forbids falling back to torch's implementation."""
    return os.environ.get("CUNORM_TORCH_STRICT", "") == "1"


def fall_back(op: str, reason: Unsupported, torch_op: Callable[..., T], *args: object) -> T:
    """Runs torch's own op for an input cunorm does not serve, or raises under strict mode."""
    if strict():
        raise RuntimeError(f"cunorm.torch.{op}: {reason}, and CUNORM_TORCH_STRICT=1 forbids falling back to torch")
    return torch_op(*args)


class _Handles(threading.local):
    """One native handle per (device, thread): handles are not shared between threads."""

    def __init__(self) -> None:
        self.by_device: Dict[Tuple[str, int], _C.Handle] = {}


_handles = _Handles()


def _handle(device: torch.device) -> _C.Handle:
    key = (device.type, -1 if device.index is None else device.index)
    handle = _handles.by_device.get(key)
    if handle is None:
        if device.type == "cpu":
            handle = _C.Handle(_C.BACKEND_SIMT)
        elif device.type == "cuda":
            try:
                with torch.cuda.device(device):
                    handle = _C.Handle(_C.BACKEND_CUDA)
            except _C.Error as error:
                raise Unsupported(f"no CUDA backend for {device}: {error}") from None
        else:
            raise Unsupported(f"device type {device.type} is neither cpu nor cuda")
        _handles.by_device[key] = handle
    return handle


def _constant_while_tracing(function: Callable[..., T]) -> Callable[..., T]:
    """The function, marked so that torch.compile calls it while tracing and takes its result as a
    constant of the graph instead of tracing into the native calls it makes. The mark is the one
    torch.compiler.assume_constant_result sets, set here without calling it: that would import
    torch._dynamo (about a second) whether or not the user compiles anything. Older torch ignores
    it; tests/python/test_compile.py fails if torch ever stops reading it."""
    function._dynamo_marked_constant = True  # type: ignore[attr-defined]
    return function


@_constant_while_tracing
def _unserved_device(device_type: str, index: int) -> Optional[str]:
    """Why cunorm cannot run on that device, or None when it can (its handle is then made)."""
    try:
        _handle(torch.device(device_type, index) if index >= 0 else torch.device(device_type))
    except Unsupported as reason:
        return str(reason)
    return None


def check_device(device: torch.device) -> None:
    """Unsupported unless cunorm can run on that device (a CPU, or a CUDA device of a CUDA build)."""
    reason = _unserved_device(device.type, -1 if device.index is None else device.index)
    if reason is not None:
        raise Unsupported(reason)


@contextlib.contextmanager
def call_scope(device: torch.device, workspace_bytes: Callable[[_C.Handle], int]) -> Iterator[_C.Handle]:
    """The handle for one call on `device`. On CUDA: the handle (which the library keeps on the
    device it was created for) on torch's current stream of that device, and workspace_bytes(handle)
    bytes of workspace from torch's caching allocator (so that CUDA-graph capture works), handed
    back to the allocator after the call is queued, which the allocator orders on that stream.
    The SIMT backend (CPU tensors) keeps its own."""
    handle = _handle(device)
    if device.type != "cuda":
        yield handle
        return
    handle.set_stream(torch.cuda.current_stream(device).cuda_stream)
    workspace = torch.empty(workspace_bytes(handle), dtype=torch.uint8, device=device)
    handle.set_workspace(workspace.data_ptr(), workspace.numel())
    try:
        yield handle
    finally:
        handle.set_workspace(0, 0)
