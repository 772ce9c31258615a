"""Learning-rate schedules: Smith's triangular cycle and the one-cycle policy."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR

from .errors import UserError


def triangular_lr(iterations: np.ndarray | int, step_size: int, base_lr: float, max_lr: float) -> np.ndarray:
    """Smith's triangular policy ("Cyclical Learning Rates", 2017, eq. 1-3).

    cycle = floor(1 + it / (2 * stepsize))
    x     = |it / stepsize - 2 * cycle + 1|
    lr    = base_lr + (max_lr - base_lr) * max(0, 1 - x)
    """
    it = np.arange(iterations) if np.isscalar(iterations) else np.asarray(iterations, dtype=float)
    cycle = np.floor(1 + it / (2 * step_size))
    x = np.abs(it / step_size - 2 * cycle + 1)
    return base_lr + (max_lr - base_lr) * np.maximum(0.0, 1 - x)


def check_schedule(epochs: int, steps_per_epoch: int, max_at_epoch: float) -> None:
    """Refuse a one-cycle schedule whose rise or fall would have no step (OneCycleLR divides by them)."""
    total, peak = epochs * steps_per_epoch, round(max_at_epoch * steps_per_epoch) - 1
    if peak < 1 or total - 1 - peak < 1:
        raise UserError(f"the schedule needs at least one step to rise and one to fall, but {epochs} epochs of "
                        f"{steps_per_epoch} steps with the peak at epoch {max_at_epoch:g} leave "
                        f"{max(peak, 0)} and {max(total - 1 - peak, 0)}; use more data, a smaller --batch-size "
                        "or more --epochs")


def one_cycle(optimizer: torch.optim.Optimizer, lr_min: float, lr_max: float, epochs: int,
              steps_per_epoch: int, max_at_epoch: float, cycle_momentum: bool = False) -> OneCycleLR:
    """Linear one-cycle without annihilation: LRMIN -> LRMAX -> LRMIN.

    The LR starts at ``lr_min``, rises linearly to ``lr_max`` at the last step of
    epoch ``max_at_epoch`` and falls linearly back to ``lr_min`` (not below:
    ``final_div_factor=1``) at the last step. Momentum stays fixed, as in the
    published recipe, unless ``cycle_momentum``.

    The scheduler must be stepped ``total_steps - 1`` times, never more (see
    :func:`step_within`): one more step extrapolates below ``lr_min``.
    """
    total = epochs * steps_per_epoch
    return OneCycleLR(
        optimizer, max_lr=lr_max, total_steps=total,
        pct_start=max_at_epoch * steps_per_epoch / total,
        anneal_strategy="linear", div_factor=lr_max / lr_min, final_div_factor=1.0,
        three_phase=False, cycle_momentum=cycle_momentum)


def step_within(scheduler) -> None:
    """Step the scheduler unless it is already at its last step."""
    if scheduler.last_epoch < scheduler.total_steps - 1:
        scheduler.step()


class _PerStep(LambdaLR):
    """A LambdaLR that knows its length, so :func:`step_within` stops it at the last step."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr_at: Callable[[int], float], total_steps: int) -> None:
        self.total_steps = total_steps
        base = optimizer.param_groups[0]["lr"]
        super().__init__(optimizer, lambda step: lr_at(step) / base)


def one_cycle_annealed(optimizer: torch.optim.Optimizer, lr_min: float, lr_max: float, epochs: int,
                       steps_per_epoch: int, max_at_epoch: float) -> _PerStep:
    """D. Page's schedule: linear LRMIN -> LRMAX at the end of epoch ``max_at_epoch``, then linear
    down to 0 at the last step (the assignment's cycle ends at LRMIN instead)."""
    total = epochs * steps_per_epoch
    peak = round(max_at_epoch * steps_per_epoch) - 1
    return _PerStep(optimizer, lambda s: float(np.interp(s, [0, peak, total - 1], [lr_min, lr_max, 0.0])), total)


def step_decay(optimizer: torch.optim.Optimizer, lr: float, epochs: int, steps_per_epoch: int,
               drops: tuple[float, ...] = (0.5, 0.75), factor: float = 0.1) -> _PerStep:
    """Piecewise-constant: ``lr``, multiplied by ``factor`` at each fraction ``drops`` of the
    budget (the usual ResNet schedule: 10x down at 50% and 75%)."""
    total = epochs * steps_per_epoch
    bounds = [round(d * total) for d in drops]
    return _PerStep(optimizer, lambda s: lr * factor ** sum(s >= b for b in bounds), total)


def make_schedule(kind: str, optimizer: torch.optim.Optimizer, lr_min: float, lr_max: float, epochs: int,
                  steps_per_epoch: int, max_at_epoch: float):
    """The run's scheduler: the assignment's cycle, Page's annealed cycle, or a step schedule
    at ``lr_max`` (which a step run sets to its constant LR)."""
    if kind == "one_cycle":
        return one_cycle(optimizer, lr_min, lr_max, epochs, steps_per_epoch, max_at_epoch)
    if kind == "one_cycle_annealed":
        return one_cycle_annealed(optimizer, lr_min, lr_max, epochs, steps_per_epoch, max_at_epoch)
    return step_decay(optimizer, lr_max, epochs, steps_per_epoch)


def make_schedule_values(kind: str, lr_min: float, lr_max: float, epochs: int, steps_per_epoch: int,
                         max_at_epoch: float) -> np.ndarray:
    """The LR at every step of :func:`make_schedule`'s schedule, from the real scheduler."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr_max, momentum=0.9)
    sched = make_schedule(kind, opt, lr_min, lr_max, epochs, steps_per_epoch, max_at_epoch)
    lrs = []
    for _ in range(sched.total_steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()  # a no-op (no gradients); keeps the scheduler's order check quiet
        step_within(sched)
    return np.asarray(lrs)


def one_cycle_values(lr_min: float, lr_max: float, epochs: int, steps_per_epoch: int,
                     max_at_epoch: float) -> np.ndarray:
    """The LR at every step of :func:`one_cycle`."""
    return make_schedule_values("one_cycle", lr_min, lr_max, epochs, steps_per_epoch, max_at_epoch)


def peak_step(epochs: int, steps_per_epoch: int, max_at_epoch: float) -> int:
    """Index of the step where :func:`one_cycle` reaches ``lr_max`` (0-based)."""
    return round(max_at_epoch * steps_per_epoch) - 1
