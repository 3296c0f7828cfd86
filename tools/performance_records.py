#!/usr/bin/env python3
"""The performance model's prediction for every benchmark record, and its gate.

For each row of the benchmark (cunorm_bench --json on the SIMT engine) and each GPU of the model
(tools/performance_model.py): the launches the planner makes at the row's GPU shape, as the
benchmark recorded them without running them (grid, block, dynamic shared memory, cooperative;
each launch's kernel found by its address in the library, whose symbol is the mangled name of the
sm_90 function in the SASS), each launch's resident blocks (CUDA's occupancy calculator, from the
kernel's registers and static plus dynamic shared memory), its DRAM bytes, its streaming loop
(performance_model.streaming_loop) and its trips, then the op's predicted time with its limiter.

A launch's DRAM bytes at the GPU shape: the activation bytes it requested on the SIMT engine at
the row's SIMT shape, times the ratio of the two shapes' elements (every kernel sweeps the tensor
a fixed number of times: the launches at both shapes are checked to be the same kernel variants);
and, of every other buffer (parameters, statistics, the workspace's partial states), the bytes
the launch requested of it at the SIMT shape times that buffer's DRAM footprint over its
requests, scaled by the buffer's size at the GPU shape over its size at the SIMT shape. Its loads
are the bytes it read, scaled the same way, over those DRAM bytes. Grid barriers: one per wave of a cooperative segments launch
(the `waves` of its label); a cooperative grid must fit the GPU's SMs at its occupancy.

The records' GB/s are the op's floor bytes over the predicted time, as the benchmark's and the
published figures' are. The gate compares each record's percent of copy bandwidth with the floor
checked in for it (tools/performance_floors.json, with the nvcc version that compiled the kernels
it was taken from): a record below its floor fails, named with its limiter, as do a record
without a floor, a floor without a record, and kernels compiled by another nvcc (retake the
floors then: cmake --build BUILD --target performance_floors, with the reason in the commit).

  performance_records.py --bench CUNORM_BENCH --report REPORT_JSON --objects OBJ... --occupancy TOOL
                         --nvcc NVCC --floors FLOORS_JSON --out DIR [--update-floors]
"""
import argparse
import json
import math
import os
import subprocess
import sys
from typing import Dict, List, Tuple

import performance_model as model

# The floors are today's predictions rounded down to one decimal of a percent; the tolerance is
# the slack for float rounding of a prediction that lands exactly on such a boundary (the model
# itself has no noise: the same SASS and plans predict the same time).
FLOOR_TOLERANCE_PERCENT = 0.05


def run_benchmark(bench: str, path: str) -> List[dict]:
    """The benchmark's JSON rows on the SIMT engine, modelling sm_90 with no engine option of the
    caller's environment (thread orders, workers, stacks), written to `path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUNORM_SIMT_")}
    env.update(CUNORM_BACKEND="simt", CUNORM_SIMT_TARGET="sm_90")
    subprocess.run([bench, "--json", path], check=True, env=env, stdout=subprocess.DEVNULL)
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def symbols_of(path: str) -> Dict[int, str]:
    """{address: symbol} of a shared object's defined symbols (its symbol table: hidden ones too)."""
    out = subprocess.run(["nm", "--defined-only", path], capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3:
            table.setdefault(int(fields[0], 16), fields[2])
    return table


class Occupancy:
    """Resident blocks per SM on sm_90 from tools/occupancy.cpp, cached."""

    def __init__(self, tool: str):
        self.tool: str = tool
        self.cache: Dict[Tuple[int, int, int], int] = {}

    def blocks(self, threads: int, registers: int, shared: int) -> int:
        """Resident blocks of `threads` threads using `registers` each and `shared` bytes."""
        key = (threads, registers, shared)
        if key not in self.cache:
            out = subprocess.run([self.tool, str(threads), str(registers), str(shared)], capture_output=True,
                                 text=True, check=True).stdout.split()
            self.cache[key] = int(out[3])
        return self.cache[key]


def variant_of(label: str) -> str:
    """'layer_norm_forward.segments<...> vec=8 ... full' -> 'layer_norm_forward.segments<...>'."""
    return label.split(" ")[0]


def parameter(label: str, key: str) -> int:
    """The integer of `key=` in a launch label."""
    for word in label.split(" ")[1:]:
        if word.startswith(key + "="):
            return int(word.split("=")[1])
    raise ValueError(f"{label}: no {key}=")


def key_of(row: dict) -> str:
    """A record's name: op, layout (BatchNorm), dtypes and GPU shape."""
    return " ".join(p for p in (row["op"], row["layout"], row["dtypes"], row["gpu_shape"]) if p)


def launches_of(row: dict, kernels: Dict[str, dict], functions: Dict[Tuple[str, str], list],
                symbols: Dict[str, Dict[int, str]], occupancy: Occupancy) -> Tuple[list, int]:
    """The row's launches at its GPU shape as the model sees them, (label, static-report kernel,
    performance_model.Launch) each, and the op's grid barriers."""
    plan, uses = row["gpu_plan"], row["launch_uses"]
    if [variant_of(p["label"]) for p in plan] != [variant_of(u["label"]) for u in uses]:
        raise ValueError(f"{key_of(row)}: the GPU shape's launches {[p['label'] for p in plan]} are not the "
                         f"SIMT shape's {[u['label'] for u in uses]}: their bytes cannot be scaled")
    scale = row["gpu_elements"] / row["elements"]
    # GPU-shape DRAM bytes per byte a launch requests of each buffer at the SIMT shape: the
    # activations' element ratio; of every other buffer its footprint over its requests times its
    # size at the GPU shape over its size at the SIMT shape.
    rate = [scale if b["activation"] else b["dram"] / b["requested"] * b["gpu_bytes"] / b["bytes"] if b["requested"]
            else 0.0 for b in row["buffers"]]
    launches, barriers = [], 0
    for p, use in zip(plan, uses):
        if p["object"] not in symbols:
            symbols[p["object"]] = symbols_of(p["object"])
        mangled = symbols[p["object"]].get(p["offset"])
        if mangled not in kernels:
            raise ValueError(f"{key_of(row)}: {p['label']}: no sm_90 kernel {mangled} in the static report")
        k = kernels[mangled]
        grid, threads = math.prod(p["grid"]), math.prod(p["block"])
        resident = occupancy.blocks(threads, k["registers"], k["shared"] + p["dynamic_shared_bytes"])
        if resident < 1:
            raise ValueError(f"{key_of(row)}: {p['label']}: no block of {threads} threads fits an SM")
        dram = sum(r * b for r, b in zip(rate, use["buffers"]))
        loads = sum(r * b for r, b in zip(rate, use["buffers_read"]))
        loop = model.streaming_loop(functions[("sm_90", mangled)])
        per_trip = grid * threads * (loop.load_bytes + loop.store_bytes)
        launch = model.Launch(grid=grid, threads=threads, resident_blocks=resident, loop=loop,
                              trips=dram / per_trip if per_trip else 0.0, dram_bytes=dram,
                              load_share=loads / dram if dram else 1.0)
        if p["cooperative"]:
            capacity = model.GPUS["H100 SXM"].sms * resident
            if grid > capacity:
                raise ValueError(f"{key_of(row)}: {p['label']}: a cooperative grid of {grid} blocks, more than the "
                                 f"{capacity} the GPU holds at once ({resident} per SM)")
            barriers += parameter(p["label"], "waves")  # one grid barrier per wave
        launches.append((p["label"], k, launch))
    return launches, barriers


def records_of(rows: List[dict], report: dict, functions: Dict[Tuple[str, str], list],
               occupancy: Occupancy) -> List[dict]:
    """One record per benchmark row and GPU of the model (the records.json entries)."""
    kernels = {k["mangled"]: k for k in report["kernels"] if k["arch"] == "sm_90"}
    symbols: Dict[str, Dict[int, str]] = {}
    records = []
    for row in rows:
        launches, barriers = launches_of(row, kernels, functions, symbols, occupancy)
        floor = row["gpu_floor_activations"] + row["gpu_floor_other"]
        for gpu in model.GPUS.values():
            p = model.predict(gpu, [launch for _, _, launch in launches], barriers)
            records.append({
                "key": key_of(row), "op": row["op"], "layout": row["layout"], "dtypes": row["dtypes"],
                "shape": row["gpu_shape"], "gpu": gpu.name, "predicted_us": p.seconds * 1e6,
                "floor_gbps": floor / p.seconds / 1e9, "percent_of_copy": 100 * floor / p.seconds / gpu.copy_bytes_per_s,
                "limiter": p.limiter, "dram_bytes": sum(launch.dram_bytes for _, _, launch in launches),
                "floor_bytes": floor, "grid_barriers": barriers,
                "launches": [{"label": label, "kernel": k["name"].split("(")[0].replace("void cunorm::kernels::", ""),
                              "grid": launch.grid, "threads": launch.threads, "registers": k["registers"],
                              "resident_blocks": launch.resident_blocks, "dram_bytes": launch.dram_bytes,
                              "in_flight_bytes_per_thread": launch.loop.in_flight_bytes,
                              "instructions_per_dram_byte": (model.instructions_per_dram_byte(launch.loop)
                                                             if launch.loop.load_bytes + launch.loop.store_bytes else 0.0),
                              "limiter": model.predict(gpu, [launch]).limiter}
                             for label, k, launch in launches]})
    return records


def write_markdown(records: List[dict], path: str) -> None:
    """records.md: one table row per record, its time, percent of copy and limiter on each GPU."""
    by_key: Dict[str, Dict[str, dict]] = {}
    for r in records:
        by_key.setdefault(r["key"], {})[r["gpu"]] = r
    names = list(model.GPUS)
    with open(path, "w", encoding="utf-8") as f:
        f.write("# Performance model: every benchmark record\n\n"
                "Predicted time of each op at its GPU shape (tools/performance_records.py), GB/s of the op's floor "
                "bytes, percent of the copy bandwidth and the limiter, on each GPU.\n\n")
        f.write("| record | " + " | ".join(f"{n} us | {n} % copy | {n} limiter" for n in names) + " | launches |\n")
        f.write("|---|" + "---|---|---|" * len(names) + "---|\n")
        for key, per_gpu in by_key.items():
            cells = " | ".join(f"{per_gpu[n]['predicted_us']:.1f} | {per_gpu[n]['percent_of_copy']:.1f} | "
                               f"{per_gpu[n]['limiter']}" for n in names)
            kernels = ", ".join(lau["kernel"].split("<")[0] for lau in per_gpu[names[0]]["launches"])
            f.write(f"| {key} | {cells} | {kernels} |\n")


def nvcc_version(nvcc: str) -> str:
    """'Cuda compilation tools, release 13.0, V13.0.88' (nvcc --version's release line)."""
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=True).stdout
    return next((line for line in out.splitlines() if "release" in line), out.strip().splitlines()[-1])


def gate(records: List[dict], floors: dict, version: str) -> List[str]:
    """Why the records fail their floors: one line per record below its floor or without one, per
    floor without a record, and for kernels compiled by another nvcc than the floors'."""
    problems = []
    if floors.get("nvcc") != version:
        problems.append(f"the floors were taken with {floors.get('nvcc')}, the kernels compiled with {version}: "
                        "retake them (cmake --build BUILD --target performance_floors) and say why in the commit")
    predicted = {(r["key"], r["gpu"]) for r in records}
    for key, per_gpu in floors["records"].items():
        for gpu in per_gpu:
            if (key, gpu) not in predicted:
                problems.append(f"{key} on the {gpu}: a floor without a record (the benchmark lost the row?)")
    for r in records:
        floor = floors["records"].get(r["key"], {}).get(r["gpu"])
        if floor is None:
            problems.append(f"{r['key']} on the {r['gpu']}: no floor checked in (add it with --update-floors)")
        elif r["percent_of_copy"] < floor - FLOOR_TOLERANCE_PERCENT:
            problems.append(f"{r['key']} on the {r['gpu']}: predicted {r['percent_of_copy']:.1f}% of copy bandwidth, "
                            f"below its floor {floor:.1f}% (limiter: {r['limiter']})")
    return problems


def main() -> int:
    """Predicts every record, writes records.{json,md}, then gates them or rewrites the floors."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", required=True, help="cunorm_bench, run on the SIMT engine")
    parser.add_argument("--report", required=True, help="the static report's report.json")
    parser.add_argument("--objects", nargs="+", required=True, help="object files of the CUDA translation units")
    parser.add_argument("--occupancy", required=True, help="tools/occupancy.cpp's program")
    parser.add_argument("--nvcc", required=True, help="the nvcc that compiled the objects (its version)")
    parser.add_argument("--floors", required=True, help="the checked-in floors (tools/performance_floors.json)")
    parser.add_argument("--out", required=True, help="output directory (records.json, records.md)")
    parser.add_argument("--update-floors", action="store_true", help="write today's predictions as the floors")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = run_benchmark(args.bench, os.path.join(args.out, "bench_simt.jsonl"))
    functions = model.read_functions(args.objects)
    with open(args.report, encoding="utf-8") as f:
        report = json.load(f)
    records = records_of(rows, report, functions, Occupancy(args.occupancy))
    with open(os.path.join(args.out, "records.json"), "w", encoding="utf-8") as f:
        json.dump({"gpus": {g.name: dict(g.__dict__) for g in model.GPUS.values()}, "records": records}, f, indent=1)
    write_markdown(records, os.path.join(args.out, "records.md"))
    version = nvcc_version(args.nvcc)
    if args.update_floors:
        floors = {"about": "Checked-in floors of the performance model's predictions (tools/performance_records.py): "
                           "percent of copy bandwidth per benchmark record and GPU. Lowering one needs the record "
                           "named and a reason in the commit message.",
                  "nvcc": version, "records": {}}
        previous = {}
        if os.path.exists(args.floors):
            with open(args.floors, encoding="utf-8") as f:
                previous = json.load(f)["records"]
        for r in records:
            floor = math.floor(r["percent_of_copy"] * 10) / 10
            floors["records"].setdefault(r["key"], {})[r["gpu"]] = floor
            before = previous.get(r["key"], {}).get(r["gpu"])
            if before is not None and floor < before:
                print(f"performance gate: lowered: {r['key']} on the {r['gpu']}: {before:.1f}% -> {floor:.1f}% "
                      f"(limiter: {r['limiter']}): name it and the reason in the commit message")
        with open(args.floors, "w", encoding="utf-8") as f:
            json.dump(floors, f, indent=1, sort_keys=False)
            f.write("\n")
        print(f"performance gate: {len(records)} floors written to {args.floors}")
        return 0
    with open(args.floors, encoding="utf-8") as f:
        problems = gate(records, json.load(f), version)
    for line in problems:
        print("performance gate: " + line, file=sys.stderr)
    print(f"performance model: {len(records)} records, {len(problems)} below their floors -> {args.out}/records.md")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
