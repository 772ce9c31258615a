"""Every figure of the project: each function draws one picture and writes it as a PNG.

Functions take plain data (arrays, histories) and a path, and return the path,
so the notebook, the report and the tests call the same code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; the notebook shows the PNGs
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .schedule import triangular_lr  # noqa: E402
from .train import per_class_accuracy  # noqa: E402


def save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_triangle(path: Path, base_lr: float = 0.001, max_lr: float = 0.006, step_size: int = 2000,
                  cycles: int = 3) -> Path:
    """Smith's triangular cyclical LR, drawn from its formula (no arrows)."""
    it = np.arange(2 * step_size * cycles + 1)
    lr = triangular_lr(it, step_size, base_lr, max_lr)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(it, lr, color="tab:blue", lw=2, label="lr(iteration)")
    ax.axhline(max_lr, color="tab:red", ls="--", lw=1, label=f"max_lr = {max_lr:g}")
    ax.axhline(base_lr, color="tab:green", ls="--", lw=1, label=f"base_lr = {base_lr:g}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_xticks(np.arange(0, it[-1] + 1, step_size))
    ax.set_xlabel("iteration (ticks every stepsize)")
    ax.set_ylabel("learning rate")
    ax.set_title(f"Triangular cyclical LR (Smith 2017): stepsize {step_size}, {cycles} cycles")
    ax.set_ylim(0, max_lr * 1.15)
    ax.grid(alpha=0.3)
    return save(fig, path)


def _labelled(title: str, label: str) -> str:
    """A figure's title with what made it (width, device, precision, seed) on a second line."""
    return f"{title}\n{label}" if label else title


def plot_lr_find(result, path: Path, label: str = "") -> Path:
    """Range test: smoothed loss vs LR (log scale), with the chosen LRMIN and LRMAX marked."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(result.lrs, result.losses, color="tab:blue", label="smoothed training loss")
    ax.set_xscale("log")
    s = result.suggestions
    marks = [("steepest", s.get("steepest"), "tab:gray", ":"), ("valley", s.get("valley"), "tab:purple", ":"),
             ("LRMAX", result.lr_max, "tab:red", "--"), ("LRMIN", result.lr_min, "tab:green", "--")]
    for name, lr, color, ls in marks:
        if lr:
            ax.axvline(lr, color=color, ls=ls, lw=1.5, label=f"{name} = {lr:.3g}")
    lo, hi = min(result.losses), np.percentile(result.losses, 95)
    ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.1 * (hi - lo))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("loss")
    ax.set_title(_labelled(f"LR range test, batch {result.batch_size} ({result.rule})", label), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return save(fig, path)


def plot_schedule(lrs: Sequence[float], steps_per_epoch: int, path: Path, max_at_epoch: float | None = None,
                  momenta: Sequence[float] | None = None, label: str = "") -> Path:
    """One-cycle LR per step (and momentum, when it cycles), epochs on the x axis."""
    lrs = np.asarray(lrs)
    epochs = np.arange(1, len(lrs) + 1) / steps_per_epoch
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(epochs, lrs, color="tab:blue", label="learning rate")
    if max_at_epoch is not None:
        ax.axvline(max_at_epoch, color="tab:red", ls="--", lw=1, label=f"peak at epoch {max_at_epoch:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_xlim(0, epochs[-1])
    ax.set_title(_labelled(f"One-cycle schedule: {lrs[0]:.3g} -> {lrs.max():.3g} -> {lrs[-1]:.3g} "
                           "(no annihilation)", label), fontsize=10)
    if momenta is not None and np.ptp(np.asarray(momenta)) > 0:
        ax2 = ax.twinx()
        ax2.plot(epochs, momenta, color="tab:orange", label="momentum")
        ax2.set_ylabel("momentum")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)


# The test accuracy the assignment asks for: a line on the accuracy curves.
ASSIGNMENT_ACC = 0.90


def plot_curves(history: dict, path: Path, label: str = "") -> Path:
    """Train and test loss, train and test accuracy (with the assignment's 90%), per epoch."""
    rows = history["epochs"]
    ep = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(ep, [r["train_loss"] for r in rows], "o-", ms=3, label="train")
    a.plot(ep, [r["test_loss"] for r in rows], "o-", ms=3, label="test")
    a.set_title("loss")
    a.set_ylabel("cross-entropy loss")
    b.plot(ep, [100 * r["train_acc"] for r in rows], "o-", ms=3, label="train")
    b.plot(ep, [100 * r["test_acc"] for r in rows], "o-", ms=3, label="test")
    b.axhline(100 * ASSIGNMENT_ACC, color="tab:gray", ls="--", lw=1, label=f"the assignment's {100 * ASSIGNMENT_ACC:.0f}%")
    best = max(rows, key=lambda r: r["test_acc"])
    b.set_title(f"accuracy (final test {100 * rows[-1]['test_acc']:.2f}%, best {100 * best['test_acc']:.2f}%)")
    b.set_ylabel("accuracy (%)")
    if label:
        fig.suptitle(label, fontsize=10)
    for ax in (a, b):
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    return save(fig, path)


def image_grid(images: np.ndarray, titles: Sequence[str], path: Path, cols: int = 8,
               suptitle: str = "", title_colors: Sequence[str] | None = None) -> Path:
    """A grid of HWC images in [0, 1] or uint8, one title each."""
    n = len(images)
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 2.1 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], interpolation="nearest")
            ax.set_title(titles[i], fontsize=7, color=(title_colors[i] if title_colors else "black"))
    fig.tight_layout()
    if suptitle:  # above the axes; bbox_inches="tight" keeps it in the file
        fig.suptitle(suptitle, y=1.0 + 0.12 / rows)
    return save(fig, path)


def plot_augmentation(originals: np.ndarray, augmented: np.ndarray, path: Path) -> Path:
    """Same images before (top row) and after (bottom rows) the training transform."""
    n = len(originals)
    k = len(augmented) // n
    images = np.concatenate([originals / 255.0] + [augmented[i * n:(i + 1) * n] for i in range(k)])
    titles = ["original"] * n + [f"augmented {i + 1}" for i in range(k) for _ in range(n)]
    return image_grid(images, titles, path, cols=n,
                      suptitle="pad 4 (reflect) -> random crop 32 -> flip -> cutout 8x8 (mean)")


def plot_misclassified(images: np.ndarray, true: Sequence[int], pred: Sequence[int], classes: Sequence[str],
                       path: Path, probs: Sequence[float] | None = None) -> Path:
    titles = [f"true: {classes[t]}\npred: {classes[p]}" + (f" ({probs[i]:.2f})" if probs is not None else "")
              for i, (t, p) in enumerate(zip(true, pred))]
    return image_grid(images, titles, path, cols=5, suptitle="Misclassified test images",
                      title_colors=["tab:red"] * len(titles))


def plot_per_class(confusion: np.ndarray, classes: Sequence[str], path: Path, label: str = "") -> Path:
    """Per-class accuracy (bars) above the confusion matrix (counts): stacked, so that the matrix's
    numbers stay legible where the page shows the figure 900 px wide."""
    acc = per_class_accuracy(confusion)
    fig, (a, b) = plt.subplots(2, 1, figsize=(7.5, 11), gridspec_kw={"height_ratios": [1, 1.7]})
    a.barh(classes, 100 * acc, color="tab:blue")
    for i, v in enumerate(acc):
        a.text(100 * v - 1, i, f"{100 * v:.1f}", va="center", ha="right", color="white", fontsize=9)
    a.invert_yaxis()
    a.set_xlim(0, 100)
    a.set_xlabel("test accuracy (%)")
    a.set_ylabel("class")
    a.set_title("Per-class accuracy")
    im = b.imshow(confusion, cmap="Blues")
    b.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    b.set_yticks(range(len(classes)), classes)
    b.set_xlabel("predicted class")
    b.set_ylabel("true class")
    b.set_title("Confusion matrix (test images)")
    thresh = confusion.max() / 2
    for i in range(len(classes)):
        for j in range(len(classes)):
            b.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=9,
                   color="white" if confusion[i, j] > thresh else "black")
    fig.colorbar(im, ax=b, fraction=0.046, label="test images")
    if label:
        fig.suptitle(label, fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def plot_gradcam(images: np.ndarray, cam_pred: np.ndarray, cam_true: np.ndarray, true: Sequence[int],
                 pred: Sequence[int], classes: Sequence[str], path: Path, layer: str = "layer3") -> Path:
    """Per misclassified image: the image, GradCAM for the predicted class, GradCAM for the true class."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(5.4, 1.9 * n), squeeze=False)
    for i in range(n):
        img = images[i].astype(np.float32)
        panels = [(img, "image"),
                  (show_cam_on_image(img, cam_pred[i], use_rgb=True), f"pred: {classes[pred[i]]}"),
                  (show_cam_on_image(img, cam_true[i], use_rgb=True), f"true: {classes[true[i]]}")]
        for ax, (im, title) in zip(axes[i], panels):
            ax.imshow(im, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.suptitle(f"GradCAM ({layer}) of misclassified test images", fontsize=10, y=1.0 + 0.12 / n)
    # show_cam_on_image colours each map, scaled to its own maximum, with OpenCV's jet colormap
    scale = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0, 1), cmap="jet")
    fig.colorbar(scale, ax=axes[:, 1:].ravel().tolist(), orientation="horizontal", fraction=0.6 / n, pad=0.08 / n,
                 label="GradCAM weight (0 to the map's maximum)")
    return save(fig, path)


ARM_STYLE = {"one_cycle": ("tab:blue", "one cycle, ends at LRMIN (the assignment)"),
             "one_cycle_annealed": ("tab:green", "one cycle annealed to 0 (Page)"),
             "step": ("tab:red", "step: constant, /10 at 50% and 75%")}


def _compare_label(summary: dict) -> str:
    seeds = sorted({r["seed"] for r in summary["runs"]})
    return (f"width {summary['width']:g}, {summary['device_name']}, {summary['precision']}, "
            f"seeds {', '.join(map(str, seeds))}")


def plot_compare_curves(summary: dict, path: Path) -> Path:
    """Test accuracy vs epoch for each arm: the mean over seeds, and the seeds' band (min-max)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, arm in sorted(summary["arms"].items(), key=lambda kv: (kv[1]["schedule"], kv[1]["epochs"])):
        curves = np.array([r["test_acc"] for r in summary["runs"] if r["arm"] == name]) * 100
        ep = np.arange(1, curves.shape[1] + 1)
        color, label = ARM_STYLE[arm["schedule"]]
        style = {8: ":", 24: "-", 48: "--"}.get(arm["epochs"], "-.")
        ax.plot(ep, curves.mean(0), color=color, ls=style, label=f"{label}, {arm['epochs']} epochs")
        ax.fill_between(ep, curves.min(0), curves.max(0), color=color, alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(bottom=max(0, ax.get_ylim()[0]))
    ax.set_title(f"Test accuracy per epoch (mean, band = seed range)\n{_compare_label(summary)}", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save(fig, path)


def plot_compare_budget(summary: dict, path: Path) -> Path:
    """Final test accuracy against the epoch budget, per schedule (mean and standard deviation)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    kinds = sorted({a["schedule"] for a in summary["arms"].values()})
    for i, kind in enumerate(kinds):
        arms = sorted((a for a in summary["arms"].values() if a["schedule"] == kind), key=lambda a: a["epochs"])
        x = np.array([a["epochs"] for a in arms]) * (1 + 0.02 * (i - 1))  # side by side at equal budgets
        m = [100 * a["final_summary"]["mean"] for a in arms]
        sd = [100 * a["final_summary"]["std"] for a in arms]
        color, label = ARM_STYLE[kind]
        ax.errorbar(x, m, yerr=sd, color=color, marker="o", capsize=3, label=label)
        for a in arms:
            ax.scatter([a["epochs"] * (1 + 0.02 * (i - 1))] * len(a["final"]), 100 * np.array(a["final"]),
                       color=color, s=8, alpha=0.5)
    ax.set_xscale("log", base=2)
    budgets = sorted({a["epochs"] for a in summary["arms"].values()})
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.set_xlabel("epoch budget")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title(f"Final accuracy vs budget (mean +- sd, dots = seeds)\n{_compare_label(summary)}", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save(fig, path)
