"""Every hyperparameter of a run in one place (as in airbench / nanoGPT).

The defaults are the assignment's (24 epochs, peak at epoch 5, batch 512, no
annihilation) combined with the published recipe for this network (D. Page,
"How to train your ResNet": Nesterov momentum 0.9, weight decay 5e-4 on a mean
loss, logits x 0.125).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .files import DamagedFile, read_json

# CIFAR-10 class names in the canonical order of the original release.
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
# Per-channel statistics of the CIFAR-10 training split (original release).
# The JPEG copy of docs/RESULTS.md ("The data") differs in the 3rd decimal; the difference is
# irrelevant to normalisation.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

AUGMENT_CHOICES = ("batched", "albumentations")
# The narrowest network: below this width the first layer (64 channels x width, rounded) has fewer
# than 4 channels and "trains" to chance (a width of 0.001 leaves 1 channel per layer).
MIN_LAYER_CHANNELS = 4
MIN_WIDTH = (MIN_LAYER_CHANNELS - 0.5) / 64  # 0.0547; helpers.model.channels rounds 64 x width
# The widest CPU proxy (1/8 and 1/4 are measured in docs/RESULTS.md): a wider network on a CPU is
# announced with a time estimate (helpers.run) and a warning in the notebook's banner.
CPU_PROXY_WIDTH = 0.25
# Test-time augmentation: none, or the mean of the logits of each image and its mirror image.
TTA_CHOICES = ("none", "flip")
# Where the pooling blocks pool: the assignment's conv -> pool -> BN -> ReLU, or D. Page's
# conv -> BN -> ReLU -> pool (helpers.model.conv_bn).
BLOCK_ORDERS = ("assignment", "page")
DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
# auto: bf16 on GPUs with it in hardware, fp16 + GradScaler on other GPUs, fp32 elsewhere.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# The rules that read the LR range test (helpers.lr_finder implements them).
LR_MAX_RULES = ("first_min_capped", "first_min", "min10", "steepest", "valley")
LR_MIN_RULES = ("smith", "max/8")
# one_cycle: the assignment's (ends at LRMIN); one_cycle_annealed: D. Page's (ends at 0);
# step: a constant LR (--lr-max) dropped 10x at 50% and 75% of the epochs.
SCHEDULES = ("one_cycle", "one_cycle_annealed", "step")


def check_lr_order(lr_min: float, lr_max: float, found_by_range_test: bool = False) -> None:
    """LRMIN below LRMAX: the one check, of two fixed numbers (``validate``) and of a fixed LRMIN
    against the LRMAX a range test found (``helpers.lr_finder.lrs_in_force``)."""
    if lr_min >= lr_max:
        found = ", from the range test" if found_by_range_test else ""
        raise UserError(f"--lr-min ({lr_min:.4g}) must be smaller than --lr-max ({lr_max:.4g}{found}); "
                        "lower --lr-min (LR_MIN in the notebook) or set it to 'auto'")


@dataclass(frozen=True)
class TrainConfig:
    """The settings of one training run, as asked for, frozen: what a run resolves (device,
    precision, the LRs a range test found, data, machine) is its own record
    (:class:`helpers.run.Run`), saved beside these in ``config.json`` under ``resolved``, where
    ``lr_min`` and ``lr_max`` are the LRs in force."""

    data_dir: str = "data"
    download: bool = True           # fetch CIFAR-10 with torchvision when data_dir holds none
    out: str = ""                   # run folder; "" -> runs/<timestamp>
    epochs: int = 24
    max_at_epoch: float = 5.0       # LR peaks at the end of this epoch
    batch_size: int = 512
    lr_min: float | str = "auto"    # float, or "auto" = LR range test
    lr_max: float | str = "auto"
    schedule: str = "one_cycle"     # see SCHEDULES
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    logit_scale: float = 0.125      # Page's "Mul(0.125)" before the softmax
    # Opt-in extras inside the assignment's rules (off by default; docs/RESULTS.md "Beyond 91%"):
    label_smoothing: float = 0.0    # torch's cross_entropy(label_smoothing=); the range test reads the same loss
    tta: str = "none"               # see TTA_CHOICES
    ema: float = 0.0                # >0: also evaluate an exponential moving average of the weights, this decay
    width: float = 1.0              # channel multiplier; 1/8 and 1/4 are CPU proxies
    block_order: str = "assignment"  # see BLOCK_ORDERS
    augment: str = "batched"
    seed: int = 0
    device: str = "auto"
    amp: bool = True                # False (--no-amp): fp32, whatever `precision` says
    precision: str = "auto"         # see PRECISIONS; helpers.train.Precision.for_device
    compile: bool = False           # torch.compile (optional)
    num_workers: int = 2            # DataLoader workers (albumentations path)
    limit_train: int = 0            # >0: a seeded random subset of N training images (quick runs)
    limit_test: int = 0             # >0: the same for the test images
    lr_find_iters: int = 120        # LR range test length (~5% of a 24-epoch run at batch 512)
    lr_find_start: float = 1e-4
    lr_find_end: float = 100.0      # far enough to see the loss blow up at batch 512
    lr_max_rule: str = "first_min_capped"  # see helpers.lr_finder for the rules and why
    lr_min_rule: str = "smith"
    report: bool = True             # render figures at the end
    progress: bool = True           # tqdm bars

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes: Any) -> "TrainConfig":
        """These settings with ``changes``."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def read(cls, path: Path | str) -> "TrainConfig":
        """A run's ``config.json`` (its LRs those in force); one line naming the file when it is
        missing or damaged."""
        return read_record(path)[0]


    def validate(self) -> None:
        """Raise UserError naming the first bad setting and how to fix it."""
        def need(ok: bool, option: str, what: str, value: Any) -> None:
            if not ok:
                raise UserError(f"--{option} must be {what}, got {value!r}")

        def finite(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        def integer(v: Any) -> bool:  # True is an int to Python, not a batch size
            return isinstance(v, int) and not isinstance(v, bool)

        need(integer(self.epochs) and self.epochs > 0, "epochs", "a positive integer", self.epochs)
        if not (finite(self.max_at_epoch) and 0 < self.max_at_epoch < self.epochs):
            raise UserError(f"--max-at-epoch must lie strictly between 0 and --epochs ({self.epochs}), "
                            f"got {self.max_at_epoch!r}")
        need(integer(self.batch_size) and self.batch_size > 0, "batch-size", "a positive integer",
             self.batch_size)
        for name in ("lr_min", "lr_max"):
            v = getattr(self, name)
            need(v == "auto" or (finite(v) and v > 0), name.replace("_", "-"), "a positive number or 'auto'", v)
        if finite(self.lr_min) and finite(self.lr_max):
            check_lr_order(self.lr_min, self.lr_max)
        need(finite(self.momentum) and 0 <= self.momentum < 1, "momentum", "a number in [0, 1)", self.momentum)
        if self.nesterov and self.momentum == 0:
            raise UserError("--momentum must be above 0 with Nesterov momentum (the default); "
                            f"got {self.momentum!r}")
        need(finite(self.weight_decay) and self.weight_decay >= 0, "weight-decay", "a number >= 0",
             self.weight_decay)
        need(finite(self.width) and self.width > 0, "width", "a positive number (1.0 is the full network)",
             self.width)
        if self.width < MIN_WIDTH:
            raise UserError(f"--width {self.width:g} leaves the first layer fewer than {MIN_LAYER_CHANNELS} channels "
                            f"(64 x width); use --width {MIN_WIDTH:.4f} or more (1/16 = 0.0625 is the narrowest "
                            "tested, 1/8 the CPU proxy)")
        need(finite(self.logit_scale) and self.logit_scale > 0, "logit-scale", "a positive number",
             self.logit_scale)
        for name in ("num_workers", "limit_train", "limit_test"):
            v = getattr(self, name)
            need(integer(v) and v >= 0, name.replace("_", "-"), "an integer >= 0", v)
        need(finite(self.label_smoothing) and 0 <= self.label_smoothing < 1, "label-smoothing",
             "a number in [0, 1)", self.label_smoothing)
        need(self.tta in TTA_CHOICES, "tta", f"one of {', '.join(TTA_CHOICES)}", self.tta)
        need(finite(self.ema) and 0 <= self.ema < 1, "ema", "a decay in (0, 1), or 0 for none", self.ema)
        need(self.schedule in SCHEDULES, "schedule", f"one of {', '.join(SCHEDULES)}", self.schedule)
        need(self.block_order in BLOCK_ORDERS, "block-order", f"one of {', '.join(BLOCK_ORDERS)}",
             self.block_order)
        need(self.augment in AUGMENT_CHOICES, "augment", f"one of {', '.join(AUGMENT_CHOICES)}", self.augment)
        need(self.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}", self.precision)
        if not self.amp and self.precision not in ("auto", "fp32"):
            raise UserError(f"--no-amp (fp32) contradicts --precision {self.precision}; drop one of them")
        if self.device not in DEVICE_CHOICES:
            raise UserError(f"unknown --device {self.device!r}; use one of {', '.join(DEVICE_CHOICES)}")
        need(self.lr_max_rule in LR_MAX_RULES, "lr-max-rule", f"one of {', '.join(LR_MAX_RULES)}",
             self.lr_max_rule)
        need(self.lr_min_rule in LR_MIN_RULES, "lr-min-rule", f"one of {', '.join(LR_MIN_RULES)}",
             self.lr_min_rule)
        if not (finite(self.lr_find_start) and finite(self.lr_find_end) and 0 < self.lr_find_start < self.lr_find_end):
            raise UserError(f"--lr-find-start ({self.lr_find_start}) must be a positive number below "
                            f"--lr-find-end ({self.lr_find_end})")
        need(integer(self.lr_find_iters) and self.lr_find_iters >= 10, "lr-find-iters",
             "an integer >= 10", self.lr_find_iters)


def read_record(path: Path | str) -> tuple[TrainConfig, dict[str, Any]]:
    """A run's ``config.json``: (its settings with the LRs in force, what the run resolved); one
    line naming the file when it is missing or damaged."""
    d = read_json(path, "the run's settings")
    cfg = TrainConfig.from_dict(d)
    try:
        cfg.validate()
    except UserError as e:
        raise DamagedFile(f"{path} (the run's settings) is damaged: {e}") from None
    return cfg, dict(d.get("resolved") or {})
