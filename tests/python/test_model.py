"""cunorm.torch.convert and calibrate_batch_norm on small models (CPU tensors, the SIMT backend):
what convert replaces and keeps, calibration against float64 statistics computed layer by layer,
the errors that write nothing, and models trained with SGD and momentum in lockstep with the same
model in torch: an MLP (120 steps), a channels_last CNN with BatchNorm2d and a pre-norm
transformer (100 steps each)."""

import copy

import pytest
import torch

import cunorm.torch as ct


class Residual(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.LayerNorm(6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class MyLayerNorm(torch.nn.LayerNorm):
    """A subclass: convert leaves it alone, its forward may differ from torch's."""


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.Tanh(), Residual(), MyLayerNorm(6)
    )


def test_convert_replaces_exact_types_and_keeps_every_object():
    model = mlp()
    reference = copy.deepcopy(model)
    parameters = list(model.parameters())
    buffers = list(model.buffers())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    converted = ct.convert(model)
    assert converted is model
    assert type(model[1]) is ct.nn.BatchNorm1d
    assert type(model[3].body[1]) is ct.nn.LayerNorm
    assert type(model[4]) is MyLayerNorm
    assert all(a is b for a, b in zip(model.parameters(), parameters))
    assert all(a is b for a, b in zip(model.buffers(), buffers))
    assert list(model.state_dict()) == list(reference.state_dict())
    x = torch.randn(9, 4)
    torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model[1].running_mean, reference[1].running_mean)
    model(x).square().sum().backward()
    before = model[1].weight.detach().clone()
    optimizer.step()
    assert not torch.equal(model[1].weight, before)  # the optimizer holds the converted module's weight


def test_convert_a_norm_itself_returns_its_replacement():
    norm = torch.nn.BatchNorm2d(3)
    converted = ct.convert(norm)
    assert type(converted) is ct.nn.BatchNorm2d and converted.weight is norm.weight
    converted.register_buffer("extra", torch.zeros(1))
    assert "extra" not in dict(norm.named_buffers())  # containers are not shared


def float64_batch_norm_eval(x: torch.Tensor, layer: torch.nn.BatchNorm1d) -> torch.Tensor:
    mean, var = layer.running_mean.double(), layer.running_var.double()
    return (x - mean) / torch.sqrt(var + layer.eps) * layer.weight.double() + layer.bias.double()


def test_calibration_is_exact_layer_after_layer():
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), torch.nn.Tanh(), torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4)
    )
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 2.0)
        model[1].bias.uniform_(-1.0, 1.0)
    ct.convert(model)
    batches = [torch.randn(n, 3) * 3 + 1 for n in (7, 1, 32, 5, 16)]
    model.train()
    model[3].eval()
    ct.calibrate_batch_norm(model, iter(batches))  # an iterator: stored, then read once per layer
    assert [m.training for m in model] == [True, True, True, False, True]
    x = torch.cat(batches).double()
    h1 = torch.nn.functional.linear(x, model[0].weight.double(), model[0].bias.double())
    torch.testing.assert_close(model[1].running_mean.double(), h1.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model[1].running_var.double(), h1.var(0, unbiased=True), rtol=1e-5, atol=1e-5)
    h2 = torch.nn.functional.linear(
        torch.tanh(float64_batch_norm_eval(h1, model[1])), model[3].weight.double(), model[3].bias.double()
    )
    torch.testing.assert_close(model[4].running_mean.double(), h2.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model[4].running_var.double(), h2.var(0, unbiased=True), rtol=1e-5, atol=1e-5)


def test_calibration_of_channels_last_images():
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    batches = [torch.randn(n, 3, 4, 5).to(memory_format=torch.channels_last) for n in (2, 3)]
    ct.calibrate_batch_norm(model, batches)
    x = torch.cat(batches).double().transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(model[0].running_mean.double(), x.mean(1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model[0].running_var.double(), x.var(1, unbiased=True), rtol=1e-5, atol=1e-5)


def statistics(model: torch.nn.Module):
    return [t.clone() for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d) for t in (m.running_mean, m.running_var)]


def assert_unchanged(model: torch.nn.Module, before) -> None:
    for a, b in zip(statistics(model), before):
        assert torch.equal(a, b)


def test_calibration_errors_write_nothing():
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), torch.nn.BatchNorm1d(5)).double()
    before = statistics(model)
    with pytest.raises(ValueError, match="empty"):
        ct.calibrate_batch_norm(model, [])
    with pytest.raises(RuntimeError, match="float64"):
        ct.calibrate_batch_norm(model, [torch.randn(4, 3, dtype=torch.float64)])
    assert_unchanged(model, before)

    class Skips(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    skips = Skips()
    before = statistics(skips)
    with pytest.raises(ValueError, match="unused"):
        ct.calibrate_batch_norm(skips, [torch.randn(4, 3)])
    assert_unchanged(skips, before)


def test_training_in_lockstep_with_torch():
    torch.manual_seed(3)
    reference = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Tanh(), torch.nn.Linear(16, 8), torch.nn.LayerNorm(8),
        torch.nn.Linear(8, 3),
    )
    model = ct.convert(copy.deepcopy(reference))
    assert type(model[1]) is ct.nn.BatchNorm1d and type(model[4]) is ct.nn.LayerNorm
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (reference, model)]
    data, targets = torch.randn(512, 8), torch.randint(0, 3, (512,))
    for step in range(120):
        rows = torch.randint(0, 512, (32,))
        losses = []
        for m, optimizer in zip((reference, model), optimizers):
            loss = torch.nn.functional.cross_entropy(m(data[rows]), targets[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[1] == pytest.approx(losses[0], rel=1e-4, abs=1e-5), f"step {step}"
    for (name, a), b in zip(reference.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4, msg=name)


def lockstep(reference: torch.nn.Module, batches, loss_of, steps: int, lr: float) -> None:
    """Trains `reference` and its converted copy side by side (SGD, momentum 0.9) on the same
    batches: every loss within rel 1e-4, and the final state_dicts (running statistics included)
    within 1e-3."""
    model = ct.convert(copy.deepcopy(reference))
    assert any(type(m).__module__ == "cunorm.torch.nn" for m in model.modules())
    optimizers = [torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9) for m in (reference, model)]
    for step in range(steps):
        inputs, targets = batches(step)
        losses = []
        for m, optimizer in zip((reference, model), optimizers):
            loss = loss_of(m(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[1] == pytest.approx(losses[0], rel=1e-4, abs=1e-5), f"step {step}"
    reference.eval(), model.eval()
    probe = batches(steps)[0]
    torch.testing.assert_close(model(probe), reference(probe), rtol=1e-3, atol=1e-4, msg="eval mode")
    for (name, a), b in zip(reference.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4, msg=name)


def test_convolutional_model_trains_in_lockstep_with_torch():
    """Two conv + BatchNorm2d + ReLU stages on channels_last images, 100 steps."""
    torch.manual_seed(5)
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4),
    ).to(memory_format=torch.channels_last)
    images = torch.randn(256, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 4, (256,))

    def batches(step: int):
        rows = torch.arange(step * 16, step * 16 + 16) % 256
        return images[rows], labels[rows]

    lockstep(reference, batches, torch.nn.functional.cross_entropy, steps=100, lr=0.02)


class PreNormBlock(torch.nn.Module):
    """Seed 003's pre-norm transformer block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(width), torch.nn.LayerNorm(width)
        self.attention = torch.nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(width, 2 * width), torch.nn.GELU(), torch.nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attention(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


def test_transformer_trains_in_lockstep_with_torch():
    """Two pre-norm blocks and a final LayerNorm regressing a smooth function of the sequence,
    100 steps (a regression target, without the learning phase transition of the example's
    classification task, through which two runs of rounding-different kernels part ways)."""
    torch.manual_seed(6)
    reference = torch.nn.Sequential(PreNormBlock(16, 2), PreNormBlock(16, 2), torch.nn.LayerNorm(16), torch.nn.Linear(16, 1))
    sequences = torch.randn(128, 10, 16)
    targets = sequences.cumsum(dim=1).mean(dim=2, keepdim=True).tanh()

    def batches(step: int):
        rows = torch.arange(step * 8, step * 8 + 8) % 128
        return sequences[rows], targets[rows]

    lockstep(reference, batches, torch.nn.functional.mse_loss, steps=100, lr=0.01)
