"""Training speed on one device, in one process: ours (eager and compiled) against the reference.

    python -m benchmarks.speed --out results/speed/h100.json            # on a CUDA GPU: full width
    python -m benchmarks.speed --out /tmp/speed.json                     # no CUDA: a CPU proxy

For each variant (ours eager, ours with ``torch.compile``, the reference of
``benchmarks/reference.py``) and each precision the device has (CUDA: bf16 where the GPU computes
it in hardware, and fp16; CPU: fp32), it trains ``--epochs`` epochs on random images of CIFAR's
shape (speed does not depend on the pixels) and reports the median training-epoch time over the
epochs after the first (the first pays cuDNN's autotuning and, compiled, the compilation: its
excess over the median is reported as compile time), images/s, the FLOPs of one training step
(forward + backward at batch 512) counted by torch's ``FlopCounterMode``, the achieved TFLOP/s and
its fraction of the GPU's dense peak (``PEAKS``; n/a where the name is unknown). GPU time is read
from CUDA events after a synchronize. Without CUDA it runs width ``--width`` (default 1/8) on the
CPU and says so in the JSON and the table.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks import parser
from benchmarks import reference
from helpers.config import TrainConfig
from helpers.data import Split
from helpers.loaders import BatchedTrainLoader
from helpers.model import build_model
from helpers.schedule import one_cycle
from helpers.train import (Precision, bf16_in_hardware, configure_backend, device_name, make_optimizer,
                           train_epoch)

ROOT = Path(__file__).resolve().parents[1]

# Dense (no sparsity) tensor-core peaks in TFLOP/s for 16-bit inputs, from NVIDIA's data sheets;
# the first name fragment found in the device's name wins (so "H100 PCIe" before "H100").
PEAKS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4), ("H200", 989.4), ("A100", 312.0),
         ("L40S", 362.1), ("L4", 121.0), ("A10", 125.0), ("V100", 125.0), ("T4", 65.0))
BATCH = 512


def peak_tflops(name: str, precision: str) -> float | None:
    """The GPU's dense 16-bit peak; None for fp32, the CPU or an unknown name."""
    if precision == "fp32":
        return None
    return next((p for key, p in PEAKS if key in name), None)


def step_flops(model: torch.nn.Module, device: torch.device) -> int:
    """FLOPs of one training step (forward + backward) at batch 512, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(BATCH, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH,), device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x).float(), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


class Clock:
    """Seconds of device work between start() and stop(): CUDA events, else the host clock."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.t0 = torch.cuda.Event(enable_timing=True)
            self.t0.record()
        else:
            self.t0 = time.perf_counter()

    def stop(self) -> float:
        if self.cuda:
            t1 = torch.cuda.Event(enable_timing=True)
            t1.record()
            torch.cuda.synchronize()
            return self.t0.elapsed_time(t1) / 1000
        return time.perf_counter() - self.t0


def time_ours(split: Split, width: float, device: torch.device, precision: str, compile: bool,
              epochs: int) -> tuple[list[float], int, int]:
    """Per-epoch training seconds of our job's path (batched loader, one cycle, train_epoch)."""
    cfg = TrainConfig(width=width, precision=precision, seed=0)
    prec = Precision.for_device(device, True, precision)
    loader = BatchedTrainLoader(split, BATCH, device, seed=0)
    model = build_model(cfg, device)
    flops = step_flops(model, device)
    opt = make_optimizer(model, 0.4)
    sched = one_cycle(opt, 0.01, 0.4, epochs, len(loader), min(5, epochs / 2))
    step_fn = torch.compile(model) if compile else model
    clock, seconds = Clock(device), []
    for epoch in range(epochs):
        clock.start()
        train_epoch(step_fn, loader.epoch(epoch), opt, sched, prec, epoch + 1)
        seconds.append(clock.stop())
    return seconds, flops, len(loader)


def time_reference(split: Split, width: float, device: torch.device, precision: str,
                   epochs: int) -> tuple[list[float], int, int]:
    """Per-epoch training seconds of benchmarks/reference.py's loop."""
    dtype = reference.autocast_dtype(device, precision)
    padded = reference.preprocess(split.x, reference.HYP["pad"]).to(device)
    labels = torch.as_tensor(split.y).to(device)
    torch.manual_seed(0)
    model = reference.Net(width).to(device).to(memory_format=torch.channels_last)
    flops = step_flops(model, device)
    opt, scaler = reference.make_optimizer(model, dtype)
    steps = len(labels) // BATCH
    clock, seconds = Clock(device), []
    for epoch in range(epochs):
        lrs = [reference.lr_at(epoch * steps + i, steps, epochs, min(5, epochs / 2)) for i in range(steps)]
        clock.start()
        reference.train_epoch(model, opt, scaler, reference.train_batches(padded, labels, 0, epoch), lrs, dtype)
        seconds.append(clock.stop())
    return seconds, flops, steps


def measure(variant: str, split: Split, width: float, device: torch.device, precision: str, epochs: int) -> dict:
    if variant == "reference":
        seconds, flops, steps = time_reference(split, width, device, precision, epochs)
    else:
        seconds, flops, steps = time_ours(split, width, device, precision, variant == "ours-compile", epochs)
    median = statistics.median(seconds[1:])
    tflops = flops * steps / median / 1e12
    peak = peak_tflops(device_name(device), precision)
    return {"variant": variant, "precision": precision, "epoch_seconds": seconds, "median_epoch_seconds": median,
            "first_epoch_excess_seconds": seconds[0] - median, "steps_per_epoch": steps,
            "images_per_second": steps * BATCH / median, "step_gflops": flops / 1e9, "achieved_tflops": tflops,
            "peak_tflops": peak, "fraction_of_peak": tflops / peak if peak else None,
            "epochs_24_seconds": 24 * median}


def precisions_for(device: torch.device) -> list[str]:
    if device.type != "cuda":
        return ["fp32"]
    return (["bf16"] if bf16_in_hardware() else []) + ["fp16"]


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__, "python -m benchmarks.speed")
    p.add_argument("--out", type=Path, required=True, help="the JSON to write (e.g. results/speed/h100.json)")
    p.add_argument("--width", type=float, default=None, help="default: 1 on CUDA, 0.125 on the CPU")
    p.add_argument("--images", type=int, default=None, help="training images an epoch (default 50,000; CPU 5,120)")
    p.add_argument("--epochs", type=int, default=4, help="1 warm-up epoch + the timed ones (>= 2)")
    p.add_argument("--variants", nargs="+", default=["ours-eager", "ours-compile", "reference"],
                   choices=["ours-eager", "ours-compile", "reference"])
    p.add_argument("--precisions", nargs="+", default=None, choices=["fp32", "bf16", "fp16"],
                   help="default: bf16 (where in hardware) and fp16 on CUDA, fp32 on the CPU")
    a = p.parse_args(argv)
    if a.epochs < 2:
        p.exit(2, "error: --epochs must be at least 2 (one warm-up epoch, then the timed ones)\n")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    configure_backend(device)
    width = a.width or (1.0 if device.type == "cuda" else 0.125)
    n = a.images or (50_000 if device.type == "cuda" else 10 * BATCH)
    if n < BATCH:
        p.exit(2, f"error: --images must be at least one batch ({BATCH})\n")
    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64))
    rows = [measure(v, split, width, device, prec, a.epochs)
            for prec in (a.precisions or precisions_for(device)) for v in a.variants]
    summary = {"device_name": device_name(device), "device": device.type, "torch": torch.__version__,
               "width": width, "images": n, "batch_size": BATCH, "epochs_timed": a.epochs - 1,
               "proxy": device.type != "cuda" or width != 1.0,
               "command": "python -m benchmarks.speed " + " ".join(argv if argv is not None else sys.argv[1:]),
               "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(summary, indent=1))
    from benchmarks.render import speed_table

    print(speed_table(summary))
    return summary


if __name__ == "__main__":
    main()
