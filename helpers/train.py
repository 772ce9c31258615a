"""The training loop: one epoch, evaluation, and the device/precision choices.

Device-specific code is kept to three thin branches: the device argument,
``torch.autocast(device_type=...)`` and ``torch.amp.GradScaler`` (enabled only
for float16 on CUDA). The same code runs on the CPU in the tests.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError
from .schedule import step_within


def choose_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in ("cuda", "mps", "cpu"):
        raise UserError(f"unknown --device {name!r}; use auto, cuda, mps or cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA GPU is visible; use --device auto or cpu "
                        "(in Colab: Runtime > Change runtime type > GPU)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps asked for, but MPS is not available; use --device auto or cpu")
    return torch.device(name)


@dataclass
class Precision:
    """Mixed precision settings: bf16 where the GPU supports it, else fp16 with a loss scaler."""

    device_type: str
    dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler = field(init=False)

    def __post_init__(self) -> None:
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=self.dtype == torch.float16)

    @classmethod
    def for_device(cls, device: torch.device, amp: bool = True) -> "Precision":
        if amp and device.type == "cuda":
            return cls("cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        return cls(device.type, None)

    def autocast(self):
        return torch.autocast(device_type=self.device_type, dtype=self.dtype, enabled=self.dtype is not None)


class Diverged(UserError):
    """A non-finite loss: training stops instead of producing nonsense."""


def make_optimizer(model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4,
                   nesterov: bool = True) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=nesterov)


@dataclass
class EpochStats:
    loss: float
    acc: float
    lrs: list[float]
    momenta: list[float]


def train_epoch(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                optimizer: torch.optim.Optimizer, scheduler, precision: Precision, epoch: int,
                progress: Callable | None = None) -> EpochStats:
    """One pass over ``batches``; stops with :class:`Diverged` on a non-finite loss."""
    model.train()
    total_loss = torch.zeros((), dtype=torch.float64)
    correct, seen = torch.zeros((), dtype=torch.long), 0
    lrs, momenta = [], []
    bar = progress(batches) if progress else batches
    for step, (x, y) in enumerate(bar, 1):
        group = optimizer.param_groups[0]
        lrs.append(group["lr"])
        momenta.append(group.get("momentum", 0.0))
        with precision.autocast():
            out = model(x)
            loss = F.cross_entropy(out.float(), y)  # softmax lives here (log-softmax + NLL)
        loss_value = loss.item()  # one sync per step: the divergence check needs it anyway
        if not math.isfinite(loss_value):
            raise Diverged(f"training diverged at epoch {epoch}, step {step}: loss is {loss_value} at "
                           f"lr {group['lr']:.4g}; lower --lr-max (or use --lr-max auto) and start again")
        optimizer.zero_grad(set_to_none=True)
        precision.scaler.scale(loss).backward()
        precision.scaler.step(optimizer)
        precision.scaler.update()
        if scheduler is not None:
            step_within(scheduler)
        n = len(y)
        total_loss += loss_value * n
        correct += (out.argmax(1) == y).sum().cpu()
        seen += n
        if progress and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lrs[-1]:.3g}", refresh=False)
    return EpochStats(float(total_loss) / max(seen, 1), int(correct) / max(seen, 1), lrs, momenta)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             precision: Precision) -> tuple[float, float]:
    """Mean loss and accuracy, in eval mode (restored afterwards)."""
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in batches:
        with precision.autocast():
            out = model(x)
        total_loss += float(F.cross_entropy(out.float(), y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
        seen += len(y)
    model.train(was_training)
    return total_loss / max(seen, 1), correct / max(seen, 1)


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
            precision: Precision) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities and labels for every batch (CPU tensors)."""
    was_training = model.training
    model.eval()
    probs, labels = [], []
    for x, y in batches:
        with precision.autocast():
            out = model(x)
        probs.append(F.softmax(out.float(), dim=1).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(probs), torch.cat(labels)


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
