"""Super-convergence shown, not told: one cycle against a step schedule at equal budgets.

    python -m helpers compare --data-dir DIR --width 0.125 --seeds 0 1 2 --out runs/compare

Trains the same network and data under several (schedule, epoch budget) arms, N seeds each,
and writes one folder: each run's own folder (config.json, history.json), ``lr_find-s<seed>.json``
(one range test per seed, shared by every arm of that seed), ``summary.json`` (every run's
settings, seed, command and per-epoch test accuracy; mean and standard deviation per arm; the
t statistic of each pair of arms at the same budget) and the two figures.

The LRs of every arm come from the same range test, read as a practitioner would:

* ``one_cycle`` (the assignment's, ends at LRMIN) and ``one_cycle_annealed`` (D. Page's, ends
  at 0): LRMAX by ``--lr-max-rule`` (default ``first_min_capped``), LRMIN by ``smith``; the peak sits
  at the same fraction of the budget as epoch 5 of 24;
* ``step``: one constant LR dropped 10x at 50% and 75% of the budget. The constant is the
  range test's ``min10`` (the loss minimum's LR / 10): fast.ai's reading of the test for a
  constant LR, one decade below where the loss stops falling, since a schedule that stays at
  its LR for half the run must stay stable there.
"""
from __future__ import annotations

import itertools
import json
from functools import partial
from pathlib import Path
from typing import Any

from .checkpoint import atomic_write_text, new_folder
from .config import SCHEDULES, TrainConfig, read_record
from .errors import Log, UserError
from .files import read_json
from .lr_finder import lr_min_for
from .plots import plot_compare_budget, plot_compare_curves
from .stats import summarize, welch_t
from .sweep import (Job, RaySettings, cached_data, finished_history, forget_data, range_test_job, run_jobs,
                    saved_suggestions, train_job)

# The comparison's arms: (schedule, epochs). Budgets 8 and 24 for the assignment's cycle and the step
# schedule; the annealed cycle at 24; the step schedule at 48 (what it needs to catch up).
DEFAULT_ARMS = (("one_cycle", 8), ("one_cycle", 24), ("step", 8), ("step", 24), ("one_cycle_annealed", 24),
                ("step", 48))
PEAK_FRACTION = 5 / 24



T_NOISE = 2.78  # two-sided 5% for Welch's t at ~4 degrees of freedom (3 seeds a side)


def compare_table(summary: dict) -> str:
    """Per arm: seeds, LRs, final accuracy mean +- sd; then each same-budget pair against the noise."""
    rows = ["| schedule | epochs | seeds | LRMAX (mean) | final test accuracy | seed range |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, a in sorted(summary["arms"].items(), key=lambda kv: (kv[1]["epochs"], kv[1]["schedule"])):
        s = a["final_summary"]
        lr = summarize([r["lr_max"] for r in summary["runs"] if r["arm"] == name])["mean"]
        rows.append(f"| {a['schedule']} | {a['epochs']} | {len(a['seeds'])} | {lr:.3g} | "
                    f"{100 * s['mean']:.2f}% +- {100 * s['std']:.2f} | {100 * s['min']:.2f}-{100 * s['max']:.2f}% |")
    rows += ["", "| same budget | difference | Welch t | larger than the seed noise? |", "|---|---:|---:|---|"]
    for p in summary["pairs"]:
        rows.append(f"| {p['a']} - {p['b']} | {100 * p['difference']:+.2f} points | {p['welch_t']:.1f} | "
                    f"{'yes' if abs(p['welch_t']) > T_NOISE else 'no'} |")
    return "\n".join(rows) + "\n"

def parse_arm(text: str) -> tuple[str, int]:
    kind, sep, epochs = text.partition(":")
    if not sep or kind not in SCHEDULES or not epochs.isdigit() or int(epochs) < 2:
        raise UserError(f"--arm expects SCHEDULE:EPOCHS with SCHEDULE one of {', '.join(SCHEDULES)} and "
                        f"EPOCHS >= 2, got {text!r}")
    return kind, int(epochs)


def arm_name(kind: str, epochs: int) -> str:
    return f"{kind}-{epochs}ep"


def arm_config(base: TrainConfig, kind: str, epochs: int, seed: int, lrs: dict[str, float], out: Path) -> TrainConfig:
    """One run's settings: the base settings with this arm's schedule, budget, seed and LRs."""
    if kind == "step":
        lr_max = lrs["min10"]
        lr_min = lr_max / 100  # unused by a step schedule; keeps the config valid
    else:
        lr_max = lrs[base.lr_max_rule]
        lr_min = lr_min_for(lr_max, lrs["smith_min"], base.lr_min_rule)
    return TrainConfig.from_dict({**base.to_dict(), "schedule": kind, "epochs": epochs,
                                  "max_at_epoch": round(PEAK_FRACTION * epochs, 3), "seed": seed,
                                  "lr_max": lr_max, "lr_min": lr_min, "out": str(out), "resolved": {},
                                  "report": False})


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm: seeds, final accuracies, their mean and spread; per budget: each pair's t."""
    arms: dict[str, dict[str, Any]] = {}
    for r in runs:
        a = arms.setdefault(r["arm"], {"schedule": r["schedule"], "epochs": r["epochs"], "seeds": [], "final": []})
        a["seeds"].append(r["seed"])
        a["final"].append(r["final_test_acc"])
    for a in arms.values():
        a["final_summary"] = summarize(a["final"])
    pairs = []
    for x, y in itertools.combinations(sorted(arms), 2):
        if arms[x]["epochs"] == arms[y]["epochs"] and len(arms[x]["final"]) > 1 and len(arms[y]["final"]) > 1:
            pairs.append({"a": x, "b": y, "epochs": arms[x]["epochs"],
                          "difference": arms[x]["final_summary"]["mean"] - arms[y]["final_summary"]["mean"],
                          "welch_t": welch_t(arms[x]["final"], arms[y]["final"])})
    return {"arms": arms, "pairs": pairs}


def compare(base: TrainConfig, seeds: list[int], arms: list[tuple[str, int]], out: str,
            log: Log = print, command: str = "", ray: RaySettings | None = None,
            cpus_per_job: int | None = None) -> dict[str, Any]:
    """Every (arm, seed) run into ``out``, then the summary and figures. The runs go through
    :func:`helpers.sweep.run_jobs`: here one at a time, or on Ray (``ray``); finished runs and
    range tests are read back, an interrupted one continues."""
    base.validate()
    given_data_dir = str(base.data_dir)
    base = TrainConfig.from_dict({**base.to_dict(), "data_dir": str(Path(base.data_dir).resolve())})
    # read (or fetched) once here: a bad data folder stops before anything is written, several Ray
    # workers never download into one folder at once, and the runs here reuse this copy
    cached_data(base, log)
    try:
        return _compare(base, seeds, arms, out, log, command.replace(given_data_dir, "DIR"), ray, cpus_per_job)
    finally:
        forget_data()


def _compare(base: TrainConfig, seeds: list[int], arms: list[tuple[str, int]], out: str, log: Log, command: str,
             ray: RaySettings | None, cpus_per_job: int | None) -> dict[str, Any]:
    """:func:`compare` once its data is read."""
    out_dir = Path(out).resolve()  # absolute: a Ray worker runs in its own folder
    if not any(out_dir.glob("lr_find-s*.json")):  # else: this command's folder, continued
        new_folder(out_dir)
    needs = (base.data_dir, str(out_dir))
    tests = [Job(f"range test seed {seed}", range_test_job,
                 {"config": {**base.to_dict(), "seed": seed}, "out": str(out_dir), "name": f"lr_find-s{seed}.json"},
                 done=partial(saved_suggestions, out_dir / f"lr_find-s{seed}.json"), needs=needs, device=base.device)
             for seed in seeds]
    found = dict(zip(seeds, run_jobs(tests, ray, cpus_per_job, log)))
    cells = [(kind, epochs, seed) for seed in seeds for kind, epochs in arms]
    configs = [arm_config(base, kind, epochs, seed, found[seed], out_dir / f"{arm_name(kind, epochs)}-s{seed}")
               for kind, epochs, seed in cells]
    histories = run_jobs([Job(f"{arm_name(kind, epochs)} seed {seed}", train_job, {"config": cfg.to_dict()},
                              done=partial(finished_history, cfg.out), needs=needs, device=base.device)
                          for (kind, epochs, seed), cfg in zip(cells, configs)], ray, cpus_per_job, log)
    runs: list[dict[str, Any]] = []
    for (kind, epochs, seed), cfg, history in zip(cells, configs, histories):
        runs.append({"arm": arm_name(kind, epochs), "schedule": kind, "epochs": epochs, "seed": seed,
                     "lr_max": cfg.lr_max, "lr_min": cfg.lr_min if kind != "step" else None,
                     "final_test_acc": history["final_test_acc"],
                     "test_acc": [e["test_acc"] for e in history["epochs"]],
                     "train_seconds": sum(e["train_seconds"] for e in history["epochs"])})
        log(f"{runs[-1]['arm']} seed {seed}: final test accuracy {100 * history['final_test_acc']:.2f}%")
    resolved = read_record(Path(configs[0].out) / "config.json")[1]
    summary = {"command": command, "width": base.width, "batch_size": base.batch_size,
               "device_name": resolved["device_name"], "precision": resolved["precision"],
               "data": {"train_images": resolved["train_images"], "test_images": resolved["test_images"]},
               "runs": runs, **summarize_runs(runs)}
    atomic_write_text(json.dumps(summary, indent=1), out_dir / "summary.json")
    plot_compare_curves(summary, out_dir / "compare_curves.png")
    plot_compare_budget(summary, out_dir / "compare_budget.png")
    return summary


COMMITTED = Path(__file__).resolve().parents[1] / "results" / "compare"


def compare_section(base: TrainConfig, run: bool, run_dir: Path, seeds: tuple[int, ...] = (0, 1, 2),
                    log: Log = print) -> tuple[str, list[Path]]:
    """The notebook's optional section: (markdown, figures drawn into ``run_dir``) of a
    comparison run here when ``run`` (into ``<run_dir>-compare``), else of the committed one."""
    if run:
        folder = Path(f"{run_dir}-compare")
        compare(base, list(seeds), list(DEFAULT_ARMS), str(folder), log=log, command="notebook: COMPARE = True")
    else:
        folder = COMMITTED
    if not (folder / "summary.json").is_file():
        return ("No committed comparison yet (results/compare/summary.json); set COMPARE = True to run one.", [])
    summary = read_json(folder / "summary.json", "the schedule comparison", keys=("arms", "runs"))
    figures = [plot_compare_curves(summary, Path(run_dir) / "compare_curves.png"),
               plot_compare_budget(summary, Path(run_dir) / "compare_budget.png")]
    return compare_table(summary), figures

