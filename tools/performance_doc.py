#!/usr/bin/env python3
"""Writes docs/performance.md and its chart from the benchmark's JSON lines, the static report and
the performance model's records.

Inputs: the rows `cunorm_bench --json FILE` wrote on the SIMT engine (bytes each op's kernels
requested of the activation tensors, the DRAM estimate with every other buffer's footprint once,
their L2 re-reads, the op's DRAM floor at the shape run and at the shape a GPU run measures),
build/static_report/report.json (tools/static_report.py) and build/static_report/records.json
(tools/performance_records.py: the predicted time of every row on an H100 and an H200, with its
limiter). Outputs: a markdown page and a PNG bar chart of bytes per element against the floor for
each op and kernel variant.

The implied H100 time of a row is the traffic a GPU would move at the GPU shape, at 3.0 TB/s:
the activation floor times the measured activation ratio (shape-independent: every activation
pass reads or writes the whole tensor), plus the per-row / per-channel floor (parameters and
statistics, whose repeated reads and the reductions' partial states stay in L2 at these sizes).

Usage: performance_doc.py BENCH_JSONL STATIC_REPORT_JSON RECORDS_JSON OUT_MD OUT_PNG   (needs matplotlib)
"""
import collections
import json
import os
import sys
from typing import List, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-interactive backend)

H100_BYTES_PER_SECOND = 3.0e12


def variant_of(row: dict) -> str:
    """'warp_rows<CUNORM_FLOAT16,CUNORM_FLOAT32>' -> 'warp_rows'."""
    return row["kernel"].split("<")[0]


def implied_us(row: dict) -> float:
    """The floor-only time at 3.0 TB/s of the row's traffic at its GPU shape (module docstring)."""
    ratio = row["requested_activations"] / row["floor_activations"]
    return (row["gpu_floor_activations"] * ratio + row["gpu_floor_other"]) / H100_BYTES_PER_SECOND * 1e6


def floor_us(row: dict) -> float:
    """The op's DRAM floor at its GPU shape, at 3.0 TB/s."""
    return (row["gpu_floor_activations"] + row["gpu_floor_other"]) / H100_BYTES_PER_SECOND * 1e6


def group_key(row: dict) -> Tuple[str, str, str, str]:
    """A chart bar: op, layout, kernel variant, dtypes."""
    return (row["op"], row["layout"], variant_of(row), row["dtypes"])


def chart(rows: List[dict], path: str) -> None:
    """The PNG of bytes per element against the floor, one bar per group_key."""
    groups = collections.OrderedDict()
    for row in rows:
        groups.setdefault(group_key(row), []).append(row)
    labels, activations, others, rereads, floors = [], [], [], [], []
    for (op, layout, variant, dtypes), members in groups.items():
        elements = sum(r["elements"] for r in members)
        labels.append(" ".join(p for p in (op, layout, variant, dtypes) if p))
        activations.append(sum(r["requested_activations"] for r in members) / elements)
        others.append(sum(r["dram"] - r["requested_activations"] for r in members) / elements)
        rereads.append(sum(r["l2_rereads"] for r in members) / elements)
        floors.append(sum(r["floor_activations"] + r["floor_other"] for r in members) / elements)
    height = 0.28 * len(labels) + 1.5
    fig, ax = plt.subplots(figsize=(11, height))
    ys = range(len(labels))
    ax.barh(ys, activations, color="#3b75af", label="x, y, dy, dx (activations) requested: DRAM")
    ax.barh(ys, others, left=activations, color="#7fa7cf",
            label="parameters, statistics, partial states, each sector once: DRAM")
    ax.barh(ys, rereads, left=[a + o for a, o in zip(activations, others)], color="#dbe8f5", hatch="//",
            edgecolor="#9dbad6", label="their requests beyond that: L2 on a GPU")
    ax.scatter(floors, ys, marker="|", s=160, color="black", zorder=3, label="DRAM floor")
    ax.set_yticks(list(ys))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("bytes per element (all shapes of the group, SIMT engine launch records)")
    ax.set_title("cunorm: global-memory bytes requested per element against the DRAM floor")
    ax.legend(loc="lower right", fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def shape_table(rows: List[dict], op: str, columns: Sequence[Tuple[str, str]], with_sum: bool) -> List[str]:
    """Implied H100 microseconds (floor) per GPU shape of `op`, one column per (layout, dtypes);
    with_sum adds the column sums (a whole network's layers)."""
    by_shape = collections.OrderedDict()
    for row in rows:
        if row["op"] == op:
            by_shape.setdefault(row["gpu_shape"], {})[(row["layout"], row["dtypes"])] = row
    header = "| GPU shape | " + " | ".join(" ".join(p for p in c if p) for c in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    totals = [[0.0, 0.0] for _ in columns]
    for shape, cells in by_shape.items():
        out = []
        for i, column in enumerate(columns):
            row = cells.get(column)
            if row is None:
                out.append("-")
                continue
            totals[i][0] += implied_us(row)
            totals[i][1] += floor_us(row)
            ratio = row["requested_activations"] / row["floor_activations"]
            out.append(f"{implied_us(row):.1f} ({floor_us(row):.1f}) {variant_of(row)} {ratio:.2f}x")
        lines.append(f"| {shape} | " + " | ".join(out) + " |")
    if with_sum:
        lines.append("| **sum** | " + " | ".join(f"**{t[0]:.1f} ({t[1]:.1f})**" for t in totals) + " |")
    return lines


# The published figures the performance model compares with (the performance-model issue): op,
# dtypes, shape, who, TB/s on an H200 by the same floor byte model.
ANCHORS = [
    ("rms_norm_forward", "bf16/bf16", "4096x16384", "cuDNN 9.19", 3.85),
    ("rms_norm_backward", "bf16/bf16", "4096x16384", "cuDNN 9.19", 3.42),
    ("rms_norm_forward", "bf16/bf16", "8192x8192", "torch.compile", 4.18),
    ("layer_norm_backward", "bf16/bf16", "1024x12288", "cuDNN 9.19", 0.95),
    ("layer_norm_backward", "bf16/bf16", "1024x12288", "torch.compile", 1.77),
]


# Short names of the limiters in the tables.
LIMITER = {"bandwidth": "bw", "bytes in flight": "fl", "issue": "is", "launch": "la"}


def predicted_table(records: List[dict], gpus: Sequence[str], op: str, columns: Sequence[Tuple[str, str]]) -> List[str]:
    """Predicted microseconds, percent of copy bandwidth and limiter on each of `gpus` per GPU
    shape of `op`, one column per (layout, dtypes)."""
    by_shape = collections.OrderedDict()
    for r in records:
        if r["op"] == op:
            by_shape.setdefault(r["shape"], {}).setdefault((r["layout"], r["dtypes"]), {})[r["gpu"]] = r
    lines = ["| GPU shape | " + " | ".join(" ".join(p for p in c if p) for c in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for shape, cells in by_shape.items():
        out = []
        for column in columns:
            per_gpu = cells.get(column)
            if per_gpu is None:
                out.append("-")
                continue
            out.append(" / ".join(f"{r['predicted_us']:.1f} us {r['percent_of_copy']:.0f}% {LIMITER[r['limiter']]}"
                                  for r in (per_gpu[g] for g in gpus)))
        lines.append(f"| {shape} | " + " | ".join(out) + " |")
    return lines


def anchor_table(records: List[dict]) -> List[str]:
    """Each published figure beside cunorm's prediction for the H200 at its shape."""
    h200 = {(r["op"], r["dtypes"], r["shape"]): r for r in records if r["gpu"] == "H200" and not r["layout"]}
    lines = ["| op | dtypes | shape | published (H200) | cunorm predicted (H200) | limiter |", "|---|---|---|---|---|---|"]
    for op, dtypes, shape, who, tbps in ANCHORS:
        r = h200.get((op, dtypes, shape))
        if r is None:
            raise SystemExit(f"performance_doc.py: no H200 record of {op} {dtypes} {shape}, the shape of {who}'s "
                             "published figure: the benchmark must run it")
        lines.append(f"| {op} | {dtypes} | {shape} | {who} {tbps:.2f} TB/s | {r['floor_gbps'] / 1000:.2f} TB/s "
                     f"({r['percent_of_copy']:.0f}% of copy) | {r['limiter']} |")
    return lines


def static_section(report: dict) -> List[str]:
    """The static report's summary and its per-family table (registers, occupancy, spills)."""
    summary = report["summary"]
    families = collections.OrderedDict()
    for k in report["kernels"]:
        entry = families.setdefault((k["family"], k["arch"]),
                                    {"n": 0, "regs": 0, "occ80": 100.0, "occ90": 100.0, "spill": 0})
        entry["n"] += 1
        entry["regs"] = max(entry["regs"], k["registers"])
        entry["occ80"] = min(entry["occ80"], k["occupancy_sm80"])
        entry["occ90"] = min(entry["occ90"], k["occupancy_sm90"])
        entry["spill"] += 1 if k["stack"] or k["local"] else 0
    lines = [
        f"{summary['instantiations']} kernel instantiations on {', '.join(summary['architectures'])}; "
        f"{summary['using_stack_or_local_memory']} use stack or local memory (spills); "
        f"{summary['vector_paths_with_128_bit']} of {summary['vector_paths']} vector-path compilations issue "
        "128-bit global loads and stores (LDG.E.128 / STG.E.128 in the SASS).",
        "",
        "| kernel family | arch | instantiations | most registers | lowest occupancy sm_80 % | "
        "lowest occupancy sm_90 % | with spills |",
        "|---|---|---|---|---|---|---|",
    ]
    for (family, arch), e in sorted(families.items()):
        lines.append(f"| `{family}` | {arch} | {e['n']} | {e['regs']} | {e['occ80']:.1f} | {e['occ90']:.1f} | "
                     f"{e['spill']} |")
    return lines


def main() -> None:
    """Writes the page and its chart (usage in the module docstring)."""
    if len(sys.argv) != 6:
        raise SystemExit(__doc__)
    bench_path, static_path, records_path, md_path, png_path = sys.argv[1:6]
    with open(bench_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    with open(static_path) as f:
        report = json.load(f)
    with open(records_path) as f:
        model_output = json.load(f)
    records, gpus = model_output["records"], list(model_output["gpus"])
    chart(rows, png_path)

    row_columns = [("", d) for d in ("f32/f32", "f16/f32", "bf16/bf16")]
    bn_columns = [(lay, d) for lay in ("NCHW", "NHWC") for d in ("f32/f32", "f16/f32")]
    md = [
        "# Performance",
        "",
        "<!-- Generated by scripts/performance_doc.sh (tools/performance_doc.py) from the benchmark's",
        "     SIMT run, the build's static kernel report and the performance model's records. Do not edit",
        "     by hand. -->",
        "",
        "No GPU has been available to this project, so this page shows what can be established without one:",
        "the time the performance model ([performance_model.md](performance_model.md)) predicts for every",
        "benchmark row on an H100 SXM and an H200 from the compiled SASS and the launch plans, the bytes every",
        "kernel requests (counted by the SIMT engine at every global load and store, per buffer), the DRAM",
        "floor of each op (byte formulas in `bench/row_norm_bench.cpp` and `bench/batch_norm_bench.cpp`), the",
        "time that traffic implies at the copy bandwidth alone (the lower bound), and the compiled kernels'",
        "resources. Measured GPU times come from `scripts/bench.sh` or the GPU check",
        "([gpu_check.md](gpu_check.md)) on a machine with a GPU.",
        "",
        "## Predicted by the performance model",
        "",
        f"Each cell: {' / '.join(gpus)}, the predicted microseconds of the op (every launch, grid barrier and",
        "launch cost), its floor bytes over that time as a percent of the GPU's copy bandwidth",
        "(" + " and ".join(f"{model_output['gpus'][g]['copy_bytes_per_s'] / 1e12:.1f}" for g in gpus) +
        " TB/s), and the limiter that binds: bw (DRAM bandwidth), fl (bytes of loads in flight:",
        "Little's law), is (instruction issue), la (launch and grid-barrier costs). What the model cannot",
        "see (L2 hits, DRAM page effects, clocks under load, which loop of a kernel moves which bytes",
        "beyond its streaming loop) is listed in performance_model.md; the CI gate holds every record at",
        "or above its floor in `tools/performance_floors.json`.",
        "",
        "### At the published figures' shapes",
        "",
    ] + anchor_table(records) + [""]
    for op in ("layer_norm_forward", "layer_norm_backward", "rms_norm_forward", "rms_norm_backward"):
        md += [f"### {op} (predicted)", ""] + predicted_table(records, gpus, op, row_columns) + [""]
    for op in ("batch_norm_forward_training", "batch_norm_forward_inference", "batch_norm_backward",
               "batch_norm_backward_inference"):
        md += [f"### {op} (predicted; ResNet-50 layers, batch 32)", ""] + predicted_table(records, gpus, op, bn_columns) + [""]
    md += [
        "## Bytes per element against the floor",
        "",
        f"![bytes per element against the floor]({os.path.basename(png_path)})",
        "",
        "Each bar sums one op, layout, kernel variant and dtype pair over the shapes the benchmark runs on the",
        "SIMT engine. The dark part is what the kernels request of the activation tensors (x, y, dy, dx):",
        "exactly the floor for LayerNorm and RMSNorm (every variant reads and writes each activation once),",
        "1.5x for BatchNorm's training forward and 1.67x for its backward (three passes: statistics, then",
        "normalize; docs/batch_norm.md), 1x for BatchNorm inference. The middle part is every other buffer's",
        "footprint (its distinct 32-byte sectors, counted once): parameters, per-row or per-channel",
        "statistics and the cross-block reductions' partial states in the workspace, what a GPU takes from",
        "DRAM besides the activations. The partial states are large at the SIMT engine's small shapes",
        "(a partial row per block, and few rows per block) and small at GPU shapes. The hatched part is",
        "what those buffers are requested again (parameters read by every block that needs them, partial",
        "states read back), which a GPU serves from L2.",
        "",
        "## Floor-only time on an H100 (3.0 TB/s): the lower bound",
        "",
        "Microseconds at the shapes a GPU run measures: activation floor x measured activation ratio +",
        "per-row/per-channel floor, at 3.0 TB/s; in parentheses the floor itself. Each cell also names the",
        "variant the plan picks and the activation ratio. Launch overheads and the limits of the 3-pass",
        "BatchNorm at small N*S are not in this model; only a GPU run measures them.",
        "",
    ]
    for op in ("layer_norm_forward", "layer_norm_backward", "rms_norm_forward", "rms_norm_backward"):
        md += [f"### {op}", ""] + shape_table(rows, op, row_columns, False) + [""]
    for op in ("batch_norm_forward_training", "batch_norm_forward_inference", "batch_norm_backward",
               "batch_norm_backward_inference"):
        md += [f"### {op} (ResNet-50 layers, batch 32)", ""] + shape_table(rows, op, bn_columns, True) + [""]
    md += ["## Static kernel report", ""] + static_section(report) + [
        "",
        "The full table (every instantiation and architecture) is `build/static_report/report.md`, written",
        "by every build with the CUDA backend; the build fails on any spill or a vector path without 128-bit",
        "accesses.",
        "",
    ]
    with open(md_path, "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
