#!/usr/bin/env python3
"""The performance model: a predicted GPU time for a kernel launch, from its compiled SASS.

A memory-bound kernel reaches the DRAM bandwidth only if it keeps enough bytes of loads in flight
and issues few enough instructions per byte. From the SASS of the kernel's hot loop (tools/sass.py:
loop bodies from backward branches, loads in flight from the scoreboard barriers) and its resources
(registers, shared memory -> resident blocks per SM, CUDA's occupancy calculator through
tools/occupancy.cpp), for a launch (grid, block, loop trips per thread, DRAM bytes), each wave of
blocks takes the larger of
  - a memory time: the larger of its DRAM bytes at the copy bandwidth and its loaded bytes at
    Little's law's rate, SMs x load bytes in flight per SM / loaded DRAM latency (stores are
    posted: nothing waits for them);
  - an issue time: each of an SM's 4 schedulers issues one warp-instruction per clock at
    ISSUE_EFFICIENCY, and a warp cannot issue faster than its instructions' stall counts allow
    (the dependent chain of one iteration, when a scheduler has too few warps to hide it);
plus a launch cost per kernel launch and a grid-barrier cost per grid-wide barrier. The limiter of
a prediction names the term that binds. Every constant is stated once below with its source,
fitted only to copy-like kernels; changing one needs a new source in the same commit.

What the model cannot see: L2 hits (every byte is taken from DRAM), DRAM page and bank effects,
clocks under load (the boost clock is assumed), instruction-cache misses, and tail effects inside
a block (every warp of a block is assumed to finish together).
"""
import argparse
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import sass
import static_report


@dataclass(frozen=True)
class Gpu:
    """One GPU's constants (each with its source in GPUS)."""
    name: str
    sms: int
    clock_hz: float
    copy_bytes_per_s: float  # a device-to-device copy's read + write bytes per second
    latency_s: float  # loaded DRAM latency: a load's issue to its data, under full bandwidth
    launch_s: float  # one kernel launch in a stream, back to back with the one before
    grid_barrier_s: float  # one grid-wide barrier of a cooperative launch


# Schedulers per SM, each issuing at most one warp-instruction per clock (CUDA C++ Programming
# Guide, compute capability 9.0: "4 warp schedulers"; "at every instruction issue time, each
# scheduler issues one instruction for one of its assigned warps that is ready to execute").
SCHEDULERS_PER_SM = 4
# The share of those issue slots a loop gets. No copy-like measurement to fit it to is published,
# so the architectural peak stands: issue-bound predictions are optimistic (register-bank and
# dispatch conflicts, which take slots on a GPU, are not seen).
ISSUE_EFFICIENCY = 1.0
WARP = 32

# Sources of the GPUs' constants:
# - SMs: 132 on H100 SXM5 (NVIDIA Hopper Architecture In-Depth, developer.nvidia.com blog, 2022);
#   the H200 is the same GH100 configuration with HBM3e.
# - Clock: 1980 MHz, the maximum SM clock both report (AWS EC2 user guide, "Optimize GPU
#   settings": nvidia-smi -ac 2619,1980 on P5 (H100) and -ac 3201,1980 on P5e (H200)); memory-
#   bound kernels run at it.
# - Copy bandwidth, read + write: H100 SXM ~3.0 TB/s (quack's memory-bound kernels hold ~3 TB/s,
#   3.01 TB/s for float32 softmax, github.com/Dao-AILab/quack media/2025-07-10-membound-sol.md;
#   BabelStream Copy 2.90 TB/s, Azure AI-benchmarking-guide ND_H100_v5); H200 ~4.3 TB/s, the
#   device-to-device copy the performance-model issue states (published lower bounds: BabelStream
#   Copy 4.01 TB/s, Azure AI-benchmarking-guide ND_H200_v5; torch.compile's RMSNorm forward at
#   4.18 TB/s on 8192x8192, cudnn-frontend benchmark/norms, which moves the same bytes as a copy).
# - Loaded DRAM latency: 1.37 us, fitted to a copy-like kernel under full load: gpu-benches'
#   stream "scale" kernel on an H200 (github.com/te42kyfo/gpu-benches gpu-stream/h200.txt), one
#   8-byte load per thread, 2 x 1024-thread blocks per SM (16 KiB in flight per SM), 3165 GB/s read
#   + write, so 1582 GB/s of loads: 132 x 16384 B / 1.5825e12 B/s = 1.37 us. (Unloaded it is ~0.4
#   us, gpu-benches gpu-latency; queueing under load nearly triples it, and Little's law needs the
#   loaded figure.) No such sweep is published for the H100; its memory system is the H200's with
#   HBM3, and the same value is used.
# - Launch: 2.4 us per kernel launched back to back in a stream (gpu-benches gpu-small-kernels,
#   H200 fit a = 2433 ns; it includes a tiny kernel's own time, so it is an upper bound).
# - Grid barrier: 1.2 us per cooperative grid.sync() (gpu-benches gpu-small-kernels h200_gsync:
#   a 64 KiB scale plus one grid.sync per iteration at 52-58 GB/s, 1.1-1.26 us per iteration,
#   the scale's own time included).
GPUS: Dict[str, Gpu] = {
    "H100 SXM": Gpu("H100 SXM", sms=132, clock_hz=1.98e9, copy_bytes_per_s=3.0e12, latency_s=1.37e-6,
                    launch_s=2.4e-6, grid_barrier_s=1.2e-6),
    "H200": Gpu("H200", sms=132, clock_hz=1.98e9, copy_bytes_per_s=4.3e12, latency_s=1.37e-6, launch_s=2.4e-6,
                grid_barrier_s=1.2e-6),
}


@dataclass(frozen=True)
class Loop:
    """One loop of a kernel's SASS, per warp and iteration."""
    instructions: int  # warp-instructions issued
    stall_cycles: int  # the sum of the stall counts: one warp's fewest cycles per iteration
    load_bytes: int  # global-load bytes per thread
    store_bytes: int  # global-store bytes per thread
    in_flight_bytes: int  # global-load bytes per thread issued before the first wait on them


def loop_of(body: Sequence[sass.Instruction]) -> Loop:
    """A loop's counts from its instructions."""
    return Loop(
        instructions=len(body),
        stall_cycles=sum(max(1, ins.stall) for ins in body),
        load_bytes=sum(sass.global_access_bytes(ins) for ins in body if ins.base == "LDG"),
        store_bytes=sum(sass.global_access_bytes(ins) for ins in body if ins.base == "STG"),
        in_flight_bytes=sass.loads_in_flight(body),
    )


def loops_of(instructions: List[sass.Instruction]) -> List[Loop]:
    """Every loop of a function, innermost first (tools/sass.py's order)."""
    return [loop_of(instructions[first:last + 1]) for first, last in sass.loops(instructions)]


def streaming_loop(instructions: List[sass.Instruction]) -> Loop:
    """The loop taken to move a kernel's bytes, as far as its SASS alone can say (no trip counts):
    of the outermost loops over global memory, the one moving the most bytes per iteration (a
    persistent grid's loop over rows, or over waves), and within it the innermost loop over global
    memory moving the most (the loop over a row's or segment's packs; the nest itself when it has
    none). Loops outside it run once per block (parameters staged into shared memory). A kernel
    without a loop over global memory is one iteration of its whole body."""
    def moved(r):
        loop = loop_of(instructions[r[0]:r[1] + 1])
        return loop.load_bytes + loop.store_bytes

    def contains(outer, inner):
        return outer != inner and outer[0] <= inner[0] and inner[1] <= outer[1]

    ranges = [r for r in sass.loops(instructions) if moved(r) > 0]
    if not ranges:
        return loop_of(instructions)
    outermost = [r for r in ranges if not any(contains(o, r) for o in ranges)]
    nest = max(outermost, key=lambda r: (moved(r), r[1] - r[0]))
    inside = [r for r in ranges if r == nest or contains(nest, r)]
    leaves = [r for r in inside if not any(contains(r, i) for i in inside)]
    first, last = max(leaves, key=lambda r: (moved(r), r[1] - r[0]))
    return loop_of(instructions[first:last + 1])


def instructions_per_dram_byte(loop: Loop) -> float:
    """Warp-instructions a loop issues per byte of global memory its warp moves."""
    return loop.instructions / (WARP * (loop.load_bytes + loop.store_bytes))


def issue_bound_above(gpu: Gpu) -> float:
    """Warp-instructions per DRAM byte beyond which a kernel at full bandwidth is issue-bound."""
    return gpu.sms * SCHEDULERS_PER_SM * gpu.clock_hz * ISSUE_EFFICIENCY / gpu.copy_bytes_per_s


@dataclass(frozen=True)
class Launch:
    """One kernel launch as the model sees it: the grid, the block, resident blocks per SM (from
    the occupancy calculator), the hot loop and its trips per thread, the DRAM bytes moved, and the
    share of them that are loads (None: the loop's own share)."""
    grid: int
    threads: int
    resident_blocks: int
    loop: Loop
    trips: float
    dram_bytes: float
    load_share: Optional[float] = None


@dataclass(frozen=True)
class Prediction:
    seconds: float
    limiter: str  # "bandwidth", "bytes in flight", "issue", "launch"
    bytes_per_s: float  # the DRAM bytes over the predicted time


def _wave(gpu: Gpu, launch: Launch, blocks: int) -> tuple:
    """(seconds, limiter) of one wave of `blocks` blocks, each doing 1/grid of the launch's work."""
    sms = min(gpu.sms, blocks)
    blocks_per_sm = math.ceil(blocks / gpu.sms)
    warps_per_sm = blocks_per_sm * math.ceil(launch.threads / WARP)
    in_flight_per_sm = launch.loop.in_flight_bytes * WARP * warps_per_sm
    load_bytes_per_s = sms * in_flight_per_sm / gpu.latency_s
    share = blocks / launch.grid
    # Stores are posted (nothing waits for them); loads wait a latency. The loads' share of the
    # DRAM bytes is the loop's.
    accessed = launch.loop.load_bytes + launch.loop.store_bytes
    load_share = launch.load_share
    if load_share is None:
        load_share = launch.loop.load_bytes / accessed if accessed else 1.0
    loads = launch.dram_bytes * share * load_share
    bandwidth = launch.dram_bytes * share / gpu.copy_bytes_per_s
    latency = loads / load_bytes_per_s if load_bytes_per_s else math.inf
    memory = max(bandwidth, latency)
    # Issue: per scheduler, each of its warps' iterations costs its instructions at the issue
    # efficiency, and no warp iterates faster than its stall counts allow.
    warps_per_scheduler = warps_per_sm / SCHEDULERS_PER_SM
    cycles_per_round = max(warps_per_scheduler * launch.loop.instructions / ISSUE_EFFICIENCY,
                           launch.loop.stall_cycles)
    issue = launch.trips * cycles_per_round / gpu.clock_hz
    if issue > memory:
        return issue, "issue"
    return memory, "bandwidth" if bandwidth >= latency else "bytes in flight"


def predict(gpu: Gpu, launches: Sequence[Launch], grid_barriers: int = 0) -> Prediction:
    """The predicted time of an op's launches (in one stream) and its grid-wide barriers."""
    seconds, limiters, dram = 0.0, {}, 0.0
    for launch in launches:
        capacity = gpu.sms * launch.resident_blocks
        full, rest = divmod(launch.grid, capacity)
        waves = [capacity] * full + ([rest] if rest else [])
        for blocks in waves:
            t, limiter = _wave(gpu, launch, blocks)
            seconds += t
            limiters[limiter] = limiters.get(limiter, 0.0) + t
        dram += launch.dram_bytes
    overhead = len(launches) * gpu.launch_s + grid_barriers * gpu.grid_barrier_s
    limiter = max(limiters, key=limiters.get) if limiters else "launch"
    if overhead > seconds:
        limiter = "launch"
    total = seconds + overhead
    return Prediction(total, limiter, dram / total if total else 0.0)


def ceiling(gpu: Gpu, loop: Loop, threads: int, resident_blocks: int) -> Prediction:
    """What a loop reaches if it moves all of a kernel's bytes: 1 GiB on a persistent grid of one
    full wave at the given residency, no launch cost."""
    grid = gpu.sms * resident_blocks
    dram = float(1 << 30)
    trips = dram / (grid * threads * (loop.load_bytes + loop.store_bytes))
    seconds, limiter = _wave(gpu, Launch(grid, threads, resident_blocks, loop, trips, dram), grid)
    return Prediction(seconds, limiter, dram / seconds)


def kernel_records(report: dict, functions: Dict[Tuple[str, str], List[sass.Instruction]]) -> List[dict]:
    """One record per sm_90 kernel of the static report: each of its loops that touch global
    memory, with its counts and its ceiling on each GPU at the residency the kernel's registers
    and static shared memory allow."""
    records = []
    for k in report["kernels"]:
        if k["arch"] != "sm_90":
            continue
        record = {"name": k["name"], "mangled": k["mangled"], "threads": k["threads"], "registers": k["registers"],
                  "static_shared": k["shared"], "resident_blocks": k["resident_blocks_sm90"], "loops": []}
        for loop in loops_of(functions.get(("sm_90", k["mangled"]), [])):
            if loop.load_bytes + loop.store_bytes == 0 or k["resident_blocks_sm90"] <= 0:
                continue
            entry = dict(loop.__dict__, instructions_per_dram_byte=instructions_per_dram_byte(loop),
                         load_bytes_in_flight_per_sm=loop.in_flight_bytes * k["threads"] * k["resident_blocks_sm90"],
                         ceiling={})
            for gpu in GPUS.values():
                p = ceiling(gpu, loop, k["threads"], k["resident_blocks_sm90"])
                entry["ceiling"][gpu.name] = {"percent_of_copy": 100 * p.bytes_per_s / gpu.copy_bytes_per_s,
                                              "limiter": p.limiter}
            record["loops"].append(entry)
        records.append(record)
    return records


def write_markdown(records: List[dict], path: str) -> None:
    names = list(GPUS)
    with open(path, "w", encoding="utf-8") as f:
        f.write("# Performance model: the kernels' loops\n\n")
        f.write("Every loop over global memory of every sm_90 kernel (tools/sass.py: loop bodies from backward "
                "branches, an inner loop's body counted once; loads in flight from the scoreboard barriers), at the "
                "residency the kernel's registers and static shared memory allow (a launch's dynamic shared memory "
                "can lower it): warp-instructions, global-load and -store bytes per thread and iteration, load "
                "bytes in flight per thread and per SM, warp-instructions per DRAM byte (issue-bound above "
                + ", ".join(f"{issue_bound_above(g):.3f} on the {g.name}" for g in GPUS.values())
                + "), and the percent of copy bandwidth the loop would reach if it moved all the kernel's bytes, "
                "with its limiter. Which loop moves the bytes at a given shape is the launch plan's to say.\n\n")
        f.write("| kernel | threads | regs | blocks/SM | loop instr | LD+ST B/thread | in flight B/thread | KiB/SM | "
                "instr/B | " + " | ".join(f"{n} ceiling" for n in names) + " |\n")
        f.write("|---|---|---|---|---|---|---|---|---|" + "---|" * len(names) + "\n")
        for r in records:
            name = r["name"].replace("cunorm::kernels::", "").replace("void ", "").split("(")[0]
            head = f"| `{name}` | {r['threads']} | {r['registers']} | {r['resident_blocks']} | "
            if not r["loops"]:
                f.write(head + "no loop over global memory |" + " |" * (4 + len(names)) + "\n")
            for loop in r["loops"]:
                ceilings = " | ".join(f"{c['percent_of_copy']:.0f}% {c['limiter']}" for c in loop["ceiling"].values())
                f.write(head + f"{loop['instructions']} | {loop['load_bytes']}+{loop['store_bytes']} | "
                        f"{loop['in_flight_bytes']} | {loop['load_bytes_in_flight_per_sm'] / 1024:.1f} | "
                        f"{loop['instructions_per_dram_byte']:.3f} | {ceilings} |\n")


def read_functions(objects: Sequence[str]) -> Dict[Tuple[str, str], List[sass.Instruction]]:
    """{(arch, mangled name): instructions} of every function in the CUDA objects' SASS."""
    cuobjdump, env = static_report.find_cuobjdump()
    if cuobjdump is None:
        raise RuntimeError("cuobjdump not found (scripts/install_dependencies.sh installs it)")
    functions: Dict[Tuple[str, str], List[sass.Instruction]] = {}
    for obj in (o for o in objects if o.endswith(".cu.o")):
        text = subprocess.run([cuobjdump, "-sass", obj], capture_output=True, text=True, env=env, check=True).stdout
        functions.update(sass.parse(text))
    return functions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", required=True, help="the static report's report.json")
    parser.add_argument("--objects", nargs="+", required=True, help="object files of the CUDA translation units")
    parser.add_argument("--out", required=True, help="output directory (model.json, model.md)")
    args = parser.parse_args()
    functions = read_functions(args.objects)
    with open(args.report, encoding="utf-8") as f:
        report = json.load(f)
    records = kernel_records(report, functions)
    os.makedirs(args.out, exist_ok=True)
    constants = {g.name: dict(g.__dict__) for g in GPUS.values()}
    with open(os.path.join(args.out, "model.json"), "w", encoding="utf-8") as f:
        json.dump({"gpus": constants, "issue_efficiency": ISSUE_EFFICIENCY, "kernels": records}, f, indent=1)
    write_markdown(records, os.path.join(args.out, "model.md"))
    looped = [r for r in records if r["loops"]]
    print(f"performance model: {len(records)} sm_90 kernels, {len(looped)} with a loop over global memory -> "
          f"{args.out}/model.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
