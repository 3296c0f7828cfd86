"""python -m cunorm.bench: cunorm.torch against torch eager and torch.compile (where it compiles) on
the C benchmark's GPU grid: layer_norm and rms_norm forward and backward over rows x cols of 2^26
elements (cols 32 to 262144, 768, 1000, 4099, and 1000000 x 128) and 1024x12288 (with three of
the powers of two, the shapes of the published figures), and batch_norm training forward,
backward and inference forward on ResNet-50's layer shapes at batch 32, NCHW and NHWC.

Each implementation runs the same tensors through torch's API: the forward alone, or the backward
of autograd's graph given an incoming gradient (torch.autograd.grad of dx, dweight, dbias: nothing
accumulated into .grad). Times are CUDA events around
one call, the median of the repetitions, with the L2 cache flushed before each (a write of twice
its size); GB/s counts each op's DRAM floor bytes (bench/'s floor: activations once, parameters
and statistics once) over that time, and the percent is of a device-to-device copy's rate measured
the same way. Output: one line per row on stdout, and with --json FILE one JSON object per line
(op, layout, dtypes, shape, implementation, ms, gbps, copy_gbps, percent_of_copy, floor_bytes).
Without a CUDA GPU that torch and cunorm can use it says why and exits with status 2; --device cpu
runs the same harness on a small grid on the CPU (SIMT emulation speed: a check of the harness,
not a measurement)."""

import argparse
import json
import statistics
import sys
import time
from typing import Callable, Dict, Iterator, List, Optional, TextIO, Tuple

_ROW_DTYPES = (("f32/f32", "float32", "float32"), ("f16/f32", "float16", "float32"), ("bf16/bf16", "bfloat16", "bfloat16"))
_BATCH_DTYPES = (("f32/f32", "float32", "float32"), ("f16/f32", "float16", "float32"))
# ResNet-50's BatchNorm inputs (channels, height = width), as in bench/batch_norm_bench.cpp.
_RESNET50 = ((64, 112), (64, 56), (256, 56), (128, 56), (128, 28), (512, 28), (256, 28), (256, 14), (1024, 14),
             (512, 14), (512, 7), (2048, 7))
_ELEMENT_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def row_shapes(total: int) -> List[Tuple[int, int]]:
    """The C benchmark's row-norm shapes at `total` elements: powers of two, odd lengths, many rows,
    then 1024x12288 (with 4096x16384, 16384x4096 and 8192x8192 among the powers of two, the
    published figures' shapes), rows scaled by total / 2^26 as the rest."""
    shapes = [(max(1, total // cols), cols) for cols in (2**k for k in range(5, 19))]
    shapes += [(max(1, total // cols), cols) for cols in (768, 1000, 4099)]
    return shapes + [(max(1, 1000000 * total // 2**26), 128), (max(1, 1024 * total // 2**26), 12288)]


def row_floor(op: str, rows: int, cols: int, dtype: str, param: str) -> int:
    """bench/row_norm_bench.cpp's floor: x, y (forward) or x, dy, dx (backward) once; gamma (and
    beta) or their gradients, the backward's gamma read, and the per-row statistics once."""
    layer = op.startswith("layer_norm")
    forward = op.endswith("forward")
    n, s, p = rows * cols, _ELEMENT_BYTES[dtype], cols * _ELEMENT_BYTES[param]
    params = 2 * p if layer else p
    return (2 if forward else 3) * n * s + params + rows * (8 if layer else 4) + (0 if forward else p)


def batch_floor(op: str, elements: int, channels: int, dtype: str, param: str) -> int:
    """bench/batch_norm_bench.cpp's floor: x (and dy) read and y (or dx) written once; per channel
    gamma and beta, running statistics (read, and written by training), saved statistics
    (written by training, read by the backward), the backward's gamma read, dgamma and dbeta."""
    tensor, p, stat = elements * _ELEMENT_BYTES[dtype], channels * _ELEMENT_BYTES[param], channels * 4
    if op == "batch_norm_forward_training":
        return 2 * tensor + 2 * p + 4 * stat + 2 * stat
    if op == "batch_norm_backward":
        return 3 * tensor + p + 2 * stat + 2 * p
    return 2 * tensor + 2 * p + 2 * stat  # inference forward


class _Timer:
    """Median milliseconds of fn() over `repeats` calls, each after an L2 flush: CUDA events on a
    GPU, the wall clock on the CPU."""

    def __init__(self, torch, device, repeats: int) -> None:  # type: ignore[no-untyped-def]
        self.torch, self.device, self.repeats = torch, device, repeats
        if device.type == "cuda":
            l2 = torch.cuda.get_device_properties(device).L2_cache_size or (64 << 20)
            self.flush = torch.empty(2 * l2, dtype=torch.uint8, device=device)

    def __call__(self, fn: Callable[[], object]) -> float:
        torch = self.torch
        fn()  # warm up (and compile)
        times = []
        for _ in range(self.repeats):
            if self.device.type == "cuda":
                self.flush.fill_(1)
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                stop.record()
                stop.synchronize()
                times.append(start.elapsed_time(stop))
            else:
                begin = time.perf_counter()
                fn()
                times.append((time.perf_counter() - begin) * 1e3)
        return statistics.median(times)


def _implementations(torch, with_compile: bool,  # type: ignore[no-untyped-def]
                     cunorm_functions: Optional[Dict[str, Callable]]) -> Dict[str, Callable]:
    """Each implementation's (layer_norm, rms_norm, batch_norm) functions by name; cunorm's are
    cunorm.torch.functional's unless given."""
    import torch.nn.functional as F

    def torch_rms_norm(x, shape, weight, eps):  # type: ignore[no-untyped-def]
        if hasattr(F, "rms_norm"):
            return F.rms_norm(x, shape, weight, eps)
        return (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps) * weight).to(x.dtype)

    eager = {"layer_norm": F.layer_norm, "rms_norm": torch_rms_norm, "batch_norm": F.batch_norm}
    if cunorm_functions is None:
        import cunorm.torch as ct

        cunorm_functions = {"layer_norm": ct.functional.layer_norm, "rms_norm": ct.functional.rms_norm,
                            "batch_norm": ct.functional.batch_norm}
    result = {"cunorm": cunorm_functions, "torch": eager}
    if with_compile and hasattr(torch, "compile"):
        result["torch.compile"] = {name: torch.compile(fn, dynamic=False) for name, fn in eager.items()}
    return result


def _row_cases(torch, device, total: int) -> Iterator[Tuple[dict, Callable[[Dict], Callable[[], object]]]]:  # type: ignore[no-untyped-def]
    for op_family in ("layer_norm", "rms_norm"):
        for label, dtype_name, param_name in _ROW_DTYPES:
            dtype, param = getattr(torch, dtype_name), getattr(torch, param_name)
            for rows, cols in row_shapes(total):
                for direction in ("forward", "backward"):
                    op = f"{op_family}_{direction}"
                    record = {"op": op, "layout": "", "dtypes": label, "shape": f"{rows}x{cols}",
                              "floor_bytes": row_floor(op, rows, cols, dtype_name, param_name)}

                    def make(impl: Dict, op_family=op_family, direction=direction, rows=rows, cols=cols,
                             dtype=dtype, param=param) -> Callable[[], object]:
                        x = torch.randn(rows, cols, device=device, dtype=dtype).requires_grad_(direction == "backward")
                        w = torch.rand(cols, device=device, dtype=param).add_(0.5).requires_grad_(direction == "backward")
                        b = torch.randn(cols, device=device, dtype=param).requires_grad_(direction == "backward")
                        fn = impl[op_family]
                        call = (lambda: fn(x, (cols,), w, b, 1e-5)) if op_family == "layer_norm" else (
                            lambda: fn(x, (cols,), w, 1e-5))
                        if direction == "forward":
                            return call
                        y, dy = call(), torch.randn(rows, cols, device=device, dtype=dtype)
                        inputs = (x, w, b) if op_family == "layer_norm" else (x, w)
                        return lambda: torch.autograd.grad(y, inputs, dy, retain_graph=True)

                    yield record, make


def _batch_cases(torch, device, batch: int, layers) -> Iterator[Tuple[dict, Callable[[Dict], Callable[[], object]]]]:  # type: ignore[no-untyped-def]
    for op in ("batch_norm_forward_training", "batch_norm_backward", "batch_norm_forward_inference"):
        for layout in ("NCHW", "NHWC"):
            for label, dtype_name, param_name in _BATCH_DTYPES:
                dtype, param = getattr(torch, dtype_name), getattr(torch, param_name)
                for c, hw in layers:
                    elements = batch * c * hw * hw
                    record = {"op": op, "layout": layout, "dtypes": label, "shape": f"{batch}x{c}x{hw}x{hw}",
                              "floor_bytes": batch_floor(op, elements, c, dtype_name, param_name)}

                    def make(impl: Dict, op=op, layout=layout, c=c, hw=hw, dtype=dtype, param=param) -> Callable[[], object]:
                        grad = op == "batch_norm_backward"
                        x = torch.randn(batch, c, hw, hw, device=device, dtype=dtype)
                        if layout == "NHWC":
                            x = x.contiguous(memory_format=torch.channels_last)
                        x.requires_grad_(grad)
                        w = torch.rand(c, device=device, dtype=param).add_(0.5).requires_grad_(grad)
                        b = torch.randn(c, device=device, dtype=param).requires_grad_(grad)
                        mean, var = torch.zeros(c, device=device), torch.ones(c, device=device)
                        training = op != "batch_norm_forward_inference"
                        call = lambda: impl["batch_norm"](x, mean, var, w, b, training, 0.1, 1e-5)  # noqa: E731
                        if not grad:
                            return call
                        y, dy = call(), torch.randn_like(x)
                        return lambda: torch.autograd.grad(y, (x, w, b), dy, retain_graph=True)

                    yield record, make


def _copy_gbps(torch, device, timer: _Timer) -> float:  # type: ignore[no-untyped-def]
    """A device-to-device copy's rate, read plus write bytes over time."""
    source = torch.empty(1 << 28 if device.type == "cuda" else 1 << 20, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    ms = timer(lambda: target.copy_(source))
    return 2 * source.numel() / (ms * 1e-3) / 1e9


def _unusable_reason(torch, device, own_cunorm: bool) -> Optional[str]:  # type: ignore[no-untyped-def]
    if device.type == "cuda" and not torch.cuda.is_available():
        return "torch sees no CUDA GPU"
    if not own_cunorm:
        return None
    from cunorm.torch import _backend

    try:
        _backend.check_device(device)
    except _backend.Unsupported as reason:
        return str(reason)
    return None


def run(device_name: str, quick: bool, with_compile: bool, out: TextIO, json_file: Optional[TextIO],
        cunorm_functions: Optional[Dict[str, Callable]] = None) -> int:
    """Runs the grid; returns the exit status (2: the device cannot be used). `cunorm_functions`
    replaces cunorm.torch's functions (the GPU check passes its own, over the C library through
    ctypes)."""
    try:
        import torch
    except ImportError:
        print("cunorm.bench needs torch (pip install cunorm[torch])", file=sys.stderr)
        return 2
    device = torch.device(device_name)
    reason = _unusable_reason(torch, device, cunorm_functions is None)
    if reason is not None:
        print(f"cunorm.bench: no benchmark on {device_name}: {reason}", file=sys.stderr)
        return 2
    gpu = device.type == "cuda"
    timer = _Timer(torch, device, repeats=(5 if quick else 20) if gpu else 1)
    copy = _copy_gbps(torch, device, timer)
    total = (1 << 26 if not quick else 1 << 24) if gpu else 1 << 12
    layers = _RESNET50 if gpu and not quick else _RESNET50[-2:]
    cases = list(_row_cases(torch, device, total)) + list(_batch_cases(torch, device, 32 if gpu else 1, layers))
    if not gpu or quick:
        cases = cases[::7]
    implementations = _implementations(torch, with_compile, cunorm_functions)
    name = torch.cuda.get_device_name(device) if gpu else "CPU (SIMT emulation: not a measurement)"
    print(f"cunorm.bench on {name}; copy {copy:.1f} GB/s; torch {torch.__version__}", file=out)
    for record, make in cases:
        for implementation, functions in implementations.items():
            try:
                ms = timer(make(functions))
            except Exception as error:  # a compile failure or an unsupported input: reported, not fatal
                print(f"{record['op']} {record['layout']} {record['dtypes']} {record['shape']} {implementation}: "
                      f"failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", file=out)
                continue
            gbps = record["floor_bytes"] / (ms * 1e-3) / 1e9
            row = dict(record, implementation=implementation, ms=ms, gbps=gbps, copy_gbps=copy,
                       percent_of_copy=100 * gbps / copy)
            print(f"{row['op']:<29} {row['layout']:<4} {row['dtypes']:<9} {row['shape']:<16} {implementation:<13} "
                  f"{ms:10.4f} ms {gbps:9.1f} GB/s {row['percent_of_copy']:6.1f}%", file=out)
            if json_file is not None:
                json_file.write(json.dumps(row) + "\n")
                json_file.flush()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """The command line: python -m cunorm.bench [--json FILE] [--quick] [--no-compile] [--device D]."""
    parser = argparse.ArgumentParser(prog="python -m cunorm.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write one JSON object per row to FILE")
    parser.add_argument("--quick", action="store_true", help="a seventh of the grid, at a quarter of the size")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (a check of the harness)")
    args = parser.parse_args(argv)
    json_file = open(args.json, "w") if args.json else None
    try:
        return run(args.device, args.quick, not args.no_compile, sys.stdout, json_file)
    finally:
        if json_file is not None:
            json_file.close()


if __name__ == "__main__":
    sys.exit(main())
