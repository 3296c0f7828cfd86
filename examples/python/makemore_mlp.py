"""Seed 001's character-level MLP (makemore: embedding, Linear without bias, BatchNorm1d, tanh,
Linear) trained with cunorm's BatchNorm1d, then calibrated: the running statistics set to the
exact mean and variance of the hidden pre-activations over the whole training set, as the seed's
"calibrate the batch norm at the end of training" does by hand. No dataset is downloaded: the
names are drawn from a fixed syllable grammar. Prints the losses; runs in about ten seconds on a
CPU (the SIMT backend). Run: python examples/python/makemore_mlp.py"""

import random

import torch

import cunorm.torch as ct

BLOCK_SIZE = 3  # characters of context
N_EMBD, N_HIDDEN = 10, 64
STEPS, BATCH = 600, 32


def names(count: int, seed: int) -> list:
    rng = random.Random(seed)
    onsets, vowels, codas = "b d f g k l m n p r s t v z".split(), "a e i o u y".split(), ["", "", "n", "r", "s", "l"]
    return ["".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(rng.randint(1, 3))) for _ in range(count)]


def dataset(words: list, stoi: dict):
    contexts, targets = [], []
    for word in words:
        context = [0] * BLOCK_SIZE
        for ch in word + ".":
            contexts.append(context)
            targets.append(stoi[ch])
            context = context[1:] + [stoi[ch]]
    return torch.tensor(contexts), torch.tensor(targets)


def main() -> None:
    words = names(3000, seed=0)
    chars = sorted(set("".join(words)))
    stoi = {ch: i + 1 for i, ch in enumerate(chars)}
    stoi["."] = 0
    vocab = len(stoi)
    split = int(0.9 * len(words))
    x_train, y_train = dataset(words[:split], stoi)
    x_dev, y_dev = dataset(words[split:], stoi)

    torch.manual_seed(2147483647)
    model = torch.nn.Sequential(
        torch.nn.Embedding(vocab, N_EMBD),
        torch.nn.Flatten(),
        torch.nn.Linear(BLOCK_SIZE * N_EMBD, N_HIDDEN, bias=False),  # BatchNorm's bias replaces it
        ct.nn.BatchNorm1d(N_HIDDEN, momentum=0.001),  # the seed's 0.999 / 0.001 moving average
        torch.nn.Tanh(),
        torch.nn.Linear(N_HIDDEN, vocab),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(STEPS):
        rows = torch.randint(0, x_train.shape[0], (BATCH,))
        loss = torch.nn.functional.cross_entropy(model(x_train[rows]), y_train[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == STEPS - 1:
            print(f"step {step:4d}  train loss {loss.item():.4f}")

    def dev_loss() -> float:
        model.eval()
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(model(x_dev), y_dev).item()

    print(f"dev loss, moving-average statistics: {dev_loss():.4f}")
    ct.calibrate_batch_norm(model, x_train.split(1000))
    print(f"dev loss, calibrated statistics:     {dev_loss():.4f}")

    with torch.no_grad():  # the seed's calibration, by hand, in float64
        hpreact = model[2](model[1](model[0](x_train))).double()
    bn = model[3]
    mean_error = (bn.running_mean.double() - hpreact.mean(0)).abs().max().item()
    var_error = ((bn.running_var.double() - hpreact.var(0)) / hpreact.var(0)).abs().max().item()
    print(f"calibrated vs whole-training-set statistics: mean {mean_error:.2e}, relative variance {var_error:.2e}")
    assert mean_error < 1e-5 and var_error < 1e-5, "calibration differs from the whole-set statistics"


if __name__ == "__main__":
    main()
