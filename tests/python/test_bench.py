"""python -m cunorm.bench: without a usable GPU it says why and exits with status 2; on the CPU
(--device cpu, the harness at emulation speed) it writes one JSON record per implementation and
row, with the C benchmark's floor bytes and rates consistent with the times."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cunorm import bench


def test_without_a_gpu_it_says_so_and_fails() -> None:
    # CUDA_VISIBLE_DEVICES="" hides any GPU from the benchmark's process, so this runs everywhere.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-m", "cunorm.bench"], capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 2
    assert "no benchmark on cuda: torch sees no CUDA GPU" in result.stderr
    assert result.stdout == ""


def test_floors_are_the_c_benchmarks() -> None:
    # layer_norm forward f32 128 x 32: x and y, gamma and beta, mean and rstd per row.
    assert bench.row_floor("layer_norm_forward", 128, 32, "float32", "float32") == 2 * 4096 * 4 + 2 * 32 * 4 + 128 * 8
    # rms_norm backward bf16 2 x 8: x, dy, dx; dgamma and gamma; rrms per row.
    assert bench.row_floor("rms_norm_backward", 2, 8, "bfloat16", "bfloat16") == 3 * 16 * 2 + 8 * 2 + 2 * 4 + 8 * 2
    # batch_norm backward f16 activations, f32 parameters, 10 elements, 2 channels.
    assert bench.batch_floor("batch_norm_backward", 10, 2, "float16", "float32") == 3 * 20 + 8 + 16 + 16
    shapes = bench.row_shapes(1 << 26)
    assert shapes[-2:] == [(1000000, 128), (1024, 12288)]
    assert {(4096, 16384), (16384, 4096), (8192, 8192)} <= set(shapes)  # the published figures' shapes


def test_cpu_run_writes_a_record_per_implementation_and_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "cunorm.bench", "--device", "cpu", "--no-compile", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    rows = {(r["op"], r["layout"], r["dtypes"], r["shape"]) for r in records}
    assert {r["op"] for r in records} == {
        "layer_norm_forward", "layer_norm_backward", "rms_norm_forward", "rms_norm_backward",
        "batch_norm_forward_training", "batch_norm_backward", "batch_norm_forward_inference",
    }
    cunorm_rows = {(r["op"], r["layout"], r["dtypes"], r["shape"]) for r in records if r["implementation"] == "cunorm"}
    assert cunorm_rows == rows  # cunorm serves every row; torch's CPU ops may not (half BatchNorm on 1.13)
    for r in records:
        assert r["ms"] > 0 and r["floor_bytes"] > 0
        assert r["gbps"] == pytest.approx(r["floor_bytes"] / (r["ms"] * 1e-3) / 1e9)
        assert r["percent_of_copy"] == pytest.approx(100 * r["gbps"] / r["copy_gbps"])
