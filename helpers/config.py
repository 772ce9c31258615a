"""Every hyperparameter of a run in one place (as in airbench / nanoGPT).

The defaults are the assignment's (24 epochs, peak at epoch 5, batch 512, no
annihilation) combined with the published recipe for this network (D. Page,
"How to train your ResNet": Nesterov momentum 0.9, weight decay 5e-4 on a mean
loss, logits x 0.125).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError

# CIFAR-10 class names in the canonical order of the original release.
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
# Per-channel statistics of the CIFAR-10 training split (original release).
# The JPEG copy in shared/data differs in the 3rd decimal; the difference is
# irrelevant to normalisation.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

AUGMENT_CHOICES = ("batched", "albumentations")
DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


@dataclass
class TrainConfig:
    """Settings of one training run; saved verbatim to ``config.json``."""

    data_dir: str = "data"
    download: bool = True           # fetch CIFAR-10 with torchvision when data_dir holds none
    out: str = ""                   # run folder; "" -> runs/<timestamp>
    epochs: int = 24
    max_at_epoch: float = 5.0       # LR peaks at the end of this epoch
    batch_size: int = 512
    lr_min: float | str = "auto"    # float, or "auto" = LR range test
    lr_max: float | str = "auto"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    logit_scale: float = 0.125      # Page's "Mul(0.125)" before the softmax
    width: float = 1.0              # channel multiplier; 1/8 and 1/4 are CPU proxies
    augment: str = "batched"
    seed: int = 0
    device: str = "auto"
    amp: bool = True                # mixed precision (CUDA only)
    compile: bool = False           # torch.compile (optional)
    num_workers: int = 2            # DataLoader workers (albumentations path)
    limit_train: int = 0            # >0: use only the first N training images (quick runs)
    limit_test: int = 0
    lr_find_iters: int = 120        # LR range test length (~5% of a 24-epoch run at batch 512)
    lr_find_start: float = 1e-4
    lr_find_end: float = 100.0      # far enough to see the loss blow up at batch 512
    lr_max_rule: str = "min10"      # see helpers.lr_finder for the rules and why
    lr_min_rule: str = "smith"
    report: bool = True             # render figures at the end
    progress: bool = True           # tqdm bars
    # Filled in by the run, recorded for provenance.
    resolved: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def validate(self) -> None:
        """Raise UserError naming the first bad setting and how to fix it."""
        if self.epochs <= 0:
            raise UserError(f"--epochs must be a positive integer, got {self.epochs}")
        if not 0 < self.max_at_epoch < self.epochs:
            raise UserError(
                f"--max-at-epoch must lie strictly between 0 and --epochs ({self.epochs}), "
                f"got {self.max_at_epoch}")
        if self.batch_size <= 0:
            raise UserError(f"--batch-size must be a positive integer, got {self.batch_size}")
        for name in ("lr_min", "lr_max"):
            v = getattr(self, name)
            if v != "auto" and (not isinstance(v, (int, float)) or v <= 0):
                raise UserError(f"--{name.replace('_', '-')} must be a positive number or 'auto', got {v!r}")
        if (isinstance(self.lr_min, (int, float)) and isinstance(self.lr_max, (int, float))
                and self.lr_min >= self.lr_max):
            raise UserError(
                f"--lr-min ({self.lr_min}) must be smaller than --lr-max ({self.lr_max})")
        if self.width <= 0:
            raise UserError(f"--width must be positive (1.0 is the full network), got {self.width}")
        if self.augment not in AUGMENT_CHOICES:
            raise UserError(f"--augment must be one of {', '.join(AUGMENT_CHOICES)}, got {self.augment!r}")
        if self.device not in DEVICE_CHOICES:
            raise UserError(
                f"unknown --device {self.device!r}; use one of {', '.join(DEVICE_CHOICES)}")
        from .lr_finder import LR_MAX_RULES, LR_MIN_RULES

        if self.lr_max_rule not in LR_MAX_RULES or self.lr_min_rule not in LR_MIN_RULES:
            raise UserError(f"--lr-max-rule must be one of {', '.join(LR_MAX_RULES)} and --lr-min-rule one of "
                            f"{', '.join(LR_MIN_RULES)}; got {self.lr_max_rule!r}, {self.lr_min_rule!r}")
        if not 0 < self.lr_find_start < self.lr_find_end:
            raise UserError(f"--lr-find-start ({self.lr_find_start}) must be positive and below "
                            f"--lr-find-end ({self.lr_find_end})")
        if self.lr_find_iters < 10:
            raise UserError(f"--lr-find-iters must be at least 10, got {self.lr_find_iters}")
