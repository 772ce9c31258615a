"""Atomic checkpoints: everything needed to continue a run exactly where it stopped."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"


def rng_states() -> dict[str, Any]:
    """The host generators. Nothing in training draws from CUDA's generator (batches and
    augmentation come from CPU generators seeded per epoch), so no per-GPU state is kept:
    restoring one fails on a machine with fewer GPUs."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore :func:`rng_states`; a "cuda" entry (older checkpoints) is ignored."""
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write to a temporary file beside ``path``, flush it to disk, then rename: a kill or a
    power cut leaves the old file or the new one, never half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_save(obj: Any, path: Path) -> None:
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: Path) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    # weights_only=False: the file holds RNG states (numpy, python) besides tensors;
    # it is the user's own checkpoint, written by this package.
    return torch.load(path, map_location=map_location, weights_only=False)


def saved_epoch(path: Path) -> int:
    """The last finished epoch a checkpoint holds; 0 when there is none."""
    return int(load(path)["epoch"]) if Path(path).is_file() else 0
