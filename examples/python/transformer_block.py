"""A tiny pre-norm transformer (token embedding, two blocks of causal self-attention and an MLP,
each after a cunorm LayerNorm, and a final cunorm RMSNorm) trained to predict the next token of
sequences that repeat a random pattern, so the loss falls far below chance once attention finds
the period. The model is written with torch.nn.LayerNorm and converted with
cunorm.torch.convert; torch 1.13 has no RMSNorm, so that one is cunorm's from the start. Prints
the losses; runs in about fifteen seconds on a CPU (the SIMT backend).
Run: python examples/python/transformer_block.py"""

import math

import torch

import cunorm.torch as ct

VOCAB, WIDTH, HEADS, LENGTH, PERIOD = 16, 32, 4, 24, 6
STEPS, BATCH = 200, 16


class Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(WIDTH), torch.nn.LayerNorm(WIDTH)
        self.attention = torch.nn.MultiheadAttention(WIDTH, HEADS, batch_first=True)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(WIDTH, 4 * WIDTH), torch.nn.GELU(), torch.nn.Linear(4 * WIDTH, WIDTH))
        self.register_buffer("causal", torch.triu(torch.ones(LENGTH, LENGTH, dtype=torch.bool), diagonal=1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attention(h, h, h, attn_mask=self.causal, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyTransformer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, WIDTH)
        self.position = torch.nn.Parameter(torch.randn(LENGTH, WIDTH) / math.sqrt(WIDTH))
        self.blocks = torch.nn.Sequential(Block(), Block())
        self.norm = ct.nn.RMSNorm(WIDTH)
        self.head = torch.nn.Linear(WIDTH, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.embedding(tokens) + self.position)))


def batch(generator: torch.Generator) -> torch.Tensor:
    pattern = torch.randint(0, VOCAB, (BATCH, PERIOD), generator=generator)
    return pattern.repeat(1, LENGTH // PERIOD + 1)[:, : LENGTH + 1]


def main() -> None:
    torch.manual_seed(0)
    model = ct.convert(TinyTransformer())
    assert type(model.blocks[0].norm1) is ct.nn.LayerNorm
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    first = last = 0.0
    for step in range(STEPS):
        tokens = batch(generator)
        logits = model(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = loss.item() if step == 0 else first
        last = loss.item()
        if step % 25 == 0 or step == STEPS - 1:
            print(f"step {step:3d}  loss {last:.4f}")
    print(f"chance is {math.log(VOCAB):.4f}; loss went from {first:.4f} to {last:.4f}")
    assert last < 0.5 * first, "the model did not learn the repeated pattern"


if __name__ == "__main__":
    main()
