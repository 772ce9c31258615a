"""The assignment's ResNet-9 ("DavidNet", D. Page's cifar10-fast network).

Feature maps go 32 -> 16 -> 8 -> 4 -> 1: every 3x3 conv has padding 1, so only
the max-pools shrink the map. (A conv without padding would leave 14x14 in Layer2,
as a published submission to this assignment shows; here Layer2 is 16x16 before its pool.)

Where the softmax lives: the network returns *logits*. The softmax is applied
inside the loss (``F.cross_entropy`` = log-softmax + NLL, numerically stable)
and in prediction (:meth:`ResNet9.predict_proba`). Applying it in ``forward``
as well would be a double softmax that slows training.
"""
from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig

# One memory format for the model and every batch fed to it. channels_last: tensor cores
# want it on CUDA; on a 2-core CPU a quick check of a width-1/8 training step also favoured
# it (oneDNN's NHWC kernels).
MEMORY_FORMAT = torch.channels_last


def conv_bn(c_in: int, c_out: int, pool: bool = False, order: str = "assignment") -> nn.Sequential:
    """conv3x3 (s1, p1) [-> MaxPool2d(2)] -> BN -> ReLU, as the assignment orders them;
    ``order="page"``: conv -> BN -> ReLU [-> MaxPool2d(2)], as D. Page's dawn.py does (the
    same parameters; BN then normalises the 2x larger map before the pool)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)]
    if pool and order == "assignment":
        layers.append(nn.MaxPool2d(2))
    layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    if pool and order == "page":
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """x + ResBlock(x), with ResBlock = (conv-BN-ReLU) x 2."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.res = nn.Sequential(conv_bn(c, c), conv_bn(c, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res(x)


def channels(width: float) -> tuple[int, int, int, int]:
    """Channel counts (prep, layer1, layer2, layer3) for a width multiplier."""
    return tuple(max(1, round(c * width)) for c in (64, 128, 256, 512))  # type: ignore[return-value]


class ResNet9(nn.Module):
    """PrepLayer -> Layer1(+res) -> Layer2 -> Layer3(+res) -> MaxPool(4) -> FC.

    ``width`` scales every channel count (1.0 = the assignment's 6,573,120
    parameters); narrow copies are CPU proxies of the same network.
    ``block_order`` places the pools of the pooling blocks: "assignment" (conv -> pool -> BN ->
    ReLU, the default) or "page" (conv -> BN -> ReLU -> pool, D. Page's order).
    ``logit_scale`` multiplies the logits (0.125 in the published recipe); it
    is a constant, not a parameter, so the parameter count is unchanged.
    """

    def __init__(self, num_classes: int = 10, width: float = 1.0, logit_scale: float = 0.125,
                 block_order: str = "assignment") -> None:
        super().__init__()
        c0, c1, c2, c3 = channels(width)
        self.width = width
        self.logit_scale = logit_scale
        self.prep = conv_bn(3, c0)
        self.layer1 = nn.Sequential(conv_bn(c0, c1, pool=True, order=block_order), Residual(c1))
        self.layer2 = conv_bn(c1, c2, pool=True, order=block_order)
        self.layer3 = nn.Sequential(conv_bn(c2, c3, pool=True, order=block_order), Residual(c3))
        self.pool = nn.MaxPool2d(4)
        self.fc = nn.Linear(c3, num_classes, bias=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer3(self.layer2(self.layer1(self.prep(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.fc(x) * self.logit_scale

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities: the assignment's final softmax."""
        return F.softmax(self(x).float(), dim=1)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(cfg: TrainConfig, device: torch.device) -> ResNet9:
    """The run's network with its seeded initial weights, on ``device`` in MEMORY_FORMAT."""
    seed_everything(cfg.seed)
    model = ResNet9(width=cfg.width, logit_scale=cfg.logit_scale, block_order=cfg.block_order).to(device)
    return model.to(memory_format=MEMORY_FORMAT)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def summary_text(model: nn.Module, input_size: tuple[int, int, int] = (3, 32, 32)) -> str:
    """torchsummary's table as a string (torchsummary only prints, so capture it).

    It summarises a CPU copy in eval mode: torchsummary makes its random input on "cpu" or
    "cuda" only (a model on Apple's MPS would meet CPU input), and its forward pass must not
    move the model's BatchNorm running statistics.
    """
    import contextlib
    import copy
    import io

    from torchsummary import summary

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        summary(copy.deepcopy(model).cpu().eval(), input_size, device="cpu")
    return buf.getvalue()
