#!/usr/bin/env python3
"""The GPU check's torch step: cunorm's C library (carried in the check's folder, called through
ctypes, so that no Python extension has to match the GPU machine's Python) against torch's own
layer_norm, rms_norm and batch_norm (eager; torch.compile's compile times would not fit the check's
budget) on the same tensors, timed by python -m cunorm.bench's harness
(carried beside this file as cunorm_bench.py): CUDA events, L2 flushed, the C benchmark's floor
bytes, percent of a measured copy.

  gpu_check_torch.py --library DIR/lib/libcunorm.so.0 --json OUT.jsonl [--quick] [--device cpu]

Each op first runs once on a small tensor against torch's result (a wrong binding fails here,
exit 1, before anything is timed). Exit 2: no CUDA GPU that torch can use. --device cpu runs the
same on CPU tensors through the library's SIMT backend (a check of the bindings and the harness,
at emulation speed: tests/python/test_gpu_check_torch.py).
"""
import argparse
import ctypes
import os
import sys
from typing import Callable, Dict, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cunorm_bench  # noqa: E402  (python/cunorm/bench.py, carried into the check's folder)

_NCHW, _NHWC = 0, 1
_BACKENDS = {"cuda": 1, "cpu": 2}  # CUNORM_BACKEND_CUDA, CUNORM_BACKEND_SIMT


class _Library:
    """libcunorm through ctypes: one handle (CUDA for CUDA tensors, SIMT for CPU tensors), every
    CUDA call on torch's current stream."""

    def __init__(self, path: str, torch, device: str) -> None:  # type: ignore[no-untyped-def]
        self.torch, self.cuda = torch, device == "cuda"
        self.lib = ctypes.CDLL(path)
        self.lib.cunormGetLastErrorMessage.restype = ctypes.c_char_p
        self.handle = ctypes.c_void_p()
        self.check(self.lib.cunormCreate(ctypes.byref(self.handle), _BACKENDS[device]), "cunormCreate")
        self.dtypes = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}

    def check(self, status: int, what: str) -> None:
        if status != 0:
            message = self.lib.cunormGetLastErrorMessage(self.handle if self.handle else None)
            raise RuntimeError(f"{what}: {message.decode() if message else status}")

    def call(self, name: str, *args: object) -> None:
        """cunorm<name>(handle, args...) on torch's current stream: tensors as pointers (None: NULL),
        Python ints as int64, floats as float, ctypes values (the C enums) as they are."""
        if self.cuda:
            stream = self.torch.cuda.current_stream().cuda_stream
            self.check(self.lib.cunormSetStream(self.handle, ctypes.c_void_p(stream)), "cunormSetStream")
        converted: list = []
        for a in args:
            if a is None:
                converted.append(ctypes.c_void_p())
            elif isinstance(a, self.torch.Tensor):
                converted.append(ctypes.c_void_p(a.data_ptr()))
            elif isinstance(a, ctypes.c_int):
                converted.append(a)
            elif isinstance(a, float):
                converted.append(ctypes.c_float(a))
            else:
                converted.append(ctypes.c_int64(a))
        self.check(getattr(self.lib, "cunorm" + name)(self.handle, *converted), "cunorm" + name)

    def dtype(self, tensor) -> ctypes.c_int:  # type: ignore[no-untyped-def]
        return ctypes.c_int(self.dtypes[tensor.dtype])


def functions(library: _Library) -> Dict[str, Callable]:
    """layer_norm, rms_norm and batch_norm with torch.nn.functional's signatures over the library,
    differentiable through torch.autograd.Function (what the harness times)."""
    torch = library.torch

    class LayerNorm(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, bias, eps):  # type: ignore[no-untyped-def]
            cols = x.shape[-1]
            rows = x.numel() // cols
            y = torch.empty_like(x)
            mean = torch.empty(rows, device=x.device)
            rstd = torch.empty(rows, device=x.device)
            library.call("LayerNormForward", rows, cols, library.dtype(x), library.dtype(weight), x, weight, bias,
                         float(eps), y, mean, rstd)
            ctx.save_for_backward(x, weight, mean, rstd)
            return y

        @staticmethod
        def backward(ctx, dy):  # type: ignore[no-untyped-def]
            x, weight, mean, rstd = ctx.saved_tensors
            dy = dy.contiguous()
            dx, dweight, dbias = torch.empty_like(x), torch.empty_like(weight), torch.empty_like(weight)
            library.call("LayerNormBackward", mean.numel(), x.shape[-1], library.dtype(x), library.dtype(weight), dy,
                         x, mean, rstd, weight, dx, dweight, dbias)
            return dx, dweight, dbias, None

    class RmsNorm(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, eps):  # type: ignore[no-untyped-def]
            cols = x.shape[-1]
            rows = x.numel() // cols
            y = torch.empty_like(x)
            rrms = torch.empty(rows, device=x.device)
            library.call("RMSNormForward", rows, cols, library.dtype(x), library.dtype(weight), x, weight, float(eps),
                         y, rrms)
            ctx.save_for_backward(x, weight, rrms)
            return y

        @staticmethod
        def backward(ctx, dy):  # type: ignore[no-untyped-def]
            x, weight, rrms = ctx.saved_tensors
            dy = dy.contiguous()
            dx, dweight = torch.empty_like(x), torch.empty_like(weight)
            library.call("RMSNormBackward", rrms.numel(), x.shape[-1], library.dtype(x), library.dtype(weight), dy, x,
                         rrms, weight, dx, dweight)
            return dx, dweight, None

    def geometry(x):  # type: ignore[no-untyped-def]
        """(layout, n, c, s, memory format) of a 4-D NCHW or channels_last tensor."""
        n, c, h, w = x.shape
        if x.is_contiguous():
            return ctypes.c_int(_NCHW), n, c, h * w, torch.contiguous_format
        return ctypes.c_int(_NHWC), n, c, h * w, torch.channels_last

    class BatchNormTraining(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, running_mean, running_var, weight, bias, momentum, eps):  # type: ignore[no-untyped-def]
            layout, n, c, s, memory_format = geometry(x)
            y = torch.empty_like(x, memory_format=memory_format)
            mean, invstd = torch.empty(c, device=x.device), torch.empty(c, device=x.device)
            library.call("BatchNormForwardTraining", layout, n, c, s, library.dtype(x), library.dtype(weight), x,
                         weight, bias, float(eps), float(momentum), running_mean, running_var, y, mean, invstd)
            ctx.save_for_backward(x, weight, mean, invstd)
            return y

        @staticmethod
        def backward(ctx, dy):  # type: ignore[no-untyped-def]
            x, weight, mean, invstd = ctx.saved_tensors
            layout, n, c, s, memory_format = geometry(x)
            dy = dy.contiguous(memory_format=memory_format)
            dx = torch.empty_like(x, memory_format=memory_format)
            dweight, dbias = torch.empty_like(weight), torch.empty_like(weight)
            library.call("BatchNormBackward", layout, n, c, s, library.dtype(x), library.dtype(weight), dy, x, weight,
                         mean, invstd, dx, dweight, dbias)
            return dx, None, None, dweight, dbias, None, None

    def layer_norm(x, normalized_shape: Sequence[int], weight, bias, eps: float):  # type: ignore[no-untyped-def]
        return LayerNorm.apply(x, weight, bias, eps)

    def rms_norm(x, normalized_shape: Sequence[int], weight, eps: Optional[float]):  # type: ignore[no-untyped-def]
        return RmsNorm.apply(x, weight, 1e-5 if eps is None else eps)

    def batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps):  # type: ignore[no-untyped-def]
        if training:
            return BatchNormTraining.apply(x, running_mean, running_var, weight, bias, momentum, eps)
        layout, n, c, s, memory_format = geometry(x)
        y = torch.empty_like(x, memory_format=memory_format)
        library.call("BatchNormForwardInference", layout, n, c, s, library.dtype(x), library.dtype(weight), x, weight,
                     bias, running_mean, running_var, float(eps), y)
        return y

    return {"layer_norm": layer_norm, "rms_norm": rms_norm, "batch_norm": batch_norm}


def check_against_torch(torch, ops: Dict[str, Callable], device: str) -> None:  # type: ignore[no-untyped-def]
    """Each op once on a small tensor, output and gradients against torch's (float32)."""
    import torch.nn.functional as F

    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(37, 256, device=device, generator=g, requires_grad=True)
    w = torch.rand(256, device=device, generator=g).add_(0.5).requires_grad_()
    b = torch.randn(256, device=device, generator=g, requires_grad=True)
    dy = torch.randn(37, 256, device=device, generator=g)

    def close(ours, theirs, what):  # type: ignore[no-untyped-def]
        error = (ours - theirs).abs().max().item()
        if not error <= 1e-4 * (1 + theirs.abs().max().item()):
            raise RuntimeError(f"{what}: cunorm and torch differ by {error}")

    def compare(name, ours, theirs, inputs):  # type: ignore[no-untyped-def]
        close(ours, theirs, name)
        for a, b_ in zip(torch.autograd.grad(ours, inputs, dy), torch.autograd.grad(theirs, inputs, dy)):
            close(a, b_, name + " gradient")

    compare("layer_norm", ops["layer_norm"](x, (256,), w, b, 1e-5), F.layer_norm(x, (256,), w, b, 1e-5), (x, w, b))
    rms = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w
    compare("rms_norm", ops["rms_norm"](x, (256,), w, 1e-5), rms, (x, w))
    for memory_format in (torch.contiguous_format, torch.channels_last):
        xb = torch.randn(4, 8, 5, 5, device=device, generator=g).contiguous(memory_format=memory_format)
        xb.requires_grad_()
        wb, bb = w[:8].detach().clone().requires_grad_(), b[:8].detach().clone().requires_grad_()
        dyb = torch.randn_like(xb)
        ours = ops["batch_norm"](xb, torch.zeros(8, device=device), torch.ones(8, device=device), wb, bb, True, 0.1,
                                 1e-5)
        theirs = F.batch_norm(xb, torch.zeros(8, device=device), torch.ones(8, device=device), wb, bb, True, 0.1,
                              1e-5)
        close(ours, theirs, f"batch_norm {memory_format}")
        for a, b_ in zip(torch.autograd.grad(ours, (xb, wb, bb), dyb), torch.autograd.grad(theirs, (xb, wb, bb), dyb)):
            close(a, b_, f"batch_norm {memory_format} gradient")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", required=True, help="libcunorm.so built with the CUDA backend")
    parser.add_argument("--json", required=True, help="JSON lines out (python -m cunorm.bench's records)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check_torch: torch sees no CUDA GPU", file=sys.stderr)
        return 2
    ops = functions(_Library(args.library, torch, args.device))
    try:
        check_against_torch(torch, ops, args.device)
    except RuntimeError as error:
        print(f"gpu_check_torch: {error}", file=sys.stderr)
        return 1
    print(f"gpu_check_torch: torch {torch.__version__}; each op agrees with torch on a small tensor")
    with open(args.json, "w", encoding="utf-8") as json_file:
        return cunorm_bench.run(args.device, args.quick, False, sys.stdout, json_file, cunorm_functions=ops)


if __name__ == "__main__":
    sys.exit(main())
