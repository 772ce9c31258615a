"""Golden numbers from D. Page's own code (cifar10-fast, commit f79e8b8: dawn.py, torch_backend.py,
core.py, dawn_utils.py), run unmodified outside this repository; only the numbers are committed
(tests/fixtures/page_golden.json, its fields say how each was made). The reference of his recipe
(benchmarks/reference.py) must reproduce them; so must our model and augmentation where the
recipes agree (the network's structure, crop, flip, cutout position)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "page_golden.json").read_text())
WIDTH = 1 / 16  # his channels in the fixture: 4, 8, 16, 32
# his normalisation constants (torch_backend.py: cifar10_mean, cifar10_std), in 0..255 units
PAGE_MEAN, PAGE_STD = (125.31, 122.95, 113.87), (62.99, 62.09, 66.70)


def seeded(model: torch.nn.Module, order: str) -> torch.nn.Module:
    """The fixture's weights: parameter i in his order = default_rng(100 + i).normal(0, 0.3)."""
    model = model.double()
    params = list(model.parameters())
    assert [list(p.shape) for p in params] == GOLDEN[f"param_shapes_{order}"]  # the same layers, same order
    with torch.no_grad():
        for i, p in enumerate(params):
            p.copy_(torch.from_numpy(np.random.default_rng(100 + i).normal(0.0, 0.3, tuple(p.shape))))
    return model


def inputs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(0.0, 1.0, (n, 3, 32, 32))), torch.from_numpy(rng.integers(0, 10, n))


def logits(model: torch.nn.Module, training: bool) -> np.ndarray:
    model.train(training)
    with torch.no_grad():
        return model(inputs(8, 7)[0]).numpy()


def raw_images() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
