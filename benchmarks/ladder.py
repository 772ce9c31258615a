"""The CPU and GPU queues as one restartable list of ARM:WIDTH:SEED runs, each in
RUNS/<arm>-w<width>-s<seed> (a fresh process each, as from the shell):

    python -m benchmarks.ladder DATA_DIR RUNS ref:0.25:0 ours:0.25:0 q30:0.125:0 rule-min10:0.125:0 ...
    python -m benchmarks.ladder DATA_DIR RUNS ... --ray           # every GPU (or CPU) of this machine
    python -m benchmarks.collect_runs --label "CPU" RUNS/* --out results/ladder/cpu.json

A finished run is skipped; an interrupted one continues from its checkpoint; a folder with neither
stops it (train never overwrites a folder). The runs go through helpers.sweep.run_jobs: here one
at a time (stopping at the first failure), or with --ray / --ray-address as Ray tasks.

Arms (benchmarks.render.LADDER names the ladder's): ours (the default), ours-page-order (--block-order
page), ours-page-lr0.4 (Page's block order and LR: 0.4 annealed to ~0), ref (benchmarks/reference.py),
ref-assignment-order, qNN (the default on the copy re-encoded at JPEG quality NN by
benchmarks/jpeg_levels.py, under --jpeg-dir), tta-ema (--tta flip --ema 0.99: one run records the
default, TTA, EMA and both; training unchanged), ls-tta-ema (the same with --label-smoothing 0.2), and
rule-NAME (the default with --lr-max-rule NAME: the LRMAX rules compared).
"""
from __future__ import annotations

import os
import re
import sys
from functools import partial
from pathlib import Path

from benchmarks import parser
from helpers import sweep
from helpers.config import LR_MAX_RULES
from helpers.errors import UserError

# Our trainer's arms: the options each adds to the default run.
OURS = {"ours": [], "ours-page-order": ["--block-order", "page"],
        "ours-page-lr0.4": ["--block-order", "page", "--lr-max", "0.4", "--lr-min", "0.004",
                            "--schedule", "one_cycle_annealed"],
        "tta-ema": ["--tta", "flip", "--ema", "0.99"],
        "ls-tta-ema": ["--label-smoothing", "0.2", "--tta", "flip", "--ema", "0.99"],
        **{f"rule-{r}": ["--lr-max-rule", r] for r in LR_MAX_RULES}}
REFERENCE = {"ref": [], "ref-assignment-order": ["--block-order", "assignment"]}


def parse_spec(text: str) -> tuple[str, str, int]:
    """(arm, width as written: it names the folder, seed)."""
    arm, width, seed = (text.split(":") + ["", ""])[:3]
    known = arm in OURS or arm in REFERENCE or re.fullmatch(r"q\d+", arm)
    try:
        return (arm, width, int(seed)) if known and float(width) > 0 else _bad(text)
    except ValueError:
        return _bad(text)


def _bad(text: str):
    raise UserError(f"expected ARM:WIDTH:SEED with ARM one of {', '.join([*OURS, *REFERENCE])} or qNN, got {text!r}")


def command(arm: str, width: str, seed: int, run_dir: Path, data: str, jpeg: str, device: str,
            precision: str = "auto") -> list[str]:
    """The argv (after python) that trains one spec, or continues it; fp16 on a CPU runs under
    benchmarks/fp16_cpu.py (the same numerics, over 10x faster there)."""
    prefix = ["-m", "benchmarks.fp16_cpu"] if precision == "fp16" and device == "cpu" else []
    return prefix + _command(arm, width, seed, run_dir, data, jpeg, device, precision)


def _command(arm: str, width: str, seed: int, run_dir: Path, data: str, jpeg: str, device: str,
             precision: str) -> list[str]:
    common = ["--device", device, "--precision", precision, "--out", str(run_dir), "--width", width,
              "--seed", str(seed)]
    if arm in REFERENCE:  # the reference resumes from its own checkpoint in --out
        return ["-m", "benchmarks.reference", "--data-dir", data, *common, *REFERENCE[arm]]
    if (run_dir / "checkpoint.pt").is_file():
        return ["-m", "helpers", "train", "--resume", str(run_dir)]
    folder = str(Path(jpeg) / arm) if arm.startswith("q") else data
    return ["-m", "helpers", "train", "--data-dir", folder, *common, "--no-progress", "--no-report", *OURS.get(arm, [])]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "python -m benchmarks.ladder")
    p.add_argument("data_dir")
    p.add_argument("runs")
    p.add_argument("specs", nargs="+", metavar="ARM:WIDTH:SEED")
    p.add_argument("--device", default=os.environ.get("DEVICE", "cpu"), help="default: $DEVICE, else cpu")
    p.add_argument("--jpeg-dir", default=os.environ.get("JPEG_DIR", str(Path.home() / "data" / "jpeg")),
                   help="the qNN copies (default: $JPEG_DIR, else ~/data/jpeg)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="each run's --precision (default: auto, the product's rule)")
    sweep.add_arguments(p)
    args = p.parse_args(argv)
    try:
        specs = [parse_spec(s) for s in args.specs]
        ray, cpus = sweep.settings_from(args)
        runs, data, jpeg = (Path(p).resolve() for p in (args.runs, args.data_dir, args.jpeg_dir))
        jobs = []
        for arm, width, seed in specs:
            d = runs / f"{arm}-w{width}-s{seed}"
            argv_ = command(arm, width, seed, d, str(data), str(jpeg), args.device, args.precision)
            needs = (str(jpeg / arm if arm.startswith("q") else data),)
            jobs.append(sweep.Job(d.name, sweep.command_job, {"argv": argv_}, done=partial(sweep.finished_history, d),
                                  needs=needs, device=args.device))
        sweep.run_jobs(jobs, ray, cpus)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
