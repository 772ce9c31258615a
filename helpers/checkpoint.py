"""Atomic checkpoints: everything needed to continue a run exactly where it stopped."""
from __future__ import annotations

import json
import os
import random
import socket
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable

from .errors import UserError

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"
LOCK = ".lock"
# A lock from another machine (two Colab sessions on one Drive folder) that nobody has touched
# for this long is taken to be left behind by a dead session. A writer touches it every epoch.
STALE_SECONDS = 15 * 60
# What a run folder holds before its first epoch ends (the figures the notebook's cells draw first,
# the range test, the settings, the lock): a folder holding only these has nothing to resume.
PRE_TRAINING = frozenset({"augmentation.png", "triangle.png", "lr_find.json", "lr_find.png", "schedule.png",
                          "summary.txt", "config.json", LOCK})


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


class RunLock:
    """One writer per run folder: ``.lock`` names the host and process that writes there.

    A second writer is refused in one line while the holder lives: on the same host, while its
    process exists; on another host (two notebooks on one Drive folder), until the lock has not
    been touched for ``STALE_SECONDS``. The holder may acquire again (re-running cells).
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self.me = {"host": socket.gethostname(), "pid": os.getpid()}

    def holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _mine(self, h: dict[str, Any]) -> bool:
        return (h.get("host"), h.get("pid")) == (self.me["host"], self.me["pid"])

    def _alive(self, h: dict[str, Any]) -> bool:
        if h.get("host") != self.me["host"]:
            return time.time() - h.get("time", 0) < STALE_SECONDS
        try:
            os.kill(int(h["pid"]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, KeyError, ValueError, TypeError):
            return True
        return True

    def acquire(self) -> bool:
        """Take the lock; True when this call took it (the caller releases it), False when this
        process held it already. UserError when another live writer holds it."""
        h = self.holder()
        if h and self._mine(h):
            self.touch()
            return False
        if h and self._alive(h):
            ago = int(time.time() - h.get("time", 0))
            raise UserError(f"another process writes to {self.path.parent} (pid {h.get('pid')} on "
                            f"{h.get('host')}, active {ago} s ago); wait for it to finish or choose another "
                            f"output folder (if nothing uses it any more, delete {self.path})")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)  # a dead holder's lock
        try:  # O_EXCL: of two writers starting at once, one wins
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            raise UserError(f"another process took {self.path} just now; choose another output folder") from None
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({**self.me, "time": time.time()}))
        return True

    def touch(self) -> None:
        if (h := self.holder()) and self._mine(h):
            atomic_write_text(json.dumps({**self.me, "time": time.time()}), self.path)

    def release(self) -> None:
        if (h := self.holder()) and self._mine(h):
            self.path.unlink(missing_ok=True)
