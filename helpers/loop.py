"""The epoch loop: train, evaluate, and hand each epoch to the callbacks. It knows nothing of
folders: the run writes its checkpoint and history through a callback (:mod:`helpers.run`), and
tests observe or interrupt the loop through one, never by patching a module.

    history = train_loop(parts, range(start, epochs), history, [saver, *observers], progress)

The order of events in each epoch: every callback's ``on_epoch_start``, then ``on_step`` before
each training step, then evaluation, the epoch's row appended to the history, and every callback's
``on_epoch_end`` in the order given (the run's saver first, so what comes after it sees the epoch
saved).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .loaders import EvalLoader
from .train import EpochStats, Precision, evaluate, synchronize, train_epoch


class Callback:
    """Hooks into :func:`train_loop`; each does nothing unless a subclass overrides it."""

    def on_epoch_start(self, epoch: int) -> None:
        """Before epoch ``epoch`` (1-based) trains."""

    def on_step(self, epoch: int, step: int) -> None:
        """Before training step ``step`` (1-based) of ``epoch``."""

    def on_epoch_end(self, end: "EpochEnd") -> None:
        """After the epoch is trained, evaluated and its row appended to ``end.history``."""


@dataclass
class Parts:
    """What the loop trains and evaluates, as the run built (or restored) it."""
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    precision: Precision
    train_loader: Any                # .epoch(i) -> batches, len() -> steps an epoch
    test_loader: EvalLoader
    ema: Any = None                  # helpers.train.make_ema, or None
    step_fn: Any = None              # the module called in training steps (torch.compile's), default model
    label_smoothing: float = 0.0
    tta: str = "none"


@dataclass
class EpochEnd:
    """What a callback sees after an epoch: its number, its row (also the history's last), the
    training statistics and the loop's parts (the state a checkpoint saves)."""
    epoch: int
    row: dict[str, Any]
    stats: EpochStats
    history: dict[str, Any]
    parts: Parts


def headline_key(ema: float, tta: str) -> str:
    """The accuracy a run reports: the weight average's where --ema is on, with --tta where on;
    ``test_acc`` (the trained weights, plain evaluation) is recorded beside it in every run."""
    return "test_acc" + ("_ema" if ema else "") + ("_tta" if tta != "none" else "")


def new_history(steps_per_epoch: int, headline: str) -> dict[str, Any]:
    return {"epochs": [], "lr": [], "momentum": [], "steps_per_epoch": steps_per_epoch, "headline": headline}


def evaluate_all(model, ema, test_loader, precision, tta: str) -> dict[str, float]:
    """Test loss and accuracy of the weights, and where on, of their average and with ``tta``:
    keys test_acc, test_acc_tta, test_acc_ema, test_acc_ema_tta (and the matching losses)."""
    out: dict[str, float] = {}
    for suffix, m in (("", model), ("_ema", ema.module if ema is not None else None)):
        if m is None:
            continue
        out[f"test_loss{suffix}"], out[f"test_acc{suffix}"] = evaluate(m, test_loader, precision)
        if tta != "none":
            out[f"test_loss{suffix}_tta"], out[f"test_acc{suffix}_tta"] = evaluate(m, test_loader, precision, tta)
    return out


def _stepping(batches: Iterable, epoch: int, callbacks: Sequence[Callback]) -> Iterator:
    for step, batch in enumerate(batches, 1):
        for c in callbacks:
            c.on_step(epoch, step)
        yield batch


def train_loop(parts: Parts, epochs: range, history: dict[str, Any], callbacks: Sequence[Callback] = (),
               progress=None) -> dict[str, Any]:
    """Train ``epochs`` (0-based indices, numbered from 1 in rows and callbacks), appending each
    epoch's row and per-step LR / momentum to ``history``; returns it. ``progress``: a wrapper of
    an epoch's batches (a tqdm bar), given the 0-based epoch. Stops with
    :class:`helpers.train.Diverged` on a non-finite loss; a callback's exception stops it too."""
    model = parts.model
    device = next(model.parameters()).device
    for epoch in epochs:
        for c in callbacks:
            c.on_epoch_start(epoch + 1)
        t0 = time.perf_counter()
        batches = _stepping(parts.train_loader.epoch(epoch), epoch + 1, callbacks)
        stats = train_epoch(parts.step_fn or model, batches, parts.optimizer, parts.scheduler, parts.precision,
                            epoch + 1, progress(epoch) if progress else None, parts.label_smoothing, parts.ema)
        synchronize(device)  # the clock measures the GPU's work, not how fast it was queued
        train_seconds = time.perf_counter() - t0
        # the eager module (same weights): a compiled one would recompile for the last, partial test batch
        tests = evaluate_all(model, parts.ema, parts.test_loader, parts.precision, parts.tta)
        history["lr"] += stats.lrs
        history["momentum"] += stats.momenta
        row = {"epoch": epoch + 1, "train_loss": stats.loss, "train_acc": stats.acc, **tests,
               "lr_last": stats.lrs[-1], "train_seconds": round(train_seconds, 2),
               "seconds": round(time.perf_counter() - t0, 2)}
        if parts.precision.scaler.is_enabled():  # fp16: the loss scale at the epoch's end (a T4's numerics)
            row["loss_scale"] = parts.precision.scaler.get_scale()
        history["epochs"].append(row)
        end = EpochEnd(epoch + 1, row, stats, history, parts)
        for c in callbacks:
            c.on_epoch_end(end)
    return history


def progress_bars(steps: int, epochs: int):
    """``progress`` for :func:`train_loop`: tqdm's text bar over each epoch's steps (text bars read
    well in a saved notebook too)."""
    from tqdm import tqdm

    return lambda epoch: lambda it: tqdm(it, total=steps, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                                         mininterval=1.0)
