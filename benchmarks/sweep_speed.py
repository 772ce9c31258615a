"""What --ray buys on this machine: the same small comparison timed one process at a time and as
Ray tasks, on the CPU.

    python -m benchmarks.sweep_speed --data-dir DIR --out ~/runs/sweep_speed --json results/sweep/cpu.json

Three ways of running one `helpers compare` (seeds 0 and 1, one arm, a narrow network), each into
its own folder, timed from the command's start to its end (Ray's start-up included):

* sequential: one process, torch's own thread count (all cores): what `compare` does without --ray;
* sequential, 1 thread a job: --cpus-per-job 1 (the numbers Ray's 1-CPU tasks give);
* ray: --ray --cpus-per-job 1, one task per core.

The JSON records the wall times, the speed-up of Ray against each, whether the 1-thread and the Ray
summaries agree number for number, the machine's core count and the command.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from benchmarks import parser

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"sequential": [], "sequential-1-thread": ["--cpus-per-job", "1"], "ray": ["--ray", "--cpus-per-job", "1"]}


def numbers(summary: dict) -> list:
    return [(r["arm"], r["seed"], r["lr_max"], r["test_acc"]) for r in summary["runs"]]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "python -m benchmarks.sweep_speed")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True, help="a folder for the three comparisons (replaced)")
    p.add_argument("--json", default=None, help="write the measurement here (e.g. results/sweep/cpu.json)")
    p.add_argument("--width", default="0.125")
    p.add_argument("--arm", default="one_cycle:3")
    args = p.parse_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    common = ["--seeds", "0", "1", "--arm", args.arm, "--width", args.width, "--device", "cpu", "--no-progress"]
    rows, summaries = [], {}
    for name, extra in VARIANTS.items():
        cmd = [sys.executable, "-m", "helpers", "compare", "--data-dir", args.data_dir, "--out", str(out / name),
               *common, *extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True)
        rows.append({"variant": name, "wall_seconds": round(time.perf_counter() - t0, 1),
                     "options": " ".join(extra) or "(none)"})
        summaries[name] = json.loads((out / name / "summary.json").read_text())
        print(f"{name}: {rows[-1]['wall_seconds']} s", flush=True)
    wall = {r["variant"]: r["wall_seconds"] for r in rows}
    result = {"cpu_cores": os.cpu_count(), "width": float(args.width), "arm": args.arm, "seeds": [0, 1],
              "rows": rows, "speedup_vs_sequential": round(wall["sequential"] / wall["ray"], 2),
              "speedup_vs_sequential_1_thread": round(wall["sequential-1-thread"] / wall["ray"], 2),
              "ray_equals_1_thread": numbers(summaries["ray"]) == numbers(summaries["sequential-1-thread"]),
              "command": "python -m benchmarks.sweep_speed " + shlex.join(argv if argv is not None else sys.argv[1:])
              .replace(args.data_dir, "DIR")}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
