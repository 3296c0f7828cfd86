"""tools/gpu_check_torch.py, the GPU check's torch step, run as the check's folder carries it (beside
python -m cunorm.bench's module as cunorm_bench.py) on CPU tensors through the installed library's
SIMT backend: its ctypes bindings agree with torch on every op, and it writes the bench harness's
records for cunorm and torch."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cunorm
from cunorm import bench

TOOL = Path(__file__).resolve().parents[2] / "tools" / "gpu_check_torch.py"


def test_ctypes_bindings_agree_with_torch_and_the_harness_records_both(tmp_path: Path) -> None:
    shutil.copy(TOOL, tmp_path / "gpu_check_torch.py")
    shutil.copy(bench.__file__, tmp_path / "cunorm_bench.py")
    library = Path(cunorm.__file__).parent / "libcunorm.so"
    out = tmp_path / "torch.jsonl"
    result = subprocess.run(
        [sys.executable, str(tmp_path / "gpu_check_torch.py"), "--library", str(library), "--json", str(out),
         "--device", "cpu"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "each op agrees with torch on a small tensor" in result.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["implementation"] for r in records} == {"cunorm", "torch"}
    ops = {r["op"] for r in records if r["implementation"] == "cunorm"}
    assert ops == {"layer_norm_forward", "layer_norm_backward", "rms_norm_forward", "rms_norm_backward",
                   "batch_norm_forward_training", "batch_norm_backward", "batch_norm_forward_inference"}
