"""The training loop: one epoch, evaluation, and the device/precision choices.

Device-specific code is kept to thin branches, each a line or two: the device argument,
the autocast dtype (:func:`auto_precision`), ``torch.amp.GradScaler`` (enabled only for
float16), cuDNN's autotuner and the clock's synchronize (:func:`configure_backend`,
:func:`synchronize`). The same code runs on the CPU in the tests, with what torch reports
about the GPU monkeypatched where a branch depends on it.
"""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
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


def bf16_in_hardware() -> bool:
    """Whether the current GPU computes bf16 in hardware: AMD's (ROCm), and NVIDIA's from compute
    capability 8 (A100, L4, H100).

    The test ``torch.cuda.is_bf16_supported(including_emulation=False)`` makes, written out:
    older torch releases lack the keyword, and its default (emulation included) answers yes on a
    T4 (7.5), where cuDNN has no bf16 convolutions (every conv would take a slow path, and
    torch.compile refuses bf16 there).
    """
    return bool(torch.version.hip) or torch.cuda.get_device_properties(torch.cuda.current_device()).major >= 8


def cpu_bf16_in_hardware() -> bool:
    """Whether this CPU computes bf16 in hardware: x86's AVX-512 BF16 or AMX, the CPUID flags as
    cpuinfo reads them for torch (both are false on an AVX2-only CPU, whose CPUID lacks them).

    Not oneDNN's own check (``torch.ops.mkldnn._is_mkldnn_bf16_supported``): it answers yes for any
    CPU with AVX-512 BW/VL/DQ (Skylake-X too), where bf16 is converted in software, not computed.
    ARM CPUs answer no here: bf16 there is unmeasured, so they keep fp32.
    """
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def auto_precision(device: torch.device) -> str:
    """``--precision auto``, one rule on every device: bf16 where the device computes it in hardware
    (a GPU from compute capability 8, or AMD's; a CPU with AVX-512 BF16 or AMX), fp16 with a loss
    scaler on any other CUDA GPU (a T4), fp32 elsewhere (MPS, other CPUs)."""
    if device.type == "cuda":
        return "bf16" if bf16_in_hardware() else "fp16"
    return "bf16" if device.type == "cpu" and cpu_bf16_in_hardware() else "fp32"


DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Precision:
    """Mixed precision settings: the autocast dtype (None: fp32) and its loss scaler (fp16 only)."""

    device_type: str
    dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler = field(init=False)

    def __post_init__(self) -> None:
        self.scaler = self.new_scaler()

    def new_scaler(self) -> torch.amp.GradScaler:
        """A loss scaler for this precision, at its initial scale: on for fp16 only."""
        return torch.amp.GradScaler(self.device_type, enabled=self.dtype == torch.float16)

    @classmethod
    def for_device(cls, device: torch.device, amp: bool = True, choice: str = "auto") -> "Precision":
        """``choice`` (``--precision``): "auto" = :func:`auto_precision`; "fp32", "bf16" or "fp16" =
        that, on any device (fp16 on an H100 runs a T4's numerics; on a CPU it is emulated, slowly).
        ``amp=False`` (``--no-amp``) is fp32."""
        choice = "fp32" if not amp else auto_precision(device) if choice == "auto" else choice
        if choice == "bf16" and device.type == "cuda" and not bf16_in_hardware():
            raise UserError("--precision bf16 needs a GPU that computes bf16 in hardware (compute capability 8.0 "
                            "or more: A100, L4, H100); this one emulates it slowly: use --precision fp16 or auto")
        return cls(device.type, DTYPES[choice])

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16 + GradScaler"}[self.dtype]

    def autocast(self):
        return torch.autocast(device_type=self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def load_scaler_state(self, state: dict) -> None:
        """Restore a checkpoint's loss scale where there is one to restore.

        A checkpoint written without a scaler (CPU, bf16) holds an empty state, which an
        enabled fp16 scaler refuses to load; it then starts from its initial scale and
        adapts within a few steps. A disabled scaler ignores any state.
        """
        if self.scaler.is_enabled() and state:
            self.scaler.load_state_dict(state)


def device_name(device: torch.device) -> str:
    """What ran a run, for its records and figure labels: the GPU's name, or the CPU's core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return f"CPU ({os.cpu_count()} cores)"
    return device.type


def out_of_memory(device: torch.device, batch_size: int, width: float, kept: str) -> UserError:
    """``torch.OutOfMemoryError`` as one line: the device, its memory, the settings that set the
    memory a step needs, and the options that lower them."""
    total = ""
    if device.type == "cuda":
        total = f" ({torch.cuda.get_device_properties(device).total_memory / 2**30:.1f} GiB)"
        torch.cuda.empty_cache()
    return UserError(f"out of GPU memory on {device_name(device)}{total} at batch size {batch_size}, width "
                     f"{width:g}: lower --batch-size or --width (BATCH_SIZE or WIDTH in the notebook), or free "
                     f"the GPU of other processes; {kept}")


# Timed steps behind a CPU run's time estimate (after one untimed step that warms the kernels).
ESTIMATE_STEPS = 3


def estimate_epoch_seconds(model: nn.Module, batch_size: int, steps_per_epoch: int, precision: "Precision",
                           steps: int = ESTIMATE_STEPS) -> float:
    """Seconds an epoch of training takes here, from ``steps`` timed steps (after one untimed) of a
    copy of ``model`` on random images: the run's model, optimizer and random generators are
    left untouched, so the run repeats bit for bit with or without the estimate."""
    import copy

    twin = copy.deepcopy(model).train()
    device = next(twin.parameters()).device
    opt = torch.optim.SGD(twin.parameters(), lr=1e-3, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=g).to(device)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        with precision.autocast():
            loss = classification_loss(twin(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:]) * steps_per_epoch


def configure_backend(device: torch.device) -> None:
    """cuDNN picks the fastest convolution algorithms for our fixed shapes (CUDA only)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a clock read afterwards measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Diverged(UserError):
    """A non-finite loss: training stops instead of producing nonsense."""


def make_optimizer(model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4,
                   nesterov: bool = True) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=nesterov)


def classification_loss(out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of the logits (the softmax lives here: log-softmax + NLL), with torch's
    own label smoothing: (1 - s) x CE + s x the mean over classes of -log p."""
    return F.cross_entropy(out.float(), y, label_smoothing=label_smoothing)


def make_ema(model: nn.Module, decay: float):
    """An exponential moving average of the weights, torch's ``AveragedModel``.

    ``use_buffers=True``: BatchNorm's running statistics are averaged with the weights (as D.
    Page's and airbench's EMAs average the whole state), so the average is ready to evaluate at
    any step; recomputing them instead (``swa_utils.update_bn``) costs a pass over the training
    set at every evaluation.
    """
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


@dataclass
class EpochStats:
    loss: float
    acc: float
    lrs: list[float]
    momenta: list[float]


# Steps between two host reads of the divergence flag (and the progress bar's loss). Each
# read waits for the GPU; reading on every step would stall its queue 97 times an epoch.
CHECK_EVERY = 20


def train_epoch(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                optimizer: torch.optim.Optimizer, scheduler, precision: Precision, epoch: int,
                progress: Callable | None = None, label_smoothing: float = 0.0, ema=None) -> EpochStats:
    """One pass over ``batches``; stops with :class:`Diverged` on a non-finite loss.

    Loss and accuracy add up on the device. The first non-finite loss's step and value are
    recorded there too, and read every ``CHECK_EVERY`` steps and at the end: the message
    names the exact step and LR, a few steps later than a per-step check would stop.
    ``ema``: a :func:`make_ema` average, updated after every optimizer step.
    """
    model.train()
    lrs, momenta, seen = [], [], 0
    total_loss = correct = bad_step = bad_loss = None
    bar = progress(batches) if progress else batches
    step = 0
    for step, (x, y) in enumerate(bar, 1):
        group = optimizer.param_groups[0]
        lrs.append(group["lr"])
        momenta.append(group.get("momentum", 0.0))
        with precision.autocast():
            out = model(x)
            loss = classification_loss(out, y, label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        precision.scaler.scale(loss).backward()
        precision.scaler.step(optimizer)
        precision.scaler.update()
        if ema is not None:
            ema.update_parameters(model)
        if scheduler is not None:
            step_within(scheduler)
        loss = loss.detach()
        if total_loss is None:  # float32: MPS has no float64
            total_loss = torch.zeros((), device=loss.device)
            correct = torch.zeros((), dtype=torch.long, device=loss.device)
            bad_step = torch.zeros((), dtype=torch.long, device=loss.device)
            bad_loss = torch.zeros((), device=loss.device)
        total_loss += loss * len(y)
        correct += (out.argmax(1) == y).sum()
        seen += len(y)
        first_bad = (bad_step == 0) & ~torch.isfinite(loss)
        bad_step = torch.where(first_bad, step, bad_step)
        bad_loss = torch.where(first_bad, loss, bad_loss)
        if step % CHECK_EVERY == 0:
            _raise_if_diverged(bad_step, bad_loss, lrs, epoch)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{float(loss):.3f}", lr=f"{lrs[-1]:.3g}", refresh=False)
    if step:
        _raise_if_diverged(bad_step, bad_loss, lrs, epoch)
    if not seen:
        return EpochStats(0.0, 0.0, lrs, momenta)
    return EpochStats(float(total_loss) / seen, int(correct) / seen, lrs, momenta)


def _raise_if_diverged(bad_step: torch.Tensor, bad_loss: torch.Tensor, lrs: list[float], epoch: int) -> None:
    step = int(bad_step)  # the one host sync
    if step:
        raise Diverged(f"training diverged at epoch {epoch}, step {step}: loss is {float(bad_loss)} at "
                       f"lr {lrs[step - 1]:.4g}; lower --lr-max (or use --lr-max auto) and start again")


def logits(model: nn.Module, x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """The model's logits; ``tta="flip"``: the mean of those of ``x`` and of its mirror image."""
    out = model(x).float()
    return (out + model(x.flip(3)).float()) / 2 if tta == "flip" else out


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             precision: Precision, tta: str = "none") -> tuple[float, float]:
    """Mean loss and accuracy, in eval mode (restored afterwards), with test-time ``tta``."""
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in batches:
        with precision.autocast():
            out = logits(model, x, tta)
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


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n: int = 10) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    return np.bincount(true * n + pred, minlength=n * n).reshape(n, n)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """The fraction of each true class predicted right (0 for a class with no images)."""
    return confusion.diagonal() / confusion.sum(1).clip(min=1)


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
