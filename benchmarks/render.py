"""The measured tables and figures of README.md and docs/ (RESULTS.md, TESTING.md), rendered from
the JSON files under ``results/``.

    python -m benchmarks.render    # rewrites the marked sections of those documents and assets/*.png

Each section between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` is written here
from files, never by hand; a test renders them again and compares, so every measured figure in
the documents has its file under ``results/``.
"""
from __future__ import annotations

import itertools
import os
import re
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks import figures as study  # the studies' figures
from benchmarks import parser
from helpers import plots
from helpers.compare import T_NOISE, compare_table
from helpers.config import CIFAR10_CLASSES, LR_MAX_RULES
from helpers.errors import Log, UserError
from helpers.files import read_json
from helpers.lr_finder import RangeTestResult, suggest
from helpers.report import results_table, run_label
from helpers.stats import summarize, welch_t

ROOT = Path(__file__).resolve().parents[1]
RULES = (*LR_MAX_RULES, "smith_min")


def load_range_tests(folder: Path, keys: tuple[str, ...] = ()) -> list[dict]:
    """Every range test under ``folder`` (each with ``keys`` too), its rules re-read from the curve
    with today's code."""
    out = []
    for path in sorted(Path(folder).glob("w*-s*.json")):
        r = read_json(path, "a range test", keys=("lrs", "losses", "width", "seed", *keys))
        _, _, values = suggest(r["lrs"], r["losses"])
        out.append({**r, "suggestions": values, "file": path.name})
    return sorted(out, key=lambda r: (-r["width"], r["seed"]))


def fp32_twin(test: dict, fp32: list[dict]) -> dict | None:
    """The fp32 range test of ``test``'s width and seed, if there is one."""
    return next((r for r in fp32 if (r["width"], r["seed"]) == (test["width"], test["seed"])), None)


def precision_name(test: dict) -> str:
    """A range test's precision, with the variant of its kernels where it names one."""
    return test["precision"] + (f" ({test['variant']})" if test.get("variant") else "")


def precision_range_table(tests: list[dict], fp32: list[dict]) -> str:
    """Range tests in another precision under the fp32 test of the same width and seed (listed once):
    where each stopped, the rules' LRs, and the largest loss difference up to the fp32 curve's lowest
    point (the part the rules read)."""
    def row(r: dict, precision: str, diff: str) -> str:
        v = r["suggestions"]
        return (f"| {r['width']:g} | {r['seed']} | {precision} | {len(r['lrs'])} ({r['stopped_early'] or 'no'}) | "
                f"{v['first_min']:.3g} | {v['first_min_capped']:.3g} | {v['smith_min']:.4g} | {diff} | {r['seconds']:.0f} |")

    out = ["| width | seed | precision | steps (stopped) | first valley | LRMAX (`first_min_capped`) | LRMIN (`smith`) "
           "| largest loss difference from fp32, up to its lowest point | seconds |",
           "|---:|---:|---|---|---:|---:|---:|---:|---:|"]
    listed = []
    for t in tests:
        base, diff = fp32_twin(t, fp32), "-"
        if base is not None:
            if all(base is not b for b in listed):
                out.append(row(base, "fp32", "-"))
                listed.append(base)
            low = int(np.argmin(base["losses"])) + 1
            diff = f"{max(abs(a - b) for a, b in zip(t['losses'][:low], base['losses'][:low])):.3f}"
        out.append(row(t, precision_name(t), diff))
    return "\n".join(out) + "\n"


def range_test_table(tests: list[dict]) -> str:
    """Per width: each rule's LR (mean over seeds, with the seeds' range when there are several)."""
    by_width: dict[float, list[dict]] = defaultdict(list)
    for r in tests:
        by_width[r["width"]].append(r)
    head = ("| width | seeds | " + " | ".join(f"`{k}`" for k in RULES) + " |\n"
            "|---:|---:|" + "---:|" * len(RULES) + "\n")
    rows = []
    for width in sorted(by_width, reverse=True):
        runs = by_width[width]
        cells = []
        for k in RULES:
            s = summarize([r["suggestions"][k] for r in runs])
            cells.append(f"{s['mean']:.3g}" if s["n"] == 1 else f"{s['mean']:.3g} ({s['min']:.2g}-{s['max']:.2g})")
        rows.append(f"| {width:g} | {', '.join(str(r['seed']) for r in runs)} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def run_section(folder: Path, assets: Path, name: str) -> str:
    """A finished run's headline table and figures, from its JSON files alone."""
    history = read_json(folder / "history.json", "the run's history", keys=("epochs", "lr", "steps_per_epoch"))
    cfg = read_json(folder / "config.json", "the run's settings", keys=("max_at_epoch",))
    label = run_label(cfg)
    figures = [("training curves", plots.plot_curves(history, assets / f"{name}_curves.png", label=label)),
               ("one-cycle schedule", plots.plot_schedule(history["lr"], history["steps_per_epoch"],
                                                          assets / f"{name}_schedule.png", cfg["max_at_epoch"],
                                                          label=label))]
    if (folder / "lr_find.json").is_file():
        figures.append(("LR range test", plots.plot_lr_find(RangeTestResult.load(folder / "lr_find.json"),
                                                            assets / f"{name}_lr_find.png", label=label)))
    results = read_json(folder / "results.json", "the run's results") if (folder / "results.json").is_file() else {}
    if "confusion" in results:
        figures.append(("per-class accuracy", plots.plot_per_class(np.array(results["confusion"]), CIFAR10_CLASSES,
                                                                   assets / f"{name}_per_class.png", label=label)))
    return results_table(folder) + "\n\n" + "\n".join(
        f"![{alt}]({p.relative_to(assets.parent).as_posix()})" for alt, p in figures) + "\n"


def rules_table(rows: list[dict]) -> str:
    """Per width, device and LRMAX rule: runs, LRMAX range, final accuracy; then every pair of rules
    with 2+ runs against the noise, within one width and device (devices are never pooled)."""
    out = ["| width | device | LRMAX rule | runs (seeds) | LRMAX found | final test accuracy | range |",
           "|---:|---|---|---:|---:|---:|---:|"]
    order = {rule: i for i, rule in enumerate(LR_MAX_RULES)}
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[(r["width"], study.row_device(r))][r["rule"]].append(r)
    keys = sorted(groups, key=lambda wd: (-wd[0], wd[1]))
    for width, device in keys:
        for rule, rs in sorted(groups[(width, device)].items()):
            a = summarize([r["final_test_acc"] for r in rs])
            lrs = [r["lr_max"] for r in rs]
            out.append(f"| {width:g} | {device} | {rule} | {len(rs)} ({', '.join(str(r['seed']) for r in rs)}) | "
                       f"{min(lrs):.3g}-{max(lrs):.3g} | {100 * a['mean']:.2f}% +- {100 * a['std']:.2f} | "
                       f"{100 * a['min']:.2f}-{100 * a['max']:.2f}% |")
    out += ["", "| width | device | rules | difference | Welch t | larger than the seed noise? |",
            "|---:|---|---|---:|---:|---|"]
    for width, device in keys:
        by_rule = groups[(width, device)]
        here = sorted((rule for rule, rs in by_rule.items() if len(rs) > 1), key=lambda rule: order.get(rule, len(order)))
        for a, b in itertools.combinations(here, 2):
            fa = [r["final_test_acc"] for r in by_rule[a]]
            fb = [r["final_test_acc"] for r in by_rule[b]]
            t = welch_t(fa, fb)
            out.append(f"| {width:g} | {device} | {a} - {b} | "
                       f"{100 * (summarize(fa)['mean'] - summarize(fb)['mean']):+.2f} points | "
                       f"{t:.1f} | {'yes' if abs(t) > T_NOISE else 'no'} |")
    return "\n".join(out) + "\n"


# The 91%-vs-94% ladder (python -m benchmarks.ladder; gpu_evidence.sh ladder): arm -> what it is.
LADDER = {
    "ours": "(a) ours: the default (assignment's block order, LRs found, ends at LRMIN)",
    "ours-page-order": "(b) ours with Page's block order",
    "ours-page-lr0.4": "(c) ours with Page's block order and LR (0.4, annealed to 0)",
    "ref-assignment-order": "(d) the reference, the assignment's block order",
    "ref": "(e) the reference: Page's dawn.py recipe (benchmarks/reference.py)",
}
# Each pair and the one thing (or group of things) it changes.
LADDER_PAIRS = (
    ("ours-page-order", "ours", "block order, in ours"),
    ("ours-page-lr0.4", "ours-page-order", "LR: found -> 0.4 annealed to 0, in ours"),
    ("ref", "ours-page-lr0.4", "the implementation (optimizer form, summed loss, data pipeline, init)"),
    ("ref", "ref-assignment-order", "block order, in the reference"),
    ("ref-assignment-order", "ours", "everything but the block order"),
    ("ref", "ours", "everything: the reference against our default"),
)


def _pair_row(a: list[float], b: list[float]) -> str:
    t = welch_t(a, b)
    return (f"{100 * (summarize(a)['mean'] - summarize(b)['mean']):+.2f} points | {t:.1f} | "
            f"{'yes' if abs(t) > T_NOISE else 'no'} |")


def _groups(rows: list[dict]) -> dict[tuple, dict[str, list[float]]]:
    """(width, device) -> arm -> final accuracies; devices and widths are never pooled."""
    out: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        out[(r["width"], study.row_device(r))][r["arm"]].append(r["final_test_acc"])
    return out


def defaults_from_tricks(ladder_rows: list[dict], trick_rows: list[dict]) -> list[dict]:
    """The ladder's (a) arm, completed from the extras' runs: a tta-ema run trains the default's very
    model (tests/test_run.py), so its plain accuracy is a default run. Only for a width, device and
    seed the ladder has no default run of: a seed is never counted twice."""
    have = {(r["width"], study.row_device(r), r["seed"]) for r in ladder_rows if r["arm"] == "ours"}
    arm, key = TRICKS_BASE
    return [{**r, "arm": "ours", "final_test_acc": r["curves"][key][-1], "from_tricks": True} for r in trick_rows
            if r["arm"] == arm and key in r.get("curves", {}) and (r["width"], study.row_device(r), r["seed"]) not in have]


def ladder_table(rows: list[dict]) -> str:
    """Per width and device: each ladder arm's runs and accuracy; then each pair against the noise."""
    rows = [r for r in rows if r["arm"] in LADDER]
    groups = _groups(rows)
    keys = sorted(groups, key=lambda wd: (-wd[0], wd[1]))
    out = ["| width | device | arm | runs (seeds) | final test accuracy | range |", "|---:|---|---|---:|---:|---:|"]
    for width, device in keys:
        for arm in (a for a in LADDER if a in groups[(width, device)]):
            seeds = [r["seed"] for r in rows if r["arm"] == arm and r["width"] == width
                     and study.row_device(r) == device]
            s = summarize(groups[(width, device)][arm])
            out.append(f"| {width:g} | {device} | {LADDER[arm]} | {s['n']} ({', '.join(map(str, seeds))}) | "
                       + (f"{100 * s['mean']:.2f}% +- {100 * s['std']:.2f} | {100 * s['min']:.2f}-{100 * s['max']:.2f}% |"
                          if s["n"] > 1 else f"{100 * s['mean']:.2f}% (one seed: no spread) | - |"))
    out += ["", "| width | device | pair | what changes | difference | Welch t | larger than the seed noise? |",
            "|---:|---|---|---|---:|---:|---|"]
    for width, device in keys:
        g = groups[(width, device)]
        for a, b, what in LADDER_PAIRS:
            if len(g.get(a, [])) > 1 and len(g.get(b, [])) > 1:
                out.append(f"| {width:g} | {device} | {LADDER[a][:3]} - {LADDER[b][:3]} | {what} | "
                           + _pair_row(g[a], g[b]))
    borrowed = sorted({(r["width"], study.row_device(r)) for r in rows if r.get("from_tricks")}, key=lambda wd: -wd[0])
    out += ["", *(f"(a) at width {w:g}, {d}: the plain accuracy (no TTA, no average) of the extras' `tta-ema` runs "
                  "(results/tricks/), which train as the default does." for w, d in borrowed)] if borrowed else []
    return "\n".join(out) + "\n"


def precision_table(rows: list[dict]) -> str:
    """Our default on the CPU per width and precision against fp32 at the same width: each seed once
    (a repeat of a seed is listed, not pooled), the difference against the seed noise, and each fp16
    run's loss scale at the epochs' ends."""
    runs: dict[tuple, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["arm"] == "ours" and r["device_name"].startswith("CPU"):
            runs[(r["width"], r["precision"])][r["seed"]].append(r)
    out = ["| width | precision | runs (seeds) | final test accuracy | vs fp32 | Welch t | larger than the seed noise? |",
           "|---:|---|---|---:|---:|---:|---|"]
    repeats, scales = [], []
    order = {"fp32": 0, "bf16": 1, "fp16": 2}
    for width, prec in sorted(runs, key=lambda wp: (-wp[0], order.get(wp[1], 3), wp[1])):
        by_seed = runs[(width, prec)]
        accs = [v[0]["final_test_acc"] for v in by_seed.values()]
        base = [v[0]["final_test_acc"] for v in runs.get((width, "fp32"), {}).values()]
        repeats += [f"width {width:g}, {prec}, seed {s}: " + ", ".join(f"{100 * r['final_test_acc']:.2f}%" for r in v)
                    for s, v in sorted(by_seed.items()) if len(v) > 1]
        scales += [f"width {width:g}, seed {s}: {loss_scales(v[0]['loss_scale'])}"
                   for s, v in sorted(by_seed.items()) if v[0].get("loss_scale")]
        s_ = summarize(accs)
        if prec == "fp32" or not base:
            pair = "- | - | - |"
        elif min(len(accs), len(base)) > 1:
            pair = _pair_row(accs, base)
        else:
            pair = f"{100 * (s_['mean'] - summarize(base)['mean']):+.2f} points | - | - |"
        spread = f" +- {100 * s_['std']:.2f}" if len(accs) > 1 else ""
        out.append(f"| {width:g} | {prec} | {len(accs)} ({', '.join(map(str, sorted(by_seed)))}) | "
                   f"{100 * s_['mean']:.2f}%{spread} | " + pair)
    note = f"\nSeeds run twice (the first run counts above): {'; '.join(repeats)}.\n" if repeats else ""
    note += f"\nfp16's loss scale at the epochs' ends: {'; '.join(scales)}.\n" if scales else ""
    return "\n".join(out) + "\n" + note


def loss_scales(history: list[float]) -> str:
    """An fp16 run's loss scale over its epochs in a few words: first, lowest (and when), last."""
    low = min(range(len(history)), key=history.__getitem__)
    return (f"{history[0]:,.0f} after epoch 1, lowest {history[low]:,.0f} after epoch {low + 1}, "
            f"{history[-1]:,.0f} at the end")


def jpeg_table(levels: dict, rows: list[dict]) -> str:
    """Per JPEG level (and the copy itself): PSNR against the copy, size, and the default's accuracy
    at each width and device where it ran, against the copy's runs at the same width and device."""
    groups = _groups([r for r in rows if r["arm"] == "ours" or r["arm"] in {f"q{q}" for q in levels}])
    out = ["| data | PSNR vs the copy (train / test) | bytes an image | width | device | runs | final test accuracy "
           "| vs the copy | Welch t | larger than the noise? |", "|---|---:|---:|---:|---|---:|---:|---:|---:|---|"]
    for width, device in sorted(groups, key=lambda wd: (-wd[0], wd[1])):
        g = groups[(width, device)]
        if not any(a.startswith("q") for a in g):
            continue
        copy = g.get("ours", [])
        if copy:
            c = summarize(copy)
            out.append(f"| the copy (quality 75) | - | - | {width:g} | {device} | {c['n']} | "
                       f"{100 * c['mean']:.2f}% +- {100 * c['std']:.2f} | - | - | - |")
        for q in sorted(levels, key=lambda q: -int(q)):
            if f"q{q}" not in g:
                continue
            lv, a = levels[q], summarize(g[f"q{q}"])
            vs = _pair_row(g[f"q{q}"], copy) if len(copy) > 1 and a["n"] > 1 else "n/a | n/a | n/a |"
            out.append(f"| re-encoded at quality {q} | {lv['train']['psnr_db_mean']:.2f} / {lv['test']['psnr_db_mean']:.2f} dB | "
                       f"{lv['train']['bytes_mean']:.0f} | {width:g} | {device} | {a['n']} | "
                       + (f"{100 * a['mean']:.2f}% +- {100 * a['std']:.2f} | " if a["n"] > 1 else
                          f"{100 * a['mean']:.2f}% (one run) | ") + vs)
    return "\n".join(out) + "\n"


def jpeg_slope(levels: dict, rows: list[dict]) -> dict[tuple, list[tuple[str, str, float]]]:
    """(width, device) -> (level, next level, points a dB) between neighbouring re-encoded levels
    (mean accuracy against test PSNR): piecewise, because accuracy saturates as PSNR grows."""
    out = {}
    for key, g in _groups(rows).items():
        pts = sorted((levels[q]["test"]["psnr_db_mean"], 100 * summarize(g[f"q{q}"])["mean"], q)
                     for q in levels if f"q{q}" in g)
        if len(pts) >= 2:
            out[key] = [(f"q{a[2]}", f"q{b[2]}", (b[1] - a[1]) / (b[0] - a[0])) for a, b in zip(pts, pts[1:])]
    return out


# The opt-in extras: (arm, accuracy key) -> name. A tta-ema run trains as the default
# does (TTA and the average change no step), so its plain accuracy is the default's.
TRICKS = {
    ("tta-ema", "test_acc"): "the default (the assignment's recipe)",
    ("tta-ema", "test_acc_tta"): "+ flip TTA",
    ("tta-ema", "test_acc_ema"): "+ EMA 0.99",
    ("tta-ema", "test_acc_ema_tta"): "+ EMA + TTA",
    ("ls-tta-ema", "test_acc"): "+ label smoothing 0.2",
    ("ls-tta-ema", "test_acc_tta"): "+ smoothing + TTA",
    ("ls-tta-ema", "test_acc_ema"): "+ smoothing + EMA",
    ("ls-tta-ema", "test_acc_ema_tta"): "+ all three",
}
TRICKS_BASE = ("tta-ema", "test_acc")


def tricks_finals(rows: list[dict]) -> dict[tuple, dict[tuple, dict[int, float]]]:
    """(width, device) -> (arm, key) -> seed -> final accuracy, for the TRICKS variants."""
    out: dict[tuple, dict[tuple, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        for (arm, key) in TRICKS:
            if r["arm"] == arm and key in r.get("curves", {}):
                out[(r["width"], study.row_device(r))][(arm, key)][r["seed"]] = r["curves"][key][-1]
    return out


def tricks_table(rows: list[dict]) -> str:
    """Each extra alone and together against the default: mean +- sd over seeds, the difference,
    Welch t, and the per-seed (paired) difference with its t: every variant has the default's
    seeds, and TTA and the average share the default's very training run, so the paired
    difference is free of the seed's noise that Welch's t counts."""
    out = ["| width | device | variant | seeds | final test accuracy | vs the default | Welch t | larger than the "
           "seed noise? | paired difference (same seeds), paired t |", "|---:|---|---|---|---:|---:|---:|---|---:|"]
    for (width, device), g in sorted(tricks_finals(rows).items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        base = g.get(TRICKS_BASE, {})
        for variant, name in TRICKS.items():
            if variant not in g:
                continue
            acc = g[variant]
            s = summarize(list(acc.values()))
            spread = f"+- {100 * s['std']:.2f}" if s["n"] > 1 else "(one run)"
            line = f"| {width:g} | {device} | {name} | {', '.join(map(str, sorted(acc)))} | {100 * s['mean']:.2f}% {spread} | "
            common = sorted(set(acc) & set(base))
            if variant == TRICKS_BASE or not common:
                line += "- | - | - | - |"
            elif len(common) == 1:  # one seed: its difference, no statistics
                line += f"- | - | - | {100 * (acc[common[0]] - base[common[0]]):+.2f} (one seed) |"
            else:
                d = summarize([acc[k] - base[k] for k in common])
                t = d["mean"] / (d["std"] / d["n"] ** 0.5) if d["std"] > 0 else float("inf")
                line += (_pair_row(list(acc.values()), list(base.values())) +
                         f" {100 * d['mean']:+.2f} +- {100 * d['std']:.2f} (t {t:.1f}) |")
            out.append(line)
    return "\n".join(out) + "\n"


def smoothing_range_table(rows: list[dict]) -> str:
    """Per seed, the range test read without and with label smoothing (same seed: same model and
    batches, only the loss differs): the loss floor, the first valley and what the rules chose."""
    out = ["| width | device | seed | label smoothing | loss floor | first valley (first_min) | LRMAX used (rule) | "
           "LRMIN (smith) |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    tested = sorted((r for r in rows if "range_test" in r),
                    key=lambda r: (-r["width"], study.row_device(r), r["seed"], r["label_smoothing"]))
    for r in tested:
        t = r["range_test"]
        out.append(f"| {r['width']:g} | {study.row_device(r)} | {r['seed']} | {r['label_smoothing']:g} | "
                   f"{min(t['losses']):.3f} | {t['suggestions']['first_min']:.3g} | {t['lr_max']:.3g} ({r['rule']}) | "
                   f"{t['lr_min']:.3g} |")
    return "\n".join(out) + "\n" if tested else ""


def speed_table(summary: dict) -> str:
    """``benchmarks/speed.py``'s JSON as a table: per variant and precision, the epoch time, its
    ratio to the reference's at the same precision, images/s, FLOPs and the fraction of peak."""
    ref = {r["precision"]: r["median_epoch_seconds"] for r in summary["rows"] if r["variant"] == "reference"}
    rows = ["| variant | precision | s / training epoch | vs the reference | images/s | 24 epochs | GFLOP / step | "
            "TFLOP/s | of dense peak | first epoch's excess (autotune, compile) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary["rows"]:
        vs = f"{r['median_epoch_seconds'] / ref[r['precision']]:.2f}x" if r["precision"] in ref else "n/a"
        frac = f"{100 * r['fraction_of_peak']:.1f}%" if r["fraction_of_peak"] is not None else "n/a"
        rows.append(f"| {r['variant']} | {r['precision']} | {r['median_epoch_seconds']:.3f} | {vs} | "
                    f"{r['images_per_second']:,.0f} | {r['epochs_24_seconds']:.1f} s | {r['step_gflops']:.1f} | "
                    f"{r['achieved_tflops']:.2f} | {frac} | {r['first_epoch_excess_seconds']:.2f} s |")
    proxy = " **A proxy (not the full network on a GPU).**" if summary["proxy"] else ""
    return (f"{summary['device_name']}, torch {summary['torch']}; width {summary['width']:g}, "
            f"{summary['images']:,} images an epoch, batch {summary['batch_size']}, median of "
            f"{summary['epochs_timed']} epochs after a warm-up epoch.{proxy}\n\n" + "\n".join(rows) +
            f"\n\nCommand: `{summary['command']}`\n")


def sweep_table(m: dict) -> str:
    """``benchmarks/sweep_speed.py``'s JSON: one comparison run three ways, wall time each."""
    rows = ["| how | options | wall time | Ray's speed-up against it |", "|---|---|---:|---:|"]
    ray = next(x["wall_seconds"] for x in m["rows"] if x["variant"] == "ray")
    for r in m["rows"]:
        gain = "-" if r["variant"] == "ray" else f"{r['wall_seconds'] / ray:.2f}x"
        rows.append(f"| {r['variant']} | `{r['options']}` | {r['wall_seconds']:.0f} s | {gain} |")
    same = "the same" if m["ray_equals_1_thread"] else "NOT the same"
    return (f"{m['cpu_cores']} CPU cores; `helpers compare`, arm {m['arm']}, seeds "
            f"{', '.join(map(str, m['seeds']))}, width {m['width']:g} (range test and training, Ray's start-up "
            f"included).\n\n" + "\n".join(rows) +
            f"\n\nRay's numbers and the 1-thread sequential ones: {same}, number for number. "
            f"Command: `{m['command']}`\n")


def full_size_table(summary: dict) -> str:
    """The full network's N-seed table from ``benchmarks/full_size.py``'s JSON (its .md file too)."""
    rows = ["| seed | final test accuracy | best test accuracy | LRMIN | LRMAX | s/epoch (training) | images/s | "
            "peak GPU memory |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary["seeds"]:
        mem = f"{r['peak_gpu_memory_gib']:.2f} GiB" if r["peak_gpu_memory_gib"] is not None else "n/a"
        rows.append(f"| {r['seed']} | {100 * r['final_test_acc']:.2f}% | {100 * r['best_test_acc']:.2f}% | "
                    f"{r['lr_min']:.4g} | {r['lr_max']:.4g} | {r['seconds_per_epoch']:.2f} | "
                    f"{r['images_per_second']:,.0f} | {mem} |")
    a = summary["final_test_acc"]
    return (f"{summary['device_name']}, {summary['precision']}, torch {summary['torch']}; width {summary['width']:g}, "
            f"{summary['epochs']} epochs, batch {summary['batch_size']}, {summary['train_images']:,} / "
            f"{summary['test_images']:,} images, LRs auto.\n\n" + "\n".join(rows) +
            f"\n\n**Mean {100 * a['mean']:.2f}% +- {100 * a['std']:.2f} over {a['n']} seeds** "
            f"(+- = standard deviation; range {100 * a['min']:.2f}-{100 * a['max']:.2f}%).\n")


# The run the README leads with: the committed notebook's own, with its saved (the assignment's)
# parameters; and the full-size seeds it is read beside.
GLANCE_RUN = "cpu-bf16-w1"
GLANCE_SEEDS = "h100-w1"


def _machine(device: str, precision: str, torch_version: str) -> str:
    return f"{device}, {precision}, torch {torch_version}"


def glance_table(full: dict, cfg: dict, history: dict, notebooks: list[dict] = ()) -> str:
    """The assignment's targets against what the project reaches, from the full-size runs and
    the notebook's own run (and, where recorded, each machine's wall time for the notebook); where
    both measure a quantity, each is named, and so is each one's machine where they differ."""
    res = cfg["resolved"]
    lrs = history["lr"]
    steps = history["steps_per_epoch"]
    peak = (lrs.index(max(lrs)) + 1) / steps
    a = full["final_test_acc"]
    seed_acc = next(r["final_test_acc"] for r in full["seeds"] if r["seed"] == cfg["seed"])
    machine = _machine(full["device_name"], full["precision"], full["torch"])
    own = _machine(res["device_name"], res["precision"], res["torch"])
    elsewhere = own != machine
    on = f" on {own}" if elsewhere else ""
    repeat = ("the same seed on another machine ends within the seed noise" if elsewhere else
              "two GPU runs of one seed differ")
    rows = [
        ("parameters", "6,573,120 (the assignment's ResNet-9)", f"{res['parameters']:,}"),
        ("batch size", "512", f"{cfg['batch_size']}"),
        ("epochs", "24", f"{len(history['epochs'])}"),
        ("LR peak", "at epoch 5", f"at the end of epoch {peak:g}"),
        ("LRMIN, LRMAX", "found by an LR range test",
         f"found: {cfg['lr_min']:.3g} and {cfg['lr_max']:.3g} (notebook run, seed {cfg['seed']}); "
         f"over {a['n']} seeds LRMAX {min(r['lr_max'] for r in full['seeds']):.2f}-"
         f"{max(r['lr_max'] for r in full['seeds']):.2f}"),
        ("annihilation", "none", f"none: the last step's LR is LRMIN ({lrs[-1]:.3g})"),
        ("augmentation", "pad 4, crop 32, flip, cutout 8x8", "the same (albumentations reference, batched twin)"),
        ("test accuracy", ">= 90%", f"**{100 * a['mean']:.2f}% +- {100 * a['std']:.2f}** over {a['n']} seeds "
                                    f"(range {100 * a['min']:.2f}-{100 * a['max']:.2f}%; seed {cfg['seed']}: "
                                    f"{100 * seed_acc:.2f}%); the notebook's own run of seed {cfg['seed']}{on}: "
                                    f"{100 * history['final_test_acc']:.2f}% ({repeat}: "
                                    "[determinism](docs/DESIGN.md#determinism))"),
        ("time per epoch", "-", f"{full['seconds_per_epoch']['mean']:.2f} s of training in the seeds' runs; "
                                f"{_seconds(statistics.median(e['train_seconds'] for e in history['epochs']))} "
                                f"(median) in the notebook's run{on} (in a Jupyter kernel, progress bars on)"),
    ]
    if notebooks:
        rows.append(("the whole notebook", "-", "; ".join(
            f"{_minutes(t['wall_seconds'])} for Run all on {_label_machine(t['label'])}" for t in notebooks)
            + ": data loading and range test included (its cells' saved timestamps)"))
    return (f"Measured on {machine}, full width, the JPEG copy of CIFAR-10 "
            f"({full['train_images']:,} / {full['test_images']:,} images)"
            + (f"; the notebook's own run on {own}" if elsewhere else "") + ".\n\n"
            "| | the assignment asks | this project |\n|---|---|---|\n"
            + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows) + "\n")


def _label_machine(label: str) -> str:
    """A results label's machine, precision and torch: what precedes its date."""
    return re.split(r", \d{4}-\d\d-\d\d", label)[0]


def _seconds(s: float) -> str:
    return f"{s:.2f} s" if s < 10 else f"{s:.0f} s"


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 600 else f"{s / 60:.0f} min"


def _minutes(s: float) -> str:
    return f"{s / 60:.1f} min" if s < 5400 else f"{s / 3600:.1f} h"


# The notebook's steps a student waits for, by what their cell calls.
NOTEBOOK_STEPS = (("run.data", "to load the data"), ("run.range_test()", "for the range test"),
                  ("run.fit()", "to train"))


def notebook_time(times: dict) -> str:
    """What Run all cost on the machine that executed the notebook, and its slow steps."""
    steps = [f"{_duration(c['seconds'])} {what}" for call, what in NOTEBOOK_STEPS
             for c in times["cells"] if call in c["first_line"]]
    return (f"The whole notebook ran in {_minutes(times['wall_seconds'])} ({times['label']}; Run all, "
            f"from its cells' saved timestamps): {', '.join(steps)}.\n")


def summary_block() -> str:
    """torchsummary's table of the assignment's network, collapsed."""
    from helpers.model import ResNet9, summary_text

    return ("<details><summary>torchsummary of ResNet-9 (width 1, input 3x32x32)</summary>\n\n```\n"
            + summary_text(ResNet9()).strip("\n") + "\n```\n</details>\n")


def mutation_table(m: dict) -> str:
    """Mutation testing per module: mutants generated, killed, survived (and of those, the ones only
    a GPU can tell), judged equivalent, unreached, and the share killed."""
    rows = ["| module | mutants | killed | survived | of which only a GPU can tell | judged equivalent | "
            "no test reaches it | not run yet | killed, of those run and not equivalent |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, c in m["modules"].items():
        share = "-" if c["killed_share"] is None else f"{100 * c['killed_share']:.1f}%"
        mark = " (a)" if c.get("earlier") else ""  # kept from the last run that finished the module
        rows.append(f"| `{name}`{mark} | {c['generated']} | {c['killed'] + c['timeout']} | {c['survived']} | "
                    f"{c['gpu only']} | {c['equivalent']} | {c['no tests']} | {c['not run yet']} | {share} |")
    note = f" {m['note']}" if m.get("note") else ""
    earlier = (f"\n\n(a) This run has not finished the module yet: its row is the last run that did, "
               f"{m['earlier']['date']}. {m['earlier']['note']}" if m.get("earlier") else "")
    if m.get("earlier", {}).get("verdicts_kept") is False:
        earlier += (" That run did not keep its verdicts mutant by mutant; results/mutation_verdicts.json holds "
                    "this run's for those modules, as far as it got.")
    return (f"{m['tool']}, {m['date']}; command: `{m['command']}` ({m['config']}).{note}\n\n" + "\n".join(rows)
            + earlier + "\n")


def sections(results: Path, assets: Path) -> dict[str, str]:
    """Every rendered section of the README and docs/RESULTS.md by name (figures are written as
    a side effect)."""
    out: dict[str, str] = {"summary": summary_block()}
    if (results / "mutation.json").is_file():
        out["mutation"] = mutation_table(read_json(results / "mutation.json", "mutation testing", keys=("modules",)))
    full_path, run = results / "full_size" / f"{GLANCE_SEEDS}.json", results / "runs" / GLANCE_RUN
    # every machine's Run all of the notebook, the fastest first (a GPU's: what a Colab user waits)
    times = sorted((read_json(t, "the notebook's times", keys=("cells", "wall_seconds", "label"))
                    for t in (results / "runs").glob("*/notebook.json")), key=lambda t: t["wall_seconds"])
    if times:
        out["notebook-time"] = "".join(notebook_time(t) for t in times)
    if full_path.is_file() and (run / "history.json").is_file():
        out["glance"] = glance_table(read_json(full_path, "the full-size runs", keys=("seeds", "final_test_acc")),
                                     read_json(run / "config.json", "the run's settings", keys=("resolved",)),
                                     read_json(run / "history.json", "the run's history", keys=("lr", "epochs")),
                                     times)
    folder = results / "range_tests"
    if any(folder.glob("*.json")):
        tests = load_range_tests(folder)
        png = study.plot_range_tests(tests, assets / "range_tests.png")
        out["range-tests"] = (range_test_table(tests) + f"\n![LR range tests across widths]"
                              f"({png.relative_to(assets.parent).as_posix()})\n")
    other = results / "precision" / "range_tests"
    if any(other.glob("*.json")):
        tests, fp32 = load_range_tests(other, keys=("precision", "label", "command")), load_range_tests(folder)
        png = study.plot_precision_range_tests(tests, [fp32_twin(t, fp32) for t in tests],
                                               [precision_name(t) for t in tests], assets / "range_tests_precision.png")
        out["precision-range-tests"] = (precision_range_table(tests, fp32) + "\n" + "\n".join(
            f"{precision_name(t)}: {t['label']}; `{t['command']}`.\n" for t in tests) + f"\n![the range test in fp32 and "
            f"fp16]({png.relative_to(assets.parent).as_posix()})\n")
    for folder in sorted((results / "runs").glob("*/history.json")):
        out[f"run-{folder.parent.name}"] = run_section(folder.parent, assets, folder.parent.name)
    cache = results / "data_cache.json"
    if cache.is_file():
        c = read_json(cache, "the data-cache benchmark")
        out["data-cache"] = (
            f"| load of the {c['images']:,}-image class-folder copy ({c['cpu_cores']} CPU cores) | median | runs |\n"
            f"|---|---:|---|\n"
            f"| cold: decode every JPEG, write the cache | {c['cold_median']:.1f} s | "
            f"{', '.join(f'{t:.1f}' for t in c['cold_seconds'])} |\n"
            f"| warm: read the cache, check its CRC | {c['warm_median']:.2f} s | "
            f"{', '.join(f'{t:.2f}' for t in c['warm_seconds'])} |\n\n"
            f"Speed-up {c['cold_median'] / c['warm_median']:.0f}x. Command: `{c['command']}`\n")
    summary_path = results / "compare" / "summary.json"
    if summary_path.is_file():
        summary = read_json(summary_path, "the schedule comparison", keys=("arms", "runs", "command"))
        curves = plots.plot_compare_curves(summary, assets / "compare_curves.png")
        budget = plots.plot_compare_budget(summary, assets / "compare_budget.png")
        out["compare"] = (compare_table(summary) + f"\nCommand: `{summary['command']}`\n\n"
                          f"![test accuracy per epoch]({curves.relative_to(assets.parent).as_posix()})\n"
                          f"![final accuracy vs budget]({budget.relative_to(assets.parent).as_posix()})\n")
    for path in sorted((results / "full_size").glob("*.json")):
        out[f"full-size-{path.stem}"] = full_size_table(read_json(path, "the full-size runs"))
    rule_rows = [r for p in sorted((results / "lr_rules").glob("*.json")) for r in read_json(p, "the LR-rule runs", keys=("runs",))["runs"]]
    if rule_rows:
        png = study.plot_rules_vs_width(rule_rows, assets / "rules_vs_width.png")
        out["lr-rules"] = (rules_table(rule_rows) + f"\n![final accuracy and LRMAX vs width]"
                           f"({png.relative_to(assets.parent).as_posix()})\n")
    for path in sorted((results / "sweep").glob("*.json")):
        out[f"sweep-{path.stem}"] = sweep_table(read_json(path, "the sweep timing"))
    for path in sorted((results / "speed").glob("*.json")):
        out[f"speed-{path.stem}"] = speed_table(read_json(path, "the speed benchmark"))
    trick_rows = [r for p in sorted((results / "tricks").glob("*.json")) for r in read_json(p, "the extras' runs", keys=("runs",))["runs"]]
    ladder_rows = [r for p in sorted((results / "ladder").glob("*.json")) if p.name != JPEG_FILE
                   for r in read_json(p, "the ladder's runs", keys=("runs",))["runs"]]
    ladder_rows += defaults_from_tricks(ladder_rows, trick_rows)
    if ladder_rows:
        png = study.plot_ladder(ladder_rows, LADDER, assets / "ladder.png")
        out["ladder"] = ladder_table(ladder_rows) + f"\n![the ladder]({png.relative_to(assets.parent).as_posix()})\n"
    if trick_rows:
        png = study.plot_tricks(trick_rows, TRICKS, assets / "tricks.png")
        out["tricks"] = (tricks_table(trick_rows) +
                         f"\n![accuracy per epoch, default vs the extras]({png.relative_to(assets.parent).as_posix()})\n")
        if any("range_test" in r for r in trick_rows):
            png = study.plot_smoothing_range_tests(trick_rows, assets / "tricks_range_tests.png")
            out["tricks-range-tests"] = (smoothing_range_table(trick_rows) + "\n![the range test with and without "
                                         f"label smoothing]({png.relative_to(assets.parent).as_posix()})\n")
    precision_rows = [r for p in sorted((results / "precision").glob("*.json"))
                      for r in read_json(p, "the precision runs", keys=("runs",))["runs"]]
    if precision_rows:
        out["precision"] = precision_table(ladder_rows + precision_rows)
    jpeg = results / "ladder" / JPEG_FILE
    if jpeg.is_file() and any(r["arm"].startswith("q") for r in ladder_rows):
        levels = read_json(jpeg, "the JPEG levels", keys=("levels",))["levels"]
        png = study.plot_jpeg(levels, ladder_rows, assets / "jpeg_levels.png")
        slopes = "".join(f"\nSlopes between neighbouring levels, width {w:g}, {d}: "
                         + ", ".join(f"{a} -> {b} {v:+.2f} points a dB" for a, b, v in s) + ".\n"
                         for (w, d), s in sorted(jpeg_slope(levels, ladder_rows).items()))
        out["jpeg"] = (jpeg_table(levels, ladder_rows) + slopes +
                       f"\n![accuracy against JPEG level]({png.relative_to(assets.parent).as_posix()})\n")
    return out


JPEG_FILE = "jpeg_psnr.json"
MARK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def fill(readme: str, rendered: dict[str, str]) -> str:
    """``readme`` with every marked section replaced by its rendering (unknown names are kept)."""
    return MARK.sub(lambda m: m.group(1) + rendered.get(m.group("name"), m.group("body")) + m.group(4), readme)


def relinked(rendered: dict[str, str], assets: Path, doc: Path) -> dict[str, str]:
    """The sections with their figures' links, written from the assets folder's parent, made
    relative to ``doc``'s own folder: the way GitHub resolves an image in docs/RESULTS.md."""
    written = assets.resolve().relative_to(assets.resolve().parent).as_posix() + "/"
    actual = Path(os.path.relpath(assets.resolve(), doc.resolve().parent)).as_posix() + "/"
    return {name: body.replace(f"]({written}", f"]({actual}") for name, body in rendered.items()}


# The documents whose marked sections are rendered from results/.
DOCS = (ROOT / "README.md", ROOT / "docs" / "RESULTS.md", ROOT / "docs" / "TESTING.md")


def render(results: Path = ROOT / "results", docs: tuple[Path, ...] = DOCS, assets: Path = ROOT / "assets",
           log: Log = print) -> dict[str, str]:
    """Fill every marked section of ``docs`` from ``results`` (and draw the figures into ``assets``)."""
    # Every file is read once before anything is drawn: a damaged one stops the command before a
    # figure or a document is touched (each section then checks the fields it reads).
    for path in sorted(Path(results).rglob("*.json")):
        read_json(path, "a measured result")
    for doc in docs:
        if not Path(doc).is_file():
            raise UserError(f"no document {doc}: --doc takes an existing Markdown file with "
                            "<!-- results:NAME --> sections; nothing was rendered")
    rendered = sections(Path(results), Path(assets))
    for doc in docs:
        text = Path(doc).read_text()
        Path(doc).write_text(fill(text, relinked(rendered, Path(assets), Path(doc))))
        names = sorted(m.group("name") for m in MARK.finditer(text) if m.group("name") in rendered)
        log(f"rendered {', '.join(names) or 'nothing'} into {doc}")
    return rendered


def main(argv: list[str] | None = None) -> int:
    import sys

    p = parser(__doc__, "python -m benchmarks.render")
    p.add_argument("--results", default="results", help="folder of measured JSON files (default: %(default)s)")
    p.add_argument("--doc", dest="docs", action="append", default=None, metavar="PATH",
                   help="a document whose marked sections are rendered (repeatable; default: README.md, "
                        "docs/RESULTS.md and docs/TESTING.md)")
    p.add_argument("--assets", default="assets")
    args = p.parse_args(argv)
    try:
        render(Path(args.results), tuple(Path(d) for d in args.docs) if args.docs else DOCS, Path(args.assets))
    except UserError as e:  # a missing or damaged file under results/: one line naming it
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
