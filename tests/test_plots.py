"""Every figure a reader sees labels its axes; the curves mark the assignment's 90%; the confusion
matrix is legible at the page's width; GradCAM has a colour scale."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import plots
from helpers.config import CIFAR10_CLASSES

ROOT = Path(__file__).parents[1]
RUN = ROOT / "results" / "runs" / "gpu-h100-w1"


@pytest.fixture
def drawn(monkeypatch):
    """The figures drawn, by file name, as they are about to be saved."""
    figs = {}
    real = plots.save

    def keep(fig, path):
        figs[Path(path).name] = fig
        return real(fig, path)

    monkeypatch.setattr(plots, "save", keep)
    import benchmarks.figures as study

    monkeypatch.setattr(study, "save", keep)
    return figs


def unlabelled(fig) -> list[str]:
    """Data panels (not images, not colour bars) without an x or y label of their own or of a panel
    that shares that axis."""
    out = []
    for ax in fig.axes:
        if not ax.axison or ax.get_label() == "<colorbar>":
            continue
        for axis, get in (("x", lambda a: a.get_xlabel()), ("y", lambda a: a.get_ylabel())):
            shared = getattr(ax, f"get_shared_{axis}_axes")().get_siblings(ax)
            if not any(get(a) for a in shared):
                out.append(f"{ax.get_title()!r} has no {axis} label")
    return out


@pytest.mark.slow
def test_every_panel_of_every_rendered_figure_is_labelled(drawn, tmp_path):
    from benchmarks.render import sections

    sections(ROOT / "results", tmp_path / "assets")  # every figure of README.md and docs/ from results/
    plots.plot_triangle(tmp_path / "triangle.png")
    assert len(drawn) >= 12
    bad = {name: unlabelled(fig) for name, fig in drawn.items() if unlabelled(fig)}
    assert not bad, bad


def test_the_accuracy_curves_mark_the_assignments_90_percent(drawn, tmp_path):
    plots.plot_curves(json.loads((RUN / "history.json").read_text()), tmp_path / "c.png")
    loss, acc = drawn["c.png"].axes
    assert loss.get_ylabel() and acc.get_ylabel() == "accuracy (%)"
    flat = [line for line in acc.get_lines() if len(set(line.get_ydata())) == 1]
    assert [line.get_ydata()[0] for line in flat] == [90.0] and "90%" in flat[0].get_label()


@pytest.mark.slow
def test_the_confusion_matrix_is_legible_at_900_px(tmp_path):
    from PIL import Image

    confusion = np.array(json.loads((RUN / "results.json").read_text())["confusion"])
    path = plots.plot_per_class(confusion, CIFAR10_CLASSES, tmp_path / "p.png", label="a label")
    width, height = Image.open(path).size
    # shown at most 900 px wide, the numbers (9 pt at 110 dpi, ~14 px) shrink by at most this factor
    assert width <= 900 or 14 * 900 / width >= 10, (width, height)
    assert height > width  # the bars above the matrix: no wide image with an empty gap


def test_gradcam_has_a_colour_scale(drawn, tmp_path):
    rng = np.random.default_rng(0)
    images, cams = rng.random((3, 32, 32, 3)), rng.random((3, 32, 32)).astype(np.float32)
    plots.plot_gradcam(images, cams, cams, [0, 1, 2], [1, 2, 3], CIFAR10_CLASSES, tmp_path / "g.png")
    bars = [ax for ax in drawn["g.png"].axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and "GradCAM" in (bars[0].get_xlabel() + bars[0].get_ylabel())
