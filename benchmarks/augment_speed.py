"""Throughput of the two augmentation paths, alone and inside a training step.

    python -m benchmarks.augment_speed                 # synthetic uint8 images
    python -m benchmarks.augment_speed --data-dir DIR  # real CIFAR-10

Prints images/s for (a) albumentations + DataLoader, (b) the batched on-device
path, and (c) a full training step (forward, backward, SGD) fed by each, at
batch 512 and widths 1/8 and 1, then the ratios, as a Markdown table.
"""
from __future__ import annotations

import itertools
import time

import torch
import torch.nn.functional as F

from benchmarks import parser
from helpers.data import Split, load_cifar10
from helpers.loaders import AlbumentationsTrainLoader, BatchedTrainLoader
from helpers.model import ResNet9
from helpers.train import Precision, choose_device, make_optimizer


def rate(batches, n_batches: int, warmup: int = 2, step=None) -> float:
    """Images per second over ``n_batches`` after ``warmup`` batches."""
    it = iter(batches)
    for x, y in itertools.islice(it, warmup):
        if step:
            step(x, y)
    seen, t0 = 0, time.perf_counter()
    for x, y in itertools.islice(it, n_batches):
        if step:
            step(x, y)
        seen += len(y)
    return seen / (time.perf_counter() - t0)


def make_step(width: float, device: torch.device):
    model = ResNet9(width=width).to(device).to(memory_format=torch.channels_last)
    opt = make_optimizer(model, 0.1)
    prec = Precision.for_device(device)

    def step(x, y):
        with prec.autocast():
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        prec.scaler.scale(loss).backward()
        prec.scaler.step(opt)
        prec.scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return step


def main() -> None:
    ap = parser(__doc__, "python -m benchmarks.augment_speed")
    ap.add_argument("--data-dir", help="real CIFAR-10 (default: synthetic images)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--num-workers", type=int, default=2)
    ap.add_argument("--batches", type=int, default=30,
                    help="timed batches for (a) and (b); many, so that the DataLoader's prefetched "
                         "batches do not flatter (a)")
    ap.add_argument("--step-batches", type=int, default=10, help="timed training steps at width < 1")
    ap.add_argument("--full-width-steps", type=int, default=3, help="timed steps at width 1 (slow on a CPU)")
    ap.add_argument("--widths", default="0.125,1")
    args = ap.parse_args()
    device = choose_device(args.device)
    if args.data_dir:
        split = load_cifar10(args.data_dir, download=False).train
    else:
        g = torch.Generator().manual_seed(0)
        n = args.batch_size * (args.batches + 4)
        split = Split(torch.randint(0, 256, (n, 32, 32, 3), generator=g, dtype=torch.uint8).numpy(),
                      torch.randint(0, 10, (n,), generator=g).numpy())
    bs = args.batch_size
    albu = AlbumentationsTrainLoader(split, bs, device, num_workers=args.num_workers)
    batched = BatchedTrainLoader(split, bs, device)
    rows = []
    a = rate(albu.epoch(0), args.batches)
    # (b) is so fast that --batches of it take a few tens of ms: time a whole epoch instead.
    b = rate(batched.epoch(0), max(args.batches, len(batched) - 2))
    rows += [("(a) albumentations + DataLoader", f"{args.num_workers} workers", a),
             ("(b) batched on-device", device.type, b)]
    step_rates = {}
    for w in (float(v) for v in args.widths.split(",")):
        n = args.step_batches if w < 0.5 or device.type == "cuda" else args.full_width_steps
        step = make_step(w, device)
        for name, loader in (("a", albu), ("b", batched)):
            step_rates[w, name] = rate(loader.epoch(1), n, warmup=1, step=step)
            rows.append((f"(c) train step fed by ({name})", f"width {w:g}", step_rates[w, name]))
    print(f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {bs}, "
          f"{'real CIFAR-10' if args.data_dir else 'synthetic images'}\n")
    print("| measurement | setting | images/s |\n|---|---|---:|")
    for name, setting, r in rows:
        print(f"| {name} | {setting} | {r:,.0f} |")
    print(f"\nbatched / albumentations augmentation speed: {b / a:.1f}x")
    for w in sorted({k[0] for k in step_rates}):
        share = (1 / b) / (1 / step_rates[w, 'b']) * 100
        print(f"width {w:g}: training step {step_rates[w, 'b'] / step_rates[w, 'a']:.2f}x faster with (b); "
              f"(b) augmentation is {share:.1f}% of a training step")


if __name__ == "__main__":
    main()
