"""cunorm.torch's ops as torch operators: each native call is one registered operator (cunorm::*)
that passes torch.library.opcheck (schema, declared mutations, fake implementation, AOT dispatch),
and torch.compile(fullgraph=True) runs those operators as opaque nodes of the forward and backward
graphs, giving eager's outputs, gradients and running statistics bitwise. Registration needs
torch.library.custom_op (torch 2.4 or newer): on older torch (CI's Debian torch 1.13) every test
here skips with that reason."""

from typing import Callable, List, Set

import pytest
import torch

import cunorm.torch as ct
from cunorm.torch import _backend, _library

pytestmark = pytest.mark.skipif(
    not _library.registered,
    reason=f"needs torch >= 2.4 (torch.library.custom_op) to register operators; this is torch {torch.__version__}",
)

F = ct.functional
NCHW, NHWC = 0, 1  # the C API's layout codes, as the operators take them


def _opcheck_cases() -> List[tuple]:
    """(operator, arguments) for every operator: with and without parameters, float32 and bfloat16,
    float32 parameters of a half input, BatchNorm in both layouts, one gradient not wanted."""
    g = torch.Generator().manual_seed(5)
    ops = torch.ops.cunorm
    x = torch.randn(6, 40, generator=g)
    w, b = torch.rand(40, generator=g) + 0.5, torch.randn(40, generator=g)
    dy = torch.randn(6, 40, generator=g)
    _, mean, rstd = _library.layer_norm_forward(x, w, b, 40, 1e-5)
    xh = x.to(torch.bfloat16)
    cases = [
        (ops.layer_norm_forward, (x, w, b, 40, 1e-5)),
        (ops.layer_norm_forward, (xh, None, None, 40, 1e-5)),
        (ops.layer_norm_forward, (xh, w, b, 40, 1e-5)),
        (ops.layer_norm_backward, (dy, x, mean, rstd, w, b, 40, True, False)),
        (ops.layer_norm_backward, (dy, x, mean, rstd, None, None, 40, False, False)),
        (ops.rms_norm_forward, (x, w, 40, 1e-6)),
        (ops.rms_norm_backward, (dy, x, rstd, w, 40, True)),
    ]
    for layout in (NCHW, NHWC):
        xb = torch.randn(4, 3, 5, 7, generator=g)
        if layout == NHWC:
            xb = xb.contiguous(memory_format=torch.channels_last)
        wb, bb = torch.rand(3, generator=g) + 0.5, torch.randn(3, generator=g)
        running_mean, running_var = torch.zeros(3), torch.ones(3)
        _, saved_mean, saved_invstd = _library.batch_norm_forward_training(
            xb, wb, bb, running_mean.clone(), running_var.clone(), layout, 0.1, 1e-5
        )
        dyb = torch.randn_like(xb)
        cases += [
            (ops.batch_norm_forward_training, (xb, wb, bb, running_mean, running_var, layout, 0.1, 1e-5)),
            (ops.batch_norm_forward_training, (xb, None, None, None, None, layout, 0.1, 1e-5)),
            (ops.batch_norm_forward_inference, (xb, wb, bb, running_mean, running_var, layout, 1e-5)),
            (ops.batch_norm_backward, (dyb, xb, wb, bb, saved_mean, saved_invstd, layout, True, True)),
            (ops.batch_norm_backward_inference, (dyb, xb, wb, bb, running_mean, running_var, layout, 1e-5, False, True)),
        ]
    return cases


_OPCHECK_CASES = _opcheck_cases() if _library.registered else []


@pytest.mark.parametrize("case", _OPCHECK_CASES, ids=[str(case[0]) for case in _OPCHECK_CASES])
def test_every_operator_passes_opcheck(case: tuple) -> None:
    op, args = case
    torch.library.opcheck(op, args)


def _recording_backend(seen: Set[str]) -> Callable:
    """aot_eager that records the operators the forward and backward graphs it compiles call (an
    operator that mutates its inputs appears wrapped in auto_functionalized: its first argument)."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    def compiler(graph: torch.fx.GraphModule, example_inputs: list) -> Callable:
        for node in graph.graph.nodes:
            if node.op == "call_function":
                wrapped = str(node.target).startswith("auto_functionalized")
                seen.add(str(node.args[0] if wrapped else node.target))
        return make_boxed_func(graph)

    return aot_autograd(fw_compiler=compiler, bw_compiler=compiler)


def _layer_norm(x, w, b, running):  # type: ignore[no-untyped-def]
    return F.layer_norm(x, (x.shape[-1],), w, b, 1e-5)


def _rms_norm(x, w, b, running):  # type: ignore[no-untyped-def]
    return F.rms_norm(x, (x.shape[-1],), w, None)


def _batch_norm_training(x, w, b, running):  # type: ignore[no-untyped-def]
    return F.batch_norm(x, running[0], running[1], w, b, True, 0.1, 1e-5)


def _batch_norm_inference(x, w, b, running):  # type: ignore[no-untyped-def]
    return F.batch_norm(x, running[0], running[1], w, b, False, 0.1, 1e-5)


@pytest.mark.parametrize(
    "function, operators, shape, channels_last",
    [
        (_layer_norm, ("layer_norm_forward", "layer_norm_backward"), (3, 5, 48), False),
        (_rms_norm, ("rms_norm_forward", "rms_norm_backward"), (7, 96), False),
        (_batch_norm_training, ("batch_norm_forward_training", "batch_norm_backward"), (4, 6, 5, 3), False),
        (_batch_norm_training, ("batch_norm_forward_training", "batch_norm_backward"), (4, 6, 5, 3), True),
        (_batch_norm_inference, ("batch_norm_forward_inference", "batch_norm_backward_inference"), (4, 6, 9), False),
    ],
    ids=["layer_norm", "rms_norm", "batch_norm_training", "batch_norm_training_nhwc", "batch_norm_inference"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_fullgraph_compile_runs_the_operators_and_matches_eager(
    function: Callable, operators: tuple, shape: tuple, channels_last: bool, dtype: torch.dtype
) -> None:
    torch._dynamo.reset()
    _backend._handles.by_device.clear()  # as in a new process: the compiled call is cunorm's first
    g = torch.Generator().manual_seed(11)
    x = torch.randn(shape, generator=g).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    features = shape[1] if function in (_batch_norm_training, _batch_norm_inference) else shape[-1]
    w0, b0 = torch.rand(features, generator=g) + 0.5, torch.randn(features, generator=g)
    dy = torch.randn(shape, generator=g).to(dtype)

    def run(call: Callable) -> tuple:
        xi, w, b = x.clone().requires_grad_(), w0.clone().requires_grad_(), b0.clone().requires_grad_()
        running = (torch.full((features,), 0.25), torch.full((features,), 2.0))
        y = call(xi, w, b, running)
        y.backward(dy)
        return y.detach(), xi.grad, w.grad, b.grad if function is not _rms_norm else None, running

    seen: Set[str] = set()
    compiled = torch.compile(function, fullgraph=True, backend=_recording_backend(seen))
    actual = run(compiled)  # first, so that tracing meets no handle made before
    expected = run(function)
    for name in operators:
        assert f"cunorm.{name}.default" in seen, f"{name} missing from the compiled graphs {sorted(seen)}"
    assert not any("native_layer_norm" in t or "native_batch_norm" in t for t in seen), sorted(seen)
    for what, e, a in zip(("y", "dx", "dweight", "dbias"), expected, actual):
        if e is None:
            assert a is None, what
        else:
            assert torch.equal(e, a), what
    for e, a in zip(expected[4], actual[4]):
        assert torch.equal(e, a), "running statistics"


def test_compiled_model_trains_like_eager() -> None:
    """A small model with all three modules, compiled whole (fullgraph=True), trained for 10 SGD
    steps beside the same model in eager mode: the same losses and final state, bitwise."""
    torch._dynamo.reset()
    torch.manual_seed(3)

    def model() -> torch.nn.Module:
        torch.manual_seed(4)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            ct.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.Flatten(2),
            ct.nn.LayerNorm(36),
            torch.nn.Linear(36, 16),
            ct.nn.RMSNorm(16),
            torch.nn.Flatten(),
            torch.nn.Linear(128, 5),
        )

    eager, compiled_source = model(), model()
    compiled = torch.compile(compiled_source, fullgraph=True, backend="aot_eager")
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (eager, compiled_source)]
    batches = [(torch.randn(6, 3, 6, 6), torch.randint(0, 5, (6,))) for _ in range(10)]
    for inputs, targets in batches:
        losses = []
        for m, optimizer in zip((eager, compiled), optimizers):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(m(inputs), targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[0] == losses[1]
    for (name, e), a in zip(eager.state_dict().items(), compiled_source.state_dict().values()):
        assert torch.equal(e, a), name
