#!/usr/bin/env python3
"""Writes the API fuzzer's seed corpus (tests/fuzz/corpus/): one small program per file, so that
libFuzzer starts from valid calls of every entry point, every dtype pair and layout, the calibration
sequence, the handle and memory functions, and the size edges issue 20 was about, instead of having
to discover a valid call byte by byte. The format is the one api_fuzzer.cpp reads (fuzz_input.hpp):
a seed byte for the arena, then per call the entry point's number and its arguments in order; a
zero byte is always the common choice (the main handle, a pointer's own slot, the usual eps).

Run it after changing the input format: python3 tests/fuzz/make_seed_corpus.py
"""
import os
import struct

ENTRIES = [
    "LayerNormForward", "LayerNormBackward", "RMSNormForward", "RMSNormBackward", "LayerNormWorkspaceSize",
    "BatchNormForwardTraining", "BatchNormForwardTrainingEx", "BatchNormForwardInference", "BatchNormBackward",
    "BatchNormBackwardInference", "BatchNormWorkspaceSize", "CalibrationCreate", "CalibrationAccumulate",
    "CalibrationFinalize", "CalibrationDestroy", "Create", "Destroy", "GetBackend", "SetStream", "SetWorkspace",
    "Malloc", "Free", "MemcpyToDevice", "MemcpyToHost", "Synchronize", "GetStatusString", "GetLastErrorMessage",
]
# Pointer arguments per compute entry (support/api_calls.cpp's pointer_args order).
POINTERS = {
    "LayerNormForward": 6, "LayerNormBackward": 8, "RMSNormForward": 4, "RMSNormBackward": 6,
    "LayerNormWorkspaceSize": 1, "BatchNormForwardTraining": 8, "BatchNormForwardTrainingEx": 8,
    "BatchNormForwardInference": 6, "BatchNormBackward": 8, "BatchNormBackwardInference": 8,
    "BatchNormWorkspaceSize": 1, "CalibrationCreate": 1, "CalibrationAccumulate": 1, "CalibrationFinalize": 2,
    "CalibrationDestroy": 0,
}
INT64_MAX = 2**63 - 1
HOME, NULL = 0, 1  # pointer choices
ALIAS_FIRST = 4  # the call's first pointer argument, exactly (in place)


def size(v):
    """A size argument: a small value, two bytes, or eight raw bytes."""
    if 0 <= v < 256:
        return [0, v]
    if 0 <= v < 65536:
        return [1, v & 255, v >> 8]
    return [3] + list(struct.pack("<q", v))


def entry(name):
    return [ENTRIES.index(name)]


def row(name, rows, cols, dtype, param, pointers=None, eps=0):
    """A LayerNorm/RMSNorm call on the main handle; param 0: float32, 1: dtype itself."""
    body = entry(name) + [0] + size(rows) + size(cols) + [dtype, param]
    if name.endswith("Forward"):
        body += [eps]
    return body + (pointers if pointers is not None else [HOME] * POINTERS[name])


def batch(name, layout, n, c, s, dtype, param, pointers=None):
    body = entry(name) + [0, layout] + size(n) + size(c) + size(s) + [dtype, param]
    if name in ("BatchNormForwardTraining", "BatchNormForwardTrainingEx", "BatchNormForwardInference",
                "BatchNormBackwardInference"):
        body += [0]  # eps
    if name.startswith("BatchNormForwardTraining"):
        body += [0]  # momentum
    if name == "BatchNormForwardTrainingEx":
        body += [1]  # the biased running variance
    return body + (pointers if pointers is not None else [HOME] * POINTERS[name])


def calibration(name, calib=0, layout=0, n=0, s=0, dtype=0, c=0):
    body = entry(name) + [0]
    if name != "CalibrationCreate":
        body += [calib]
    if name == "CalibrationAccumulate":
        body += [layout] + size(n) + size(s) + [dtype]
    if name == "CalibrationCreate":
        body += size(c)
    return body + [HOME] * POINTERS[name]


SEEDS = {
    "layer_norm_forward_f32": row("LayerNormForward", 4, 64, 0, 0),
    "layer_norm_forward_f16_in_place": row("LayerNormForward", 3, 200, 1, 1, [HOME, HOME, HOME, ALIAS_FIRST, NULL, HOME]),
    "layer_norm_backward_bf16_long_rows": row("LayerNormBackward", 2, 1500, 2, 0),
    "rms_norm_forward_bf16": row("RMSNormForward", 7, 33, 2, 1),
    "rms_norm_backward_f16": row("RMSNormBackward", 9, 96, 1, 0),
    "layer_norm_workspace_of_long_rows": entry("LayerNormWorkspaceSize") + [0] + size(1) + size(2**61) + [1, 1, HOME],
    # Issue 20: an empty batch whose float32 parameters' bytes overflow.
    "layer_norm_empty_batch_huge_cols": row("LayerNormForward", 0, INT64_MAX, 1, 0),
    "batch_norm_training_nchw_f32": batch("BatchNormForwardTraining", 0, 2, 3, 5, 0, 0),
    "batch_norm_training_ex_nhwc_f16": batch("BatchNormForwardTrainingEx", 1, 3, 16, 4, 1, 1),
    "batch_norm_inference_nchw_bf16": batch("BatchNormForwardInference", 0, 2, 4, 9, 2, 0),
    "batch_norm_backward_nhwc_f32": batch("BatchNormBackward", 1, 4, 5, 3, 0, 0),
    "batch_norm_backward_inference_nchw_f16": batch("BatchNormBackwardInference", 0, 2, 3, 8, 1, 0),
    "batch_norm_empty_batch_huge_c": batch("BatchNormForwardInference", 0, 0, INT64_MAX, 1, 0, 0),
    "batch_norm_workspace_of_many_channels": entry("BatchNormWorkspaceSize") + [0, 0] + size(1) + size(2**60) +
                                             size(1) + [1, 1, HOME],
    "calibration_sequence": calibration("CalibrationCreate", c=4) +
                            calibration("CalibrationAccumulate", n=2, s=3) +
                            calibration("CalibrationAccumulate", layout=1, n=1, s=5, dtype=1) +
                            calibration("CalibrationFinalize") + calibration("CalibrationDestroy") +
                            calibration("CalibrationAccumulate", calib=6, n=2, s=3),
    "calibration_huge_c": calibration("CalibrationCreate", c=INT64_MAX),
    "handles_and_memory": entry("Create") + [2, HOME] + entry("GetBackend") + [14, HOME] +
                          entry("SetStream") + [0] + [0] * 8 + entry("Malloc") + [0, HOME] + size(1000) +
                          entry("MemcpyToDevice") + [0, HOME, HOME] + size(300) + entry("MemcpyToHost") +
                          [0, HOME, HOME] + size(300) + entry("Free") + [0, 0] + entry("Synchronize") + [0] +
                          entry("GetStatusString") + [3] + entry("GetLastErrorMessage") + [12] +
                          entry("Destroy") + [0],
    # Findings of the first runs: a misaligned cunormCreate output, status values outside the enum.
    "create_into_misaligned_memory": entry("Create") + [2, 3, 1],
    "status_strings_outside_the_enum": entry("GetStatusString") + [0] + entry("GetStatusString") + [9] +
                                       entry("GetStatusString") + [0xF0, 0, 0, 0, 0x80],
    "user_workspace": entry("SetWorkspace") + [0, 0] + size(65535) + row("LayerNormBackward", 8, 128, 0, 0) +
                      entry("SetWorkspace") + [0, 0] + size(100) + row("LayerNormBackward", 8, 128, 0, 0),
}


def main():
    directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(directory, exist_ok=True)
    for name, body in SEEDS.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(bytes([0] + body))  # arena seed 0


if __name__ == "__main__":
    main()
