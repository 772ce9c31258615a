"""Full-size evidence on a GPU: the whole job (range test, 24 epochs, batch 512) for N seeds.

    python -m benchmarks.full_size --data-dir DIR --seeds 0 1 2 --out /tmp/full_size

Writes ``full_size.json`` and ``full_size.md`` into --out (per seed: final and best test
accuracy, LRMIN/LRMAX found, seconds per epoch, images/s, peak GPU memory; the device,
torch version, precision, and mean and standard deviation over the seeds), next to each
seed's run folder (config.json, history.json, lr_find.json; checkpoints too, not to commit).
Without a CUDA GPU it stops with one line, unless --proxy-width W asks for a narrow proxy
on whatever device there is. The seeds go through helpers.sweep.run_jobs: one after another, or
with --ray one per GPU of this machine (or --ray-address, of a cluster); finished seeds are read
back and an interrupted one continues, so the same command picks up where it stopped.
"""
from __future__ import annotations

import json
import statistics
import sys
from functools import partial
from pathlib import Path


import torch

from benchmarks import parser
from helpers import sweep
from helpers.config import TrainConfig
from helpers.errors import UserError
from benchmarks.render import full_size_table
from helpers.stats import summarize


def seed_row(run_dir: Path, history: dict) -> dict:
    cfg = json.loads((run_dir / "config.json").read_text())
    epochs = history["epochs"]
    per_epoch = statistics.median(e["train_seconds"] for e in epochs)
    return {"seed": cfg["seed"], "final_test_acc": history["final_test_acc"],
            "best_test_acc": max(e["test_acc"] for e in epochs), "lr_min": cfg["lr_min"], "lr_max": cfg["lr_max"],
            "seconds_per_epoch": round(per_epoch, 2),
            "images_per_second": round(history["steps_per_epoch"] * cfg["batch_size"] / per_epoch, 1),
            "peak_gpu_memory_gib": history.get("peak_gpu_memory_gib"),  # the run's own process measured it
            "run_dir": run_dir.name}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "python -m benchmarks.full_size")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="runs/full_size")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--proxy-width", type=float, default=None,
                   help="run a narrow proxy (e.g. 0.125) on the device there is, CPU included")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--precision", default=TrainConfig.precision,
                   help="auto, fp32, bf16 or fp16 (fp16 on any GPU: a T4's numerics)")
    p.add_argument("--limit-train", type=int, default=0, help="for a quick check only")
    p.add_argument("--limit-test", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    sweep.add_arguments(p)
    args = p.parse_args(argv)
    if not torch.cuda.is_available() and args.proxy_width is None and not args.ray_address:
        print("error: no CUDA GPU is visible; this benchmark measures the full network on a GPU "
              "(add --proxy-width 0.125 to run a narrow proxy here instead)", file=sys.stderr)
        return 2
    width = args.proxy_width if args.proxy_width is not None else 1.0
    out = Path(args.out).resolve()  # absolute: a Ray worker runs in its own folder
    base = TrainConfig(data_dir=str(Path(args.data_dir).resolve()), download=False, width=width, epochs=args.epochs,
                       max_at_epoch=min(TrainConfig.max_at_epoch, args.epochs / 2), batch_size=args.batch_size,
                       compile=args.compile, precision=args.precision, limit_train=args.limit_train, limit_test=args.limit_test,
                       progress=False, report=False)
    try:
        base.validate()
        ray, cpus = sweep.settings_from(args)
        dirs = [out / f"seed{seed}" for seed in args.seeds]
        jobs = [sweep.Job(f"seed {seed}", sweep.train_job,
                          {"config": {**base.to_dict(), "seed": seed, "out": str(d), "resolved": {}}},
                          done=partial(sweep.finished_history, d), needs=(base.data_dir,))
                for seed, d in zip(args.seeds, dirs)]
        rows = [seed_row(d, h) for d, h in zip(dirs, sweep.run_jobs(jobs, ray, cpus))]
        for row in rows:
            print(f"seed {row['seed']}: final test accuracy {100 * row['final_test_acc']:.2f}%", flush=True)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    resolved = json.loads((out / f"seed{args.seeds[0]}" / "config.json").read_text())["resolved"]
    summary = {"device_name": resolved["device_name"], "device": resolved["device"], "torch": torch.__version__,
               "precision": resolved["precision"], "width": width, "epochs": args.epochs,
               "batch_size": args.batch_size, "train_images": resolved["train_images"],
               "test_images": resolved["test_images"], "seeds": rows,
               "final_test_acc": summarize([r["final_test_acc"] for r in rows]),
               "seconds_per_epoch": summarize([r["seconds_per_epoch"] for r in rows])}
    (out / "full_size.json").write_text(json.dumps(summary, indent=2))
    table = full_size_table(summary)
    (out / "full_size.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
