#!/usr/bin/env python3
"""The GPU check's measured times beside the performance model's predictions, as markdown.

Reads the benchmark's rows measured on the GPU (bench.jsonl), the model's records carried in the
GPU check's folder (records.json, tools/performance_records.py) and the benchmark's log, whose first
line names the GPU: an H100 SXM or an H200 is compared with the model's GPU of that name; another
GPU (an H100 PCIe or NVL, an H200 NVL, a GH200) with both. For every measured row: the measured microseconds, the predicted, their ratio
(measured / predicted: above 1, the GPU is slower than the model says) and the limiter the model
names; then the median ratio per op. Standard library only (the GPU machine may have a bare Python).

  gpu_check_model.py BENCH_JSONL RECORDS_JSON BENCH_LOG
"""
import json
import re
import statistics
import sys
from typing import Dict, List


# The model's GPUs by the device names CUDA reports for them: the H100 SXM ("NVIDIA H100 80GB
# HBM3") and the H200 ("NVIDIA H200"); not the H100 PCIe or NVL, the H200 NVL or the GH200, whose
# clocks, bandwidth or power differ.
MODEL_DEVICES = {
    "H100 SXM": re.compile(r"^NVIDIA H100\b.*\bHBM3$"),
    "H200": re.compile(r"^NVIDIA H200$"),
}


def model_gpus(log_path: str, names: List[str]) -> List[str]:
    """The model GPU that the benchmark log's device is, or all of `names` when it is none of them."""
    with open(log_path, encoding="utf-8", errors="replace") as f:
        m = re.search(r"cunorm benchmark on (.*?) \(sm_", f.read())
    device = m.group(1).strip() if m else ""
    for name in names:
        if name in MODEL_DEVICES and MODEL_DEVICES[name].match(device):
            return [name]
    return names


def key_of(row: dict) -> str:
    """The record name of a measured row (performance_records.key_of: on a GPU, shape is gpu_shape)."""
    return " ".join(p for p in (row["op"], row["layout"], row["dtypes"], row["gpu_shape"]) if p)


def main() -> int:
    """Prints the comparison table and the median ratio per op and model GPU."""
    bench_path, records_path, log_path = sys.argv[1:4]
    with open(bench_path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    with open(records_path, encoding="utf-8") as f:
        records = json.load(f)["records"]
    predicted: Dict[tuple, dict] = {(r["key"], r["gpu"]): r for r in records}
    gpus = model_gpus(log_path, list(dict.fromkeys(r["gpu"] for r in records)))
    print(f"Measured against the performance model's {' and '.join(gpus)} (ratio: measured / predicted).")
    print()
    print("| record | measured us | " + " | ".join(f"{g} predicted us | ratio | limiter" for g in gpus) + " |")
    print("|---|---|" + "---|---|---|" * len(gpus))
    ratios: Dict[tuple, List[float]] = {}
    for row in rows:
        cells = []
        for gpu in gpus:
            r = predicted.get((key_of(row), gpu))
            if r is None:
                cells.append("- | - | no prediction")
                continue
            ratio = row["ms"] * 1e3 / r["predicted_us"]
            ratios.setdefault((row["op"], gpu), []).append(ratio)
            cells.append(f"{r['predicted_us']:.1f} | {ratio:.2f} | {r['limiter']}")
        print(f"| {key_of(row)} | {row['ms'] * 1e3:.1f} | " + " | ".join(cells) + " |")
    print()
    for (op, gpu), values in ratios.items():
        print(f"- {op} on the {gpu} model: median ratio {statistics.median(values):.2f} over {len(values)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
