"""The project's Python tests run strict: a fallback to torch fails unless a test asks for it."""

import pytest


@pytest.fixture(autouse=True)
def strict_cunorm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUNORM_TORCH_STRICT", "1")
