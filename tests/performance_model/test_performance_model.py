#!/usr/bin/env python3
"""The performance model (tools/performance_model.py) on kernels with known answers
(synthetic_kernels.cu, compiled here with nvcc for sm_90 and read back with cuobjdump): a 16-byte
copy reaches the copy bandwidth; below the latency-bandwidth product the bandwidth is Little's
law's and halves with the bytes in flight; a 25%-occupancy copy is predicted by Little's law at its
resident warps; a copy with enough dependent FMAs turns issue-bound at the stated issue rate; a
row kernel's streaming loop is its inner loop over packs, not its staging loop; and the gate fails
a record below its floor, naming its limiter; the GPU check compares a measured row with its
prediction for the GPU it ran on. Each
number comes from the SASS as read (loop bodies, scoreboard barriers) and the occupancy
calculator, so a parsing or counting error fails it.

  test_performance_model.py --nvcc NVCC --occupancy OCCUPANCY_TOOL   (ctest runs it; CUDA builds)
"""
import argparse
import os
import subprocess
import sys
import tempfile
import unittest

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
sys.path.insert(0, TOOLS)
import performance_model as model  # noqa: E402
import performance_records as records  # noqa: E402
import sass  # noqa: E402
import static_report  # noqa: E402

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "synthetic_kernels.cu")
ELEMENTS_BYTES = 1 << 30  # bytes read (and as many written) by each copy: 1 GiB, far past the L2
ARGS = argparse.Namespace()


def compile_kernels():
    """{demangled name without parameters: (instructions, registers, static shared bytes)}."""
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "synthetic.cubin")
        subprocess.run([ARGS.nvcc, "-arch=sm_90", "-cubin", "-O3", SOURCE, "-o", cubin], check=True)
        cuobjdump, env = static_report.find_cuobjdump()
        if cuobjdump is None:
            raise RuntimeError("cuobjdump not found (scripts/install_dependencies.sh installs it)")
        text = subprocess.run([cuobjdump, "-sass", cubin], capture_output=True, text=True, env=env, check=True).stdout
        resources = static_report.resource_usage([cubin], cuobjdump, env)
    functions = {mangled: instructions for (_, mangled), instructions in sass.parse(text).items()}
    names = static_report.demangle([r["mangled"] for r in resources])
    return {name.split("(")[0].replace("void ", ""): (functions[r["mangled"]], r["registers"], r["shared"])
            for name, r in zip(names, resources)}


def resident_blocks(threads, registers, shared):
    out = subprocess.run([ARGS.occupancy, str(threads), str(registers), str(shared)], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[3])  # sm_90


class PerformanceModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kernels = compile_kernels()

    def launch(self, name, threads=256, element_bytes=16):
        instructions, registers, shared = self.kernels[name]
        loops = model.loops_of(instructions)
        self.assertEqual(len(loops), 1, f"{name}: one loop expected, found {loops}")
        blocks = resident_blocks(threads, registers, shared)
        grid = model.GPUS["H100 SXM"].sms * blocks  # a persistent grid: one full wave
        elements = ELEMENTS_BYTES // element_bytes
        return model.Launch(grid=grid, threads=threads, resident_blocks=blocks, loop=loops[0],
                            trips=elements / (grid * threads), dram_bytes=2.0 * ELEMENTS_BYTES)

    def predict(self, gpu, launch):
        return model.predict(model.GPUS[gpu], [launch])

    def little(self, gpu, launch):
        """Little's law's DRAM bandwidth of a copy: SMs x load bytes in flight per SM / latency,
        the loads' rate, doubled for the stores of as many bytes that go with them."""
        g = model.GPUS[gpu]
        warps = launch.resident_blocks * launch.threads // model.WARP
        return 2 * g.sms * warps * model.WARP * launch.loop.in_flight_bytes / g.latency_s

    def test_sixteen_byte_copy_reaches_the_copy_bandwidth(self):
        launch = self.launch("copy<float4>")
        self.assertEqual(launch.loop.in_flight_bytes, 16)
        self.assertEqual((launch.loop.load_bytes, launch.loop.store_bytes), (16, 16))
        self.assertEqual(launch.resident_blocks, 8)
        for gpu in model.GPUS:
            p = self.predict(gpu, launch)
            self.assertGreaterEqual(p.bytes_per_s, 0.95 * model.GPUS[gpu].copy_bytes_per_s, gpu)
            self.assertEqual(p.limiter, "bandwidth", gpu)

    def test_below_the_latency_bandwidth_product_bandwidth_follows_the_bytes_in_flight(self):
        copies = {8: self.launch("copy<float2>", element_bytes=8), 4: self.launch("copy<float>", element_bytes=4),
                  2: self.launch("copy<unsigned short>", element_bytes=2)}
        for size, launch in copies.items():
            self.assertEqual(launch.loop.in_flight_bytes, size)
        # Halving the bytes in flight below the product halves the bandwidth: 8 -> 4 bytes on the
        # H200 (16 KiB of loads per SM is below its product, not the H100's), 4 -> 2 on both.
        for gpu, pairs in (("H200", ((8, 4), (4, 2))), ("H100 SXM", ((4, 2),))):
            for larger, smaller in pairs:
                big, small = self.predict(gpu, copies[larger]), self.predict(gpu, copies[smaller])
                for launch, p in ((copies[larger], big), (copies[smaller], small)):
                    self.assertLess(self.little(gpu, launch), model.GPUS[gpu].copy_bytes_per_s, gpu)
                    self.assertEqual(p.limiter, "bytes in flight", gpu)
                    self.assertAlmostEqual(p.bytes_per_s / self.little(gpu, launch), 1.0, delta=0.01, msg=gpu)
                self.assertAlmostEqual(small.bytes_per_s / big.bytes_per_s, 0.5, delta=0.025, msg=gpu)
        self.assertEqual(self.predict("H100 SXM", copies[8]).limiter, "bandwidth")

    def test_quarter_occupancy_copy_follows_littles_law(self):
        launch = self.launch("copy_quarter_occupancy", threads=128)
        self.assertEqual(launch.resident_blocks, 4)  # 48 KiB of shared memory each: 512 of 2048 threads
        self.assertEqual(launch.loop.in_flight_bytes, 16)
        for gpu in model.GPUS:
            p = self.predict(gpu, launch)
            self.assertEqual(p.limiter, "bytes in flight", gpu)
            self.assertAlmostEqual(p.bytes_per_s / self.little(gpu, launch), 1.0, delta=0.01, msg=gpu)

    def test_dependent_fmas_turn_the_copy_issue_bound_at_the_issue_rate(self):
        few, many = self.launch("fma_copy<4>"), self.launch("fma_copy<256>")
        # 4 x 256 dependent FMAs per iteration, as the source says, plus the copy's own instructions.
        fmas = sum(1 for ins in self.kernels["fma_copy<256>"][0] if ins.base == "FFMA")
        self.assertEqual(fmas, 4 * 256)
        self.assertGreater(many.loop.instructions, 4 * 256)
        for gpu in model.GPUS:
            g = model.GPUS[gpu]
            self.assertNotEqual(self.predict(gpu, few).limiter, "issue", gpu)
            p = self.predict(gpu, many)
            self.assertEqual(p.limiter, "issue", gpu)
            warp_iterations = many.grid * many.threads // model.WARP * many.trips
            issue_seconds = warp_iterations * many.loop.instructions / (
                g.sms * model.SCHEDULERS_PER_SM * g.clock_hz * model.ISSUE_EFFICIENCY)
            self.assertAlmostEqual((p.seconds - g.launch_s) / issue_seconds, 1.0, delta=0.01, msg=gpu)

    def test_the_streaming_loop_is_the_inner_loop_over_rows_not_the_staging_loop(self):
        instructions = self.kernels["staged_rows_copy"][0]
        moving = [loop for loop in model.loops_of(instructions) if loop.load_bytes + loop.store_bytes]
        self.assertGreaterEqual(len(moving), 3, moving)  # staging, rows (holding the packs), packs
        self.assertIn(4, [loop.load_bytes for loop in moving])  # the staging loop's scalar load
        streaming = model.streaming_loop(instructions)
        self.assertEqual((streaming.load_bytes, streaming.store_bytes), (16, 16))
        self.assertEqual(streaming.instructions, min(loop.instructions for loop in moving if loop.store_bytes))


class Gate(unittest.TestCase):
    """tools/performance_records.py's gate on records made here (no benchmark run)."""

    def record(self, percent, limiter="bytes in flight"):
        return {"key": "layer_norm_forward bf16/bf16 1024x12288", "gpu": "H200", "percent_of_copy": percent,
                "limiter": limiter}

    def test_a_record_below_its_floor_fails_naming_its_limiter(self):
        floors = {"nvcc": "v", "records": {"layer_norm_forward bf16/bf16 1024x12288": {"H200": 50.0}}}
        self.assertEqual(records.gate([self.record(49.96)], floors, "v"), [])  # within the rounding tolerance
        self.assertEqual(records.gate([self.record(60.0)], floors, "v"), [])
        problems = records.gate([self.record(49.9)], floors, "v")
        self.assertEqual(len(problems), 1)
        self.assertIn("layer_norm_forward bf16/bf16 1024x12288 on the H200", problems[0])
        self.assertIn("below its floor 50.0%", problems[0])
        self.assertIn("limiter: bytes in flight", problems[0])

    def test_a_record_without_a_floor_fails(self):
        problems = records.gate([self.record(90.0)], {"nvcc": "v", "records": {}}, "v")
        self.assertEqual(len(problems), 1)
        self.assertIn("no floor checked in", problems[0])

    def test_a_floor_without_a_record_fails(self):
        floors = {"nvcc": "v", "records": {"layer_norm_forward bf16/bf16 1024x12288": {"H200": 50.0, "H100 SXM": 40.0}}}
        problems = records.gate([self.record(90.0)], floors, "v")
        self.assertEqual(len(problems), 1)
        self.assertIn("1024x12288 on the H100 SXM: a floor without a record", problems[0])

    def test_kernels_of_another_nvcc_fail(self):
        floors = {"nvcc": "release 13.0", "records": {"layer_norm_forward bf16/bf16 1024x12288": {"H200": 50.0}}}
        problems = records.gate([self.record(90.0)], floors, "release 13.1")
        self.assertEqual(len(problems), 1)
        self.assertIn("taken with release 13.0, the kernels compiled with release 13.1", problems[0])


class GpuCheckComparison(unittest.TestCase):
    """tools/gpu_check_model.py: a measured row beside its prediction for the GPU the log names."""

    KEY = "rms_norm_forward bf16/bf16 4096x16384"

    def compare(self, device: str) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            paths = {name: os.path.join(tmp, name) for name in ("bench.jsonl", "records.json", "bench.log")}
            with open(paths["bench.jsonl"], "w") as f:
                f.write('{"op": "rms_norm_forward", "layout": "", "dtypes": "bf16/bf16", "shape": "4096x16384", '
                        '"gpu_shape": "4096x16384", "ms": 0.08}\n')
            with open(paths["records.json"], "w") as f:
                f.write('{"records": [{"key": "%s", "op": "rms_norm_forward", "gpu": "H100 SXM", "predicted_us": 91.0, '
                        '"limiter": "bandwidth"}, {"key": "%s", "op": "rms_norm_forward", "gpu": "H200", '
                        '"predicted_us": 40.0, "limiter": "bytes in flight"}]}' % (self.KEY, self.KEY))
            with open(paths["bench.log"], "w") as f:
                f.write(f"cunorm benchmark on {device} (sm_90, 132 SMs): device-to-device copy 4300.0 GB/s\n")
            return subprocess.run([sys.executable, os.path.join(TOOLS, "gpu_check_model.py"), paths["bench.jsonl"],
                                   paths["records.json"], paths["bench.log"]], capture_output=True, text=True,
                                  check=True).stdout

    def test_measured_over_predicted_for_the_named_gpu(self):
        out = self.compare("NVIDIA H200")
        self.assertIn(f"| {self.KEY} | 80.0 | 40.0 | 2.00 | bytes in flight |", out)
        self.assertNotIn("91.0", out)  # the H100's prediction is not the named GPU's
        self.assertIn("rms_norm_forward on the H200 model: median ratio 2.00 over 1 rows", out)
        self.assertIn("| 91.0 | 0.88 | bandwidth |", self.compare("NVIDIA H100 80GB HBM3"))

    def test_another_gpu_is_compared_with_both_models(self):
        for device in ("NVIDIA GH200 480GB", "NVIDIA H200 NVL", "NVIDIA H100 PCIe"):
            out = self.compare(device)
            self.assertIn(f"| {self.KEY} | 80.0 | 91.0 | 0.88 | bandwidth | 40.0 | 2.00 | bytes in flight |", out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvcc", required=True)
    parser.add_argument("--occupancy", required=True, help="tools/occupancy.cpp's program")
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest)
