"""The figures of the project's studies (range tests and LR rules across widths, the ladder, the extras, the JPEG
levels), drawn from the rows under ``results/`` for docs/RESULTS.md (``benchmarks.render``)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from helpers.config import TrainConfig
from helpers.plots import save  # first: it sets matplotlib's file-only backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DEFAULT_RULE = TrainConfig.lr_max_rule  # the rule the range-test figure marks


def row_device(row: dict) -> str:
    """'<device name> <precision>' of a collected run row (results/lr_rules/*.json)."""
    return f"{row['device_name']} {row['precision']}"


def plot_rules_vs_width(rows: Sequence[dict], path: Path) -> Path:
    """Final test accuracy and the LRMAX found, against network width: colour = LRMAX rule,
    line style = device (runs on different devices are not pooled into one mean)."""
    fig, (acc, lr) = plt.subplots(1, 2, figsize=(10, 4))
    rules, devices = sorted({r["rule"] for r in rows}), sorted({row_device(r) for r in rows})
    for i, rule in enumerate(rules):
        shift = 1 + 0.04 * (i - 0.5)  # rules side by side at equal widths
        for j, device in enumerate(devices):
            mine = [r for r in rows if r["rule"] == rule and row_device(r) == device]
            if not mine:
                continue
            widths = sorted({r["width"] for r in mine})
            style = dict(color=f"C{i}", linestyle=("-", "--", ":")[j % 3], marker="os^"[j % 3])
            for ax, key, scale in ((acc, "final_test_acc", 100), (lr, "lr_max", 1)):
                v = [[scale * r[key] for r in mine if r["width"] == w] for w in widths]
                ax.plot(np.array(widths) * shift, [np.mean(x) for x in v], label=f"{rule}, {device}", **style)
                for w, x in zip(widths, v):
                    ax.scatter([w * shift] * len(x), x, color=f"C{i}", s=10, alpha=0.5)
    seeds = ", ".join(map(str, sorted({r["seed"] for r in rows})))
    for ax, title in ((acc, "final test accuracy (%), 24 epochs"), (lr, "LRMAX found by the range test")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("network width (1 = the assignment's ResNet-9)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="LRMAX rule, device")
    acc.set_ylabel("final test accuracy (%)")
    lr.set_ylabel("LRMAX")
    lr.set_yscale("log")
    fig.suptitle(f"LRMAX rule vs width (line = mean, dots = runs; seeds {seeds})", fontsize=10)
    return save(fig, path)


def plot_ladder(rows: Sequence[dict], arms: dict[str, str], path: Path) -> Path:
    """Final test accuracy of each ladder arm (dots = seeds, bar = mean), one panel per width and device."""
    keys = sorted({(r["width"], row_device(r)) for r in rows if r["arm"] in arms}, key=lambda k: (-k[0], k[1]))
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 1.2 + 0.45 * len(arms) * len(keys)), squeeze=False)
    for ax, (width, device) in zip(axes[:, 0], keys):
        names = [a for a in arms if any(r["arm"] == a and r["width"] == width and row_device(r) == device for r in rows)]
        for i, arm in enumerate(names):
            acc = [100 * r["final_test_acc"] for r in rows
                   if r["arm"] == arm and r["width"] == width and row_device(r) == device]
            ax.scatter(acc, [i] * len(acc), color=f"C{i}", s=18, alpha=0.7)
            ax.plot([np.mean(acc)] * 2, [i - 0.3, i + 0.3], color=f"C{i}", lw=2.5)
        ax.set_yticks(range(len(names)), [arms[a] for a in names], fontsize=7)
        ax.set_ylabel("arm", fontsize=8)
        ax.invert_yaxis()
        ax.grid(alpha=0.3, axis="x")
        seeds = sorted({r["seed"] for r in rows if r["arm"] in names and r["width"] == width
                        and row_device(r) == device})
        ax.set_title(f"width {width:g}, {device}, seeds {', '.join(map(str, seeds))}", fontsize=9)
        ax.set_xlabel("final test accuracy (%), 24 epochs, batch 512, the JPEG copy", fontsize=8)
    fig.suptitle("Our default against an independent reference of Page's recipe (dots = seeds, bar = mean)",
                 fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def plot_tricks(rows: Sequence[dict], variants: dict[tuple, str], path: Path) -> Path:
    """Test accuracy per epoch of the default and of the opt-in extras (mean over seeds, band =
    min-max), one panel per width and device; the last epochs enlarged on the right."""
    keys = sorted({(r["width"], row_device(r)) for r in rows}, key=lambda k: (-k[0], k[1]))
    fig, axes = plt.subplots(len(keys), 2, figsize=(11, 3.6 * len(keys)), squeeze=False)
    shown = [v for v in variants if v[1] in ("test_acc", "test_acc_ema_tta")]  # the default, LS, and each + EMA + TTA
    for (ax, zoom), (width, device) in zip(axes, keys):
        here = [r for r in rows if r["width"] == width and row_device(r) == device]
        seeds = sorted({r["seed"] for r in here})
        for i, (arm, key) in enumerate(shown):
            curves = np.array([r["curves"][key] for r in here if r["arm"] == arm and key in r.get("curves", {})]) * 100
            if not len(curves):
                continue
            x = np.arange(1, curves.shape[1] + 1)
            for a in (ax, zoom):
                a.plot(x, curves.mean(0), color=f"C{i}", lw=1.5,
                       label=f"{variants[(arm, key)]} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")
                a.fill_between(x, curves.min(0), curves.max(0), color=f"C{i}", alpha=0.15)
        zoom.set_xlim(max(1, x[-1] - 8), x[-1])
        zoom.set_ylim(*np.percentile(np.concatenate([l.get_ydata()[-9:] for l in zoom.get_lines()]), [0, 100]) + [-1, 1])
        ax.set_title(f"width {width:g}, {device}, seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}",
                     fontsize=9)
        zoom.set_title("the last epochs", fontsize=9)
        for a in (ax, zoom):
            a.set_xlabel("epoch")
            a.set_ylabel("test accuracy (%)")
            a.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("The opt-in extras against the assignment's recipe (line = mean over seeds, band = min-max)", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def plot_smoothing_range_tests(rows: Sequence[dict], path: Path) -> Path:
    """The range test of each seed without and with label smoothing (same seed: same model and
    batches), the first valley dotted and the LRMAX used dashed; one panel per width, device, seed."""
    tested = [r for r in rows if "range_test" in r]
    keys = sorted({(r["width"], row_device(r), r["seed"]) for r in tested}, key=lambda k: (-k[0], k[1], k[2]))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    for ax, (width, device, seed) in zip(axes[0], keys):
        here = sorted((r for r in tested if (r["width"], row_device(r), r["seed"]) == (width, device, seed)),
                      key=lambda r: r["label_smoothing"])
        for i, r in enumerate(here):
            t = r["range_test"]
            ax.plot(t["lrs"], t["losses"], color=f"C{i}", label=f"label smoothing {r['label_smoothing']:g}")
            ax.axvline(t["suggestions"]["first_min"], color=f"C{i}", ls=":", lw=1.2)
            ax.axvline(t["lr_max"], color=f"C{i}", ls="--", lw=1.2)
        losses = np.concatenate([r["range_test"]["losses"] for r in here])
        lo, hi = losses.min(), np.percentile(losses, 90)
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.1 * (hi - lo))
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("smoothed training loss")
        ax.set_title(f"width {width:g}, {device}, seed {seed}", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("The range test with and without label smoothing (dotted: first valley; dashed: LRMAX used)",
                 fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def plot_jpeg(levels: dict, rows: Sequence[dict], path: Path) -> Path:
    """The default's final accuracy against each JPEG level's PSNR relative to the copy; the copy's
    own runs as a band (mean +- sd). One colour per width and device."""
    fig, ax = plt.subplots(figsize=(7, 4))
    keys = sorted({(r["width"], row_device(r)) for r in rows if r["arm"].startswith("q")}, key=lambda k: (-k[0], k[1]))
    for i, (width, device) in enumerate(keys):
        here = [r for r in rows if r["width"] == width and row_device(r) == device]
        pts = []
        for q, lv in levels.items():
            acc = [100 * r["final_test_acc"] for r in here if r["arm"] == f"q{q}"]
            if acc:
                x = lv["test"]["psnr_db_mean"]
                ax.scatter([x] * len(acc), acc, color=f"C{i}", s=16, alpha=0.6)
                ax.annotate(f"q{q}", (x, np.mean(acc)), textcoords="offset points", xytext=(4, 4), fontsize=7)
                pts.append((x, np.mean(acc)))
        if pts:
            seeds = sorted({r["seed"] for r in here if r["arm"].startswith("q")})
            ax.plot(*zip(*sorted(pts)), color=f"C{i}", marker="o",
                    label=f"width {width:g}, {device}: re-encoded (line = mean; seeds {', '.join(map(str, seeds))})")
        copy = [100 * r["final_test_acc"] for r in here if r["arm"] == "ours"]
        if copy:
            m, sd = np.mean(copy), np.std(copy, ddof=1) if len(copy) > 1 else 0.0
            ax.axhspan(m - sd, m + sd, color=f"C{i}", alpha=0.15)
            ax.axhline(m, color=f"C{i}", ls="--", lw=1, label=f"width {width:g}, {device}: the copy ({len(copy)} seeds)")
    ax.set_xlabel("mean PSNR of the re-encoded test images against the copy (dB)")
    ax.set_ylabel("final test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("The data's share: the default trained and tested on the copy re-encoded at lower JPEG quality",
                 fontsize=9)
    return save(fig, path)


def plot_range_tests(tests: list[dict], path: Path) -> Path:
    """Smoothed loss vs LR, one panel per width (every seed), the default rule's LR marked."""
    widths = sorted({r["width"] for r in tests}, reverse=True)
    fig, axes = plt.subplots(1, len(widths), figsize=(4 * len(widths), 3.6), squeeze=False, sharey=True)
    for ax, width in zip(axes[0], widths):
        for r in (r for r in tests if r["width"] == width):
            line, = ax.plot(r["lrs"], r["losses"], lw=1.2, label=f"seed {r['seed']}")
            ax.axvline(r["suggestions"][DEFAULT_RULE], color=line.get_color(), ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_ylim(1.7, 2.5)
        ax.set_title(f"width {width:g}")
        ax.set_xlabel(f"learning rate (dashed: {DEFAULT_RULE})")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("smoothed training loss")
    fig.suptitle("LR range tests on the real CIFAR-10 (CPU, fp32, batch 512, 120 steps 1e-4 -> 100)", y=1.02)
    fig.tight_layout()
    return save(fig, path)


def plot_precision_range_tests(tests: Sequence[dict], fp32: Sequence[dict | None], names: Sequence[str],
                               path: Path) -> Path:
    """One panel per width and seed: the range tests in other precisions (``names`` their legends)
    over ``fp32``, the fp32 test of each one's width and seed (None where there is none)."""
    panels: dict[tuple, list] = {}
    for t, base, name in zip(tests, fp32, names):
        panels.setdefault((t["width"], t["seed"]), [base]).append((t, name))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, ((width, seed), (base, *lines)) in zip(axes[0], panels.items()):
        if base is not None:
            ax.plot(base["lrs"], base["losses"], lw=2.5, alpha=0.5, label="fp32")
        for t, name in lines:
            ax.plot(t["lrs"], t["losses"], lw=1, label=name)
        ax.set_xscale("log")
        ax.set_ylim(1.7, 2.5)
        ax.set_title(f"width {width:g}, seed {seed}, CPU, batch 512")
        ax.set_xlabel("learning rate")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("smoothed training loss")
    fig.tight_layout()
    return save(fig, path)
