"""10,000 calls through cunorm.torch must not grow the process: the native handles, workspace,
calibrations and autograd graphs are all released. A leak of one kilobyte per call would grow
the resident set by 10 MB; the bound is 4 MB over a warmed-up process."""

import gc

import torch

import cunorm.torch as ct

CALLS = 10_000


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def run_calls(count: int) -> None:
    x = torch.randn(4, 33, requires_grad=True)
    weight, bias = torch.ones(33, requires_grad=True), torch.zeros(33, requires_grad=True)
    images = torch.randn(2, 3, 4, 4, requires_grad=True)
    running_mean, running_var = torch.zeros(3), torch.ones(3)
    for i in range(count):
        kind = i % 4
        if kind == 0:
            y = ct.functional.layer_norm(x, (33,), weight, bias)
        elif kind == 1:
            y = ct.functional.rms_norm(x, (33,), weight)
        elif kind == 2:
            y = ct.functional.batch_norm(images, running_mean, running_var, training=True)
        else:
            calibration_model = torch.nn.Sequential(torch.nn.BatchNorm1d(33))
            ct.calibrate_batch_norm(calibration_model, [x.detach()])
            continue
        y.sum().backward()


def test_ten_thousand_calls_do_not_grow_the_process():
    run_calls(500)
    gc.collect()
    before = resident_bytes()
    run_calls(CALLS)
    gc.collect()
    growth = resident_bytes() - before
    assert growth < 4 * 1024 * 1024, f"the resident set grew by {growth} bytes over {CALLS} calls"
