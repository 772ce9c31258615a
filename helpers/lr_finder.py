"""LR range test (Smith 2017; fast.ai) on torch-lr-finder, and the rules that read it.

The test trains from the current weights for ``num_iter`` batches at the
training batch size, with the training augmentation and the training
optimizer (SGD, Nesterov, weight decay), raising the LR exponentially from
``start_lr`` to ``end_lr``. torch-lr-finder records the exponentially smoothed
loss, stops when it exceeds 5x the best loss, and restores the model and the
optimizer afterwards. We add a stop on a non-finite loss (torch-lr-finder
would carry a NaN on to the end) and the rules below.

Rules (each maps the recorded curve to an LR; all are recorded in the JSON):

* ``first_min_capped`` (default for LRMAX): ``first_min``, never above ``LR_MAX_CAP`` (1.0).
* ``first_min``: where the smoothed loss first stops falling, the first valley of the
  curve (Smith's reading of the test). See :func:`suggest_first_min`.
* ``min10``: the LR of the minimum smoothed loss, divided by 10.
* ``steepest``: the LR of the steepest descent of loss vs log(LR)
  (torch-lr-finder's suggestion).
* ``valley``: fast.ai's default: the LR two-thirds of the way down the longest
  stretch where the loss keeps falling.
* ``smith`` for LRMIN: Smith's own reading of the range test ("Cyclical
  Learning Rates", sec. 3.3): the lower bound is where the loss *starts* to
  fall, taken here as the first LR where the smoothed loss has dropped by 10 %
  of its total drop (from the start to the minimum).

Why these defaults: the range tests of docs/RESULTS.md across network widths (1 to 1/8). This
network's curve has two valleys, and which is deeper changes with the width, so rules that
read the lowest point (``min10``) or the slope (``steepest``, ``valley``) move by 10-20x
between widths; at full width ``min10`` reads 0.034, a tenth of the published peak (0.4).
The first valley holds at widths 1 and 1/2 (0.24-1.5); at 1/8 and 1/4 the curve often has
none before ~7, where 24-epoch runs collapse, hence the cap.
With no annihilation the run *ends* at LRMIN, so a low LRMIN (where learning begins) beats a
fixed fraction of LRMAX.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import time
import warnings
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .checkpoint import atomic_write_text
from .config import check_lr_order
from .data import load_data
from .errors import Log, UserError
from .files import DamagedFile, read_json
from .loaders import make_train_loader
from .model import build_model
from .train import Precision, choose_device, classification_loss, make_optimizer, out_of_memory


class _StopRangeTest(Exception):
    pass


def _finite_loss(out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    loss = classification_loss(out, y, label_smoothing)  # the loss training will minimise
    if not torch.isfinite(loss):
        raise _StopRangeTest  # history keeps every LR before this one
    return loss


def smooth(losses: np.ndarray, beta: float = 0.05) -> np.ndarray:
    """Exponential moving average (torch-lr-finder's ``smooth_f``) for raw losses."""
    out = np.empty_like(losses)
    for i, v in enumerate(losses):
        out[i] = v if i == 0 else beta * v + (1 - beta) * out[i - 1]
    return out


def _trim(lrs: np.ndarray, losses: np.ndarray, skip_start: int = 5) -> tuple[np.ndarray, np.ndarray]:
    # The first few points reflect start-up noise, not the LR: skip them as torch-lr-finder does.
    k = min(skip_start, max(0, len(lrs) - 3))
    return lrs[k:], losses[k:]


def suggest_steepest(lrs: np.ndarray, losses: np.ndarray) -> float:
    lrs, losses = _trim(lrs, losses)
    return float(lrs[int(np.argmin(np.gradient(losses, np.log(lrs))))])


# The capped rule's ceiling. The range test sees 120 steps from a random start; a 24-epoch
# cycle must stay stable for hundreds. At widths 1/8 and 1/4 the curve has no first valley
# below ~7 and first_min reads 7-10, where our 24-epoch CPU runs collapse (docs/RESULTS.md, "Which LR
# rule"); at widths 1 and 1/2 it reads 0.24-1.5 and nothing above 1 trained better there.
LR_MAX_CAP = 1.0


def suggest_first_min_capped(lrs: np.ndarray, losses: np.ndarray, cap: float = LR_MAX_CAP) -> float:
    """``first_min``, but never above ``cap`` (the default rule: see LR_MAX_CAP for why)."""
    return min(suggest_first_min(lrs, losses), cap)


def suggest_min10(lrs: np.ndarray, losses: np.ndarray) -> float:
    lrs, losses = _trim(lrs, losses)
    return float(lrs[int(np.argmin(losses))] / 10)


def suggest_first_min(lrs: np.ndarray, losses: np.ndarray, depth: float = 0.5, rise: float = 0.10) -> float:
    """Smith's reading: the LR where the smoothed loss first stops falling.

    The first running minimum that is at least ``depth`` as deep as the deepest point of the
    curve and after which the loss climbs back by ``rise`` of its depth. Why not the lowest
    point: the curve of this network has two valleys (a second one at LRs of 3-10, where
    BatchNorm's scale invariance lets weights grow and the effective LR fall), and which one
    is lower changes with the width and the seed; the first one does not move that way.
    """
    lrs, losses = _trim(lrs, losses)
    start, lowest = losses[0], int(np.argmin(losses))
    total = start - losses[lowest]
    best, i_best = start, 0
    for j, v in enumerate(losses):
        if v < best:
            best, i_best = v, j
        elif total > 0 and start - best >= depth * total and v > best + rise * (start - best):
            return float(lrs[i_best])
    return float(lrs[lowest])


def suggest_valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fast.ai's ``valley`` (fastai/callback/schedule.py), on the smoothed curve."""
    n = len(losses)
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])


def suggest_smith_min(lrs: np.ndarray, losses: np.ndarray, fraction: float = 0.10) -> float:
    """First LR where the loss has fallen by ``fraction`` of its start-to-minimum drop."""
    lrs, losses = _trim(lrs, losses)
    i_min = int(np.argmin(losses))
    drop = losses[0] - losses[i_min]
    if drop <= 0:
        return float(lrs[0])
    below = np.nonzero(losses[: i_min + 1] <= losses[0] - fraction * drop)[0]
    return float(lrs[below[0]])


MAX_RULES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "first_min_capped": suggest_first_min_capped, "first_min": suggest_first_min, "min10": suggest_min10,
    "steepest": suggest_steepest, "valley": suggest_valley}


@dataclass
class RangeTestResult:
    lrs: list[float]
    losses: list[float]              # smoothed (what the rules read)
    lr_max: float
    lr_min: float
    rule: str
    suggestions: dict[str, float] = field(default_factory=dict)
    stopped_early: str = ""          # "", "diverged" or "non-finite loss"
    seconds: float = 0.0
    batch_size: int = 0
    settings: dict[str, Any] = field(default_factory=dict)  # what it ran with (helpers.run reuses it then)

    def save(self, out_dir: Path, name: str = "lr_find.json") -> Path:
        """Write the JSON into ``out_dir`` (the figure is drawn by helpers.plots)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        js = out_dir / name
        atomic_write_text(json.dumps(asdict(self), indent=2), js)
        return js

    @classmethod
    def load(cls, path: Path) -> "RangeTestResult":
        """A saved range test; one line naming the file when it is missing or damaged."""
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        d = read_json(path, "the LR range test", keys=required)
        known = {f.name for f in fields(cls)}
        result = cls(**{k: v for k, v in d.items() if k in known})
        if not (isinstance(result.lrs, list) and isinstance(result.losses, list)
                and len(result.lrs) == len(result.losses)
                and all(isinstance(v, (int, float)) for v in (result.lr_max, result.lr_min, *result.lrs))):
            raise DamagedFile(f"{path} (the LR range test) is damaged: its LRs and losses do not match")
        return result


def suggest(lrs: list[float], losses: list[float], lr_max_rule: str = "first_min_capped",
            lr_min_rule: str = "smith") -> tuple[float, float, dict[str, float]]:
    """(lr_max, lr_min, every rule's value) from a recorded curve."""
    a, b = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if len(a) < 8:
        raise UserError(f"the range test recorded only {len(a)} points; raise --lr-find-iters or start lower")
    values = {name: fn(a, b) for name, fn in MAX_RULES.items()}
    values["smith_min"] = suggest_smith_min(a, b)
    lr_max = values[lr_max_rule]
    lr_min = values["lr_min"] = lr_min_for(lr_max, values["smith_min"], lr_min_rule)
    return lr_max, lr_min, values


def lr_min_for(lr_max: float, smith_min: float, rule: str = "smith") -> float:
    """LRMIN by ``rule`` for a given LRMAX (the range test's, or one the user fixed)."""
    lr_min = smith_min if rule == "smith" else lr_max / 8
    return min(lr_min, lr_max / 2)  # LRMIN must sit below LRMAX for a one-cycle schedule to exist


def lrs_in_force(lr_min: float | str, lr_max: float | str, result: "RangeTestResult",
                 lr_min_rule: str = "smith") -> tuple[float, float]:
    """(LRMIN, LRMAX) a run uses: numbers as given, 'auto' read off the range test (LRMIN for the
    LRMAX in force, the user's if fixed). The job and the notebook's schedule cell both call it."""
    lr_max = result.lr_max if lr_max == "auto" else lr_max
    lr_min = lr_min_for(lr_max, result.suggestions["smith_min"], lr_min_rule) if lr_min == "auto" else lr_min
    check_lr_order(lr_min, lr_max, found_by_range_test=True)
    return lr_min, lr_max


class _EpochIter:
    """Adapts a ``.epoch(k)`` loader to an iterable that starts a new epoch each time."""

    def __init__(self, loader) -> None:
        self.loader, self.k = loader, 0

    def __iter__(self):
        self.k += 1
        return iter(self.loader.epoch(10**6 + self.k))  # seeds disjoint from training epochs

    def __len__(self) -> int:
        return len(self.loader)


def range_test(model: nn.Module, train_loader, device: torch.device, precision, cfg, *,
               optimizer: torch.optim.Optimizer | None = None,
               log: Log = print) -> RangeTestResult:
    """Run the LR range test; ``model`` (and ``optimizer``) come back exactly as they were."""
    with warnings.catch_warnings():  # its tqdm.autonotebook import warns in notebooks
        warnings.simplefilter("ignore")
        import torch_lr_finder.lr_finder as tlf
    from tqdm import tqdm
    # torch-lr-finder draws a tqdm.autonotebook bar: a widget that a saved notebook shows
    # as a stale "0/120". Give it a text bar (or none) like the training loop's.
    tlf.tqdm = functools.partial(tqdm, desc="LR range test", disable=not cfg.progress, leave=False,
                                 mininterval=1.0)
    LRFinder, TrainDataLoaderIter = tlf.LRFinder, tlf.TrainDataLoaderIter

    if optimizer is None:
        optimizer = make_optimizer(model, cfg.lr_find_start, cfg.momentum, cfg.weight_decay, cfg.nesterov)
    saved_lrs = [g["lr"] for g in optimizer.param_groups]
    was_training = model.training  # the test trains; the caller gets its model back in its own mode
    amp = {}
    if precision.dtype is not None:  # torch-lr-finder requires a scaler with its torch backend
        amp = {"amp_backend": "torch", "amp_config": {"device_type": device.type, "dtype": precision.dtype},
               "grad_scaler": precision.new_scaler()}  # its own: the test's steps leave training's scale alone
    loss = functools.partial(_finite_loss, label_smoothing=cfg.label_smoothing)
    finder = LRFinder(model, optimizer, loss, device=device, **amp)
    t0 = time.perf_counter()
    stopped = ""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Learning rate search finished..."
            finder.range_test(TrainDataLoaderIter(_EpochIter(train_loader)), start_lr=cfg.lr_find_start,
                              end_lr=cfg.lr_find_end, num_iter=cfg.lr_find_iters, step_mode="exp",
                              smooth_f=0.05, diverge_th=5)
    except _StopRangeTest:
        stopped = "non-finite loss"
    finally:
        finder.reset()
        model.train(was_training)
        for g, lr in zip(optimizer.param_groups, saved_lrs):
            g["lr"] = lr
            g.pop("initial_lr", None)
    seconds = time.perf_counter() - t0
    lrs, losses = finder.history["lr"], finder.history["loss"]
    if not stopped and len(lrs) < cfg.lr_find_iters:
        stopped = "diverged"
    lr_max_rule, lr_min_rule = cfg.lr_max_rule, cfg.lr_min_rule
    lr_max, lr_min, values = suggest(lrs, losses, lr_max_rule, lr_min_rule)
    rule = f"lr_max={lr_max_rule}, lr_min={lr_min_rule}"
    log(f"LR range test: {len(lrs)} steps in {seconds:.0f}s{' (stopped: ' + stopped + ')' if stopped else ''}; "
        f"LRMAX {lr_max:.4g} ({lr_max_rule}), LRMIN {lr_min:.4g} ({lr_min_rule})")
    return RangeTestResult([float(v) for v in lrs], [float(v) for v in losses], lr_max, lr_min, rule,
                           values, stopped, seconds, train_loader.batch_size, settings_of(cfg))


# What a range test's curve depends on; a saved test is reused only where these match.
SETTINGS = ("width", "block_order", "seed", "batch_size", "augment", "precision", "limit_train", "label_smoothing",
            "lr_find_iters", "lr_find_start", "lr_find_end", "lr_max_rule", "lr_min_rule", "weight_decay", "momentum",
            "nesterov")


def settings_of(cfg) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in SETTINGS if hasattr(cfg, k)}


def find_lrs(cfg, data=None, log: Log = print, device: torch.device | None = None,
             precision=None) -> RangeTestResult:
    """The LR range test: every caller runs it through here (a run's 'auto' LRs, ``lr-find``,
    sweeps, the width study). On ``data`` (loaded from ``cfg.data_dir`` if None) with a fresh
    model and loader seeded as the run's, so its LRs are those the run would find; ``device`` and
    ``precision``: the run's, when it has chosen them. Out of GPU memory is one line."""
    cfg.validate()
    device = device if device is not None else choose_device(cfg.device)
    precision = precision if precision is not None else Precision.for_device(device, cfg.amp, cfg.precision)
    data = data if data is not None else load_data(cfg)
    loader = make_train_loader(cfg.augment, data.train, cfg.batch_size, device, cfg.seed, cfg.num_workers)
    try:
        return range_test(build_model(cfg, device), loader, device, precision, cfg, log=log)
    except torch.cuda.OutOfMemoryError:
        raise out_of_memory(device, cfg.batch_size, cfg.width, "no range test was saved") from None
