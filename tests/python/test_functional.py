"""cunorm.torch.functional against torch's float64 ops on the same rounded inputs: values and the
gradients of input, weight and bias through autograd, over odd shapes and every dtype pair, on
CPU tensors (the SIMT backend); plus argument errors, fallbacks and strict mode."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

import cunorm.torch as ct

# Tolerance of a result in dtype against float64, relative to the result's largest magnitude:
# the input and output roundings of that dtype and float32 accumulation.
TOLERANCE = {torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}
DTYPE_PAIRS = [
    (torch.float32, torch.float32),
    (torch.float16, torch.float32),
    (torch.float16, torch.float16),
    (torch.bfloat16, torch.float32),
    (torch.bfloat16, torch.bfloat16),
]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    scale = max(expected.abs().max().item(), 1.0)
    error = (actual.double() - expected).abs().max().item()
    assert error <= TOLERANCE[dtype] * scale, f"max error {error} > {TOLERANCE[dtype]} * {scale}"


def leaves(*tensors):
    return [t.detach().clone().requires_grad_() for t in tensors]


def float64_leaves(*tensors):
    return [t.detach().double().requires_grad_() for t in tensors]


@pytest.mark.parametrize("dtype,param_dtype", DTYPE_PAIRS)
@pytest.mark.parametrize("shape,normalized", [((3, 5, 33), (33,)), ((2, 4, 7), (4, 7)), ((1, 1), (1,)), ((2, 1031), (1031,))])
def test_layer_norm_matches_torch(dtype, param_dtype, shape, normalized):
    torch.manual_seed(1)
    x, w, b = leaves(torch.randn(shape).to(dtype), torch.randn(normalized).to(param_dtype), torch.randn(normalized).to(param_dtype))
    y = ct.functional.layer_norm(x, normalized, w, b, 1e-5)
    grad = torch.randn(shape).to(dtype)
    y.backward(grad)
    x64, w64, b64 = float64_leaves(x, w, b)
    y64 = F.layer_norm(x64, normalized, w64, b64, 1e-5)
    y64.backward(grad.double())
    assert y.dtype == dtype and w.grad.dtype == param_dtype
    assert_close(y, y64, dtype)
    assert_close(x.grad, x64.grad, dtype)
    assert_close(w.grad, w64.grad, param_dtype if param_dtype != torch.float32 else dtype)
    assert_close(b.grad, b64.grad, param_dtype if param_dtype != torch.float32 else dtype)


def reference_rms_norm(x, normalized, weight, eps):
    dims = tuple(range(x.dim() - len(normalized), x.dim()))
    y = x * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + eps)
    return y if weight is None else y * weight


@pytest.mark.parametrize("dtype,param_dtype", DTYPE_PAIRS)
@pytest.mark.parametrize("shape,normalized", [((3, 5, 33), (33,)), ((2, 4, 7), (4, 7)), ((2, 1031), (1031,))])
def test_rms_norm_matches_torch(dtype, param_dtype, shape, normalized):
    torch.manual_seed(2)
    x, w = leaves(torch.randn(shape).to(dtype), torch.randn(normalized).to(param_dtype))
    y = ct.functional.rms_norm(x, normalized, w)  # eps=None: the dtype's machine epsilon
    grad = torch.randn(shape).to(dtype)
    y.backward(grad)
    x64, w64 = float64_leaves(x, w)
    y64 = reference_rms_norm(x64, normalized, w64, torch.finfo(dtype).eps)
    y64.backward(grad.double())
    assert_close(y, y64, dtype)
    assert_close(x.grad, x64.grad, dtype)
    assert_close(w.grad, w64.grad, param_dtype if param_dtype != torch.float32 else dtype)


def test_row_norms_without_parameters():
    x = torch.randn(4, 9)
    assert_close(ct.functional.layer_norm(x, (9,)), F.layer_norm(x.double(), (9,)), torch.float32)
    assert_close(ct.functional.rms_norm(x, 9, eps=1e-6), reference_rms_norm(x.double(), (9,), None, 1e-6), torch.float32)


BATCH_SHAPES = [
    ((5, 3), torch.contiguous_format),
    ((4, 3, 7), torch.contiguous_format),
    ((2, 3, 5, 6), torch.contiguous_format),
    ((2, 3, 5, 6), torch.channels_last),
    ((2, 3, 2, 3, 4), torch.channels_last_3d),
]


@pytest.mark.parametrize("dtype,param_dtype", DTYPE_PAIRS)
@pytest.mark.parametrize("shape,memory_format", BATCH_SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(dtype, param_dtype, shape, memory_format, training):
    torch.manual_seed(3)
    c = shape[1]
    x, w, b = leaves(
        torch.randn(shape).to(dtype).to(memory_format=memory_format), torch.randn(c).to(param_dtype), torch.randn(c).to(param_dtype)
    )
    mean, var = torch.randn(c) * 0.1, torch.rand(c) + 0.5
    mean64, var64 = mean.double(), var.double()
    y = ct.functional.batch_norm(x, mean, var, w, b, training, 0.1, 1e-5)
    assert y.is_contiguous(memory_format=memory_format)
    grad = torch.randn(shape).to(dtype)  # contiguous: either memory format is accepted
    y.backward(grad)
    x64, w64, b64 = float64_leaves(x, w, b)
    y64 = F.batch_norm(x64, mean64, var64, w64, b64, training, 0.1, 1e-5)
    y64.backward(grad.double())
    assert_close(y, y64, dtype)
    assert_close(x.grad, x64.grad, dtype)
    assert_close(w.grad, w64.grad, dtype)
    assert_close(b.grad, b64.grad, dtype)
    assert_close(mean, mean64, torch.float32)
    assert_close(var, var64, torch.float32)


def test_errors_are_torchs_types_and_write_nothing():
    x = torch.randn(2, 3)
    with pytest.raises(RuntimeError, match="trailing sizes"):
        ct.functional.layer_norm(x, (4,))
    with pytest.raises(RuntimeError, match="weight must have shape"):
        ct.functional.layer_norm(x, (3,), torch.ones(4))
    with pytest.raises(TypeError):
        ct.functional.layer_norm(x, "3")
    with pytest.raises(TypeError):
        ct.functional.rms_norm([1.0], 1)
    mean, var = torch.zeros(3), torch.ones(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ct.functional.batch_norm(torch.randn(1, 3), mean, var, training=True)
    with pytest.raises(RuntimeError, match="running_mean must have shape"):
        ct.functional.batch_norm(x, torch.zeros(2), torch.ones(2), training=True)
    assert torch.equal(mean, torch.zeros(3)) and torch.equal(var, torch.ones(3))


def test_fallback_runs_torch_and_strict_mode_raises(monkeypatch):
    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="CUNORM_TORCH_STRICT=1"):
        ct.functional.layer_norm(x, (3,))
    strided = torch.randn(3, 4).t()
    with pytest.raises(RuntimeError, match="not contiguous"):
        ct.functional.rms_norm(strided, (3,))
    monkeypatch.delenv("CUNORM_TORCH_STRICT")
    assert torch.allclose(ct.functional.layer_norm(x, (3,)), F.layer_norm(x, (3,)))
    assert torch.allclose(ct.functional.layer_norm(strided, (3,)), F.layer_norm(strided, (3,)), atol=1e-6)


def test_double_backward_raises():
    x = torch.randn(2, 5, requires_grad=True)
    (dx,) = torch.autograd.grad(ct.functional.layer_norm(x, (5,)).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        dx.sum().backward()


def test_modules_match_torch_state_dicts_and_copies():
    torch.manual_seed(4)
    pairs = [
        (ct.nn.LayerNorm(6), torch.nn.LayerNorm(6), torch.randn(3, 6)),
        (ct.nn.BatchNorm1d(6), torch.nn.BatchNorm1d(6), torch.randn(5, 6)),
        (ct.nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2), torch.randn(3, 2, 4, 4)),
        (ct.nn.BatchNorm3d(2, momentum=None), torch.nn.BatchNorm3d(2, momentum=None), torch.randn(2, 2, 2, 3, 3)),
    ]
    for ours, theirs, x in pairs:
        with torch.no_grad():
            for p in theirs.parameters():
                p.uniform_(0.5, 1.5)
        ours.load_state_dict(theirs.state_dict())
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
        assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
        for _ in range(3):
            assert torch.allclose(ours(x), theirs(x), atol=1e-5)
        ours.eval()
        theirs.eval()
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)
        theirs.load_state_dict(ours.state_dict())
        for module in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
            assert torch.allclose(module(x), ours(x))


def test_rms_norm_module():
    module = ct.nn.RMSNorm((2, 3), eps=1e-6)
    assert [n for n, _ in module.named_parameters()] == ["weight"] and torch.equal(module.weight, torch.ones(2, 3))
    x = torch.randn(4, 2, 3)
    assert_close(module(x), reference_rms_norm(x.double(), (2, 3), None, 1e-6), torch.float32)
    assert ct.nn.RMSNorm(3, elementwise_affine=False).weight is None


@pytest.mark.parametrize("op", ["layer_norm", "rms_norm", "batch_norm"])
@pytest.mark.parametrize("dtype,param_dtype", [(torch.float32, torch.float32), (torch.bfloat16, torch.float32), (torch.bfloat16, torch.bfloat16)])
def test_cpu_autocast_leaves_the_norms_alone(op, dtype, param_dtype):
    """torch's CPU autocast (bfloat16) casts none of the norms: each runs in its input's dtype.
    cunorm's give their results outside autocast, bitwise, in the dtype torch's op gives (where
    torch's accepts the dtypes: torch 1.13's CPU layer_norm rejects float32 parameters of a
    bfloat16 input)."""
    torch.manual_seed(9)
    shape = (4, 6, 5) if op == "batch_norm" else (5, 48)
    features = shape[1] if op == "batch_norm" else shape[-1]
    x, w, b = torch.randn(shape).to(dtype), torch.rand(features).to(param_dtype), torch.randn(features).to(param_dtype)

    def run(module):
        if op == "layer_norm":
            return module.layer_norm(x, (features,), w, b, 1e-5)
        if op == "rms_norm":
            if module is F and not hasattr(F, "rms_norm"):  # torch before 2.4
                return reference_rms_norm(x, (features,), w, 1e-5)
            return module.rms_norm(x, (features,), w, 1e-5)
        running = torch.zeros(features, dtype=param_dtype), torch.ones(features, dtype=param_dtype)
        return module.batch_norm(x, *running, w, b, True, 0.1, 1e-5)

    outside = run(ct.functional)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = run(ct.functional)
        theirs = run(F) if param_dtype == dtype else None
    assert torch.equal(inside, outside)
    if theirs is not None:
        assert inside.dtype == theirs.dtype
