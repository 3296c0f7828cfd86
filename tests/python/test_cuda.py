"""cunorm.torch on CUDA tensors (the CUDA backend): each op against torch's float64 op on the same
rounded inputs, on torch's current stream (a non-default stream too), captured into and replayed
from a CUDA graph, and on a second device while another is current. Every test here needs a GPU
usable by torch and by cunorm (a build with the CUDA backend) and skips with that reason where
there is none: CI has none; scripts/gpu_check.sh runs them where one is."""

from typing import Tuple

import pytest
import torch
import torch.nn.functional as F

import cunorm.torch as ct
from cunorm.torch import _backend

TOLERANCE = {torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}


def _cuda_reason() -> str:
    """Why the CUDA tests cannot run here, or "" when they can."""
    if not torch.cuda.is_available():
        return "needs a CUDA GPU usable by torch; torch sees none"
    try:
        _backend.check_device(torch.device("cuda", 0))
    except _backend.Unsupported as reason:
        return f"needs cunorm's CUDA backend: {reason}"
    return ""


pytestmark = pytest.mark.skipif(_cuda_reason() != "", reason=_cuda_reason() or "CUDA usable")


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    scale = max(expected.abs().max().item(), 1.0)
    error = (actual.double().cpu() - expected.cpu()).abs().max().item()
    assert error <= TOLERANCE[dtype] * scale, f"max error {error} > {TOLERANCE[dtype]} * {scale}"


def _inputs(shape: Tuple[int, ...], features: int, dtype: torch.dtype, device: str):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(7)
    x = torch.randn(shape, generator=g).to(dtype)
    w, b = torch.rand(features, generator=g) + 0.5, torch.randn(features, generator=g)
    dy = torch.randn(shape, generator=g).to(dtype)
    return [t.to(device) for t in (x, w, b, dy)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("op", ["layer_norm", "rms_norm", "batch_norm_training", "batch_norm_nhwc", "batch_norm_eval"])
def test_cuda_ops_match_float64_torch(op: str, dtype: torch.dtype) -> None:
    shape = (8, 6, 9, 5) if op.startswith("batch_norm") else (37, 1031)
    features = shape[1] if op.startswith("batch_norm") else shape[-1]
    x, w, b, dy = _inputs(shape, features, dtype, "cuda")
    if op == "batch_norm_nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    x, w, b = (t.detach().clone().requires_grad_() for t in (x, w, b))
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, w, b))
    stats, stats64 = (torch.zeros(features, device="cuda"), torch.ones(features, device="cuda")), None
    if op == "layer_norm":
        y, y64 = ct.functional.layer_norm(x, (features,), w, b), F.layer_norm(x64, (features,), w64, b64)
    elif op == "rms_norm":
        y = ct.functional.rms_norm(x, (features,), w, 1e-6)
        y64 = x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-6) * w64
        b64 = None
    else:
        training = op != "batch_norm_eval"
        stats64 = tuple(s.double() for s in stats)
        y = ct.functional.batch_norm(x, stats[0], stats[1], w, b, training, 0.1, 1e-5)
        y64 = F.batch_norm(x64, stats64[0], stats64[1], w64, b64, training, 0.1, 1e-5)
    assert y.is_cuda and y.dtype == dtype
    y.backward(dy)
    y64.backward(dy.double())
    assert_close(y, y64, dtype)
    assert_close(x.grad, x64.grad, dtype)
    assert_close(w.grad, w64.grad, dtype)
    if b64 is not None:
        assert_close(b.grad, b64.grad, dtype)
    if stats64 is not None:
        for s, s64 in zip(stats, stats64):
            assert_close(s, s64, torch.float32)


def test_ops_run_on_the_current_stream() -> None:
    """On a non-default stream the ops queue behind the stream's earlier work: the input is
    written on that stream just before, with no synchronization in between."""
    stream = torch.cuda.Stream()
    x, w, b, _ = _inputs((64, 4096), 4096, torch.float32, "cuda")
    expected = F.layer_norm(x, (4096,), w, b)
    with torch.cuda.stream(stream):
        source = torch.empty_like(x)
        source.copy_(x)  # queued on `stream`
        y = ct.functional.layer_norm(source, (4096,), w, b)
    stream.synchronize()
    assert_close(y, expected.double(), torch.float32)


def test_cuda_graph_capture_and_replay() -> None:
    """A training step (LayerNorm and BatchNorm forward and backward) captured into a CUDA graph,
    then replayed on new input values written into the captured input: each replay gives eager's
    results. The workspace comes from torch's allocator: a cudaMalloc would end the capture with
    an error."""
    model = torch.nn.Sequential(ct.nn.BatchNorm1d(64), ct.nn.LayerNorm(64)).cuda()
    static_x = torch.randn(32, 64, device="cuda", requires_grad=True)
    warmup = torch.cuda.Stream()
    warmup.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(warmup):
        for _ in range(2):
            model(static_x).sum().backward()
    torch.cuda.current_stream().wait_stream(warmup)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = model(static_x)
        static_y.sum().backward()
    for seed in (1, 2):
        torch.manual_seed(seed)
        values = torch.randn(32, 64, device="cuda")
        with torch.no_grad():
            static_x.copy_(values)
        graph.replay()
        x = values.clone().requires_grad_()
        eager = torch.nn.Sequential(torch.nn.BatchNorm1d(64), torch.nn.LayerNorm(64)).cuda()
        eager.load_state_dict(model.state_dict())
        expected = eager(x)
        assert_close(static_y.detach(), expected.detach().double(), torch.float32)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_a_second_device_while_the_first_is_current() -> None:
    x, w, b, _ = _inputs((16, 512), 512, torch.float32, "cuda:1")
    with torch.cuda.device(0):
        y = ct.functional.layer_norm(x, (512,), w, b)
        assert torch.cuda.current_device() == 0
    assert y.device == torch.device("cuda", 1)
    assert_close(y, F.layer_norm(x.double(), (512,), w.double(), b.double()), torch.float32)


@pytest.mark.parametrize("op", ["layer_norm", "rms_norm", "batch_norm"])
def test_cuda_autocast_follows_torchs_policy(op: str) -> None:
    """Under CUDA autocast (float16) each op's output has the dtype torch's op gives (layer_norm,
    and rms_norm where torch has it: float32; batch_norm: the input's)."""
    x, w, b, _ = _inputs((8, 6, 5) if op == "batch_norm" else (8, 64), 6 if op == "batch_norm" else 64, torch.float16, "cuda")
    features = w.numel()
    running = (torch.zeros(features, device="cuda"), torch.ones(features, device="cuda"))
    with torch.autocast("cuda", dtype=torch.float16):
        if op == "layer_norm":
            ours, theirs = ct.functional.layer_norm(x, (features,), w, b), F.layer_norm(x, (features,), w, b)
        elif op == "rms_norm":
            if not hasattr(F, "rms_norm"):
                pytest.skip(f"torch {torch.__version__} has no rms_norm to compare with (2.4 or newer)")
            ours, theirs = ct.functional.rms_norm(x, (features,), w), F.rms_norm(x, (features,), w)
        else:
            ours = ct.functional.batch_norm(x, running[0].clone(), running[1].clone(), w, b, True)
            theirs = F.batch_norm(x, running[0].clone(), running[1].clone(), w, b, True)
    assert ours.dtype == theirs.dtype
    assert_close(ours, theirs.double(), ours.dtype)
