"""Atomic checkpoints: everything needed to continue a run exactly where it stopped."""
from __future__ import annotations

import json
import os
import random
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable

from .errors import Log, UserError
from .files import DamagedFile

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"
# The checkpoint before the newest: a newest one that arrives damaged (a synced Drive folder when
# a runtime dies mid-write) costs one epoch, not the run.
PREVIOUS = "checkpoint-prev.pt"
LOCK = ".lock"
# A writer renews its lock this often, from a background thread, however long an epoch takes.
LEASE_SECONDS = 30.0
# Another machine's lock not renewed for this long (four leases) belongs to a runtime that is gone
# (a Colab reconnect is a new machine): it is taken over.
STALE_SECONDS = 4 * LEASE_SECONDS
# What a run folder holds before its first epoch ends (the figures the notebook's cells draw first,
# the range test, the settings, the lock): a folder holding only these has nothing to resume.
PRE_TRAINING = frozenset({"augmentation.png", "triangle.png", "lr_find.json", "lr_find.png", "schedule.png",
                          "summary.txt", "config.json", LOCK})
# What every checkpoint holds (helpers.run writes them): a file without one of these is damaged.
STATE_KEYS = ("model", "optimizer", "scheduler", "scaler", "rng", "history", "epoch", "config")


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


class WriteFailed(UserError):
    """A file of the run folder could not be written (no space, no permission, a read-only
    folder): the file it would have replaced is left as it was, the temporary file removed."""


# Below this much free space, a failed write is put down to a full disk: torch.save reports one
# only as "[enforce fail at inline_container.cc] . unexpected pos".
LOW_SPACE_BYTES = 64 * 2**20


def _why(e: BaseException, folder: Path) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror[0].lower() + e.strerror[1:]
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if free is not None and free < LOW_SPACE_BYTES:
        return f"no space left on the device ({free / 2**20:.1f} MiB free)"
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _atomic_write(path: Path, write: Callable[[BinaryIO], None], previous: Path | None = None) -> None:
    """Write to a temporary file beside ``path``, flush it to disk, then rename: a kill or a
    power cut leaves the old file or the new one, never half a file. ``previous``: where the
    file being replaced is kept (renamed, so it too is whole). A write that fails (a full disk, no
    permission) removes the temporary file and raises :class:`WriteFailed`, ``path`` untouched."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a folder that turned read-only keeps it; the message names the folder
            pass
        if isinstance(e, (OSError, RuntimeError)):
            kept = f"{path.name} is left as it was" if path.exists() else f"no {path.name} was there before"
            raise WriteFailed(f"cannot write {path.name} in {path.parent}: {_why(e, path.parent)}; {kept}") from None
        raise
    if previous is not None and path.exists():
        os.replace(path, previous)
    os.replace(tmp, path)


def atomic_write_text(text: str, path: Path) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def writable_folder(folder: Path | str, option: str = "--out") -> Path:
    """``folder``, made with its parents and checked writable; one line naming it when it cannot
    be (a file in the way, no permission, a read-only file system)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder; choose another {option}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # a probe with no name of its own (or a fresh one where the OS lacks unnamed files): a user's
        # file can never be the one written over and deleted
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UserError(f"cannot write to {folder} ({e.strerror}); choose a writable {option}") from None
    return folder


def new_folder(folder: Path | str, option: str = "--out") -> Path:
    """A folder that holds nothing yet (made if need be), for outputs that are never written over
    (``lr-find``, a comparison); one line when it holds files."""
    folder = Path(folder)
    if folder.is_dir() and any(folder.iterdir()):
        raise UserError(f"output folder {folder} already exists and is not empty; choose another {option}")
    return writable_folder(folder, option)


def save_checkpoint(state: dict[str, Any], run_dir: Path) -> None:
    """``checkpoint.pt`` after an epoch; the one it replaces becomes ``checkpoint-prev.pt``."""
    run_dir = Path(run_dir)
    _atomic_write(run_dir / CHECKPOINT, lambda f: torch.save(state, f), previous=run_dir / PREVIOUS)


def has_checkpoint(run_dir: Path) -> bool:
    return (Path(run_dir) / CHECKPOINT).is_file() or (Path(run_dir) / PREVIOUS).is_file()


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """One checkpoint file; :class:`DamagedFile` in one line when it is missing, cut short or
    not a checkpoint of this package."""
    path = Path(path)
    if not path.is_file():
        raise DamagedFile(f"{path} is missing")
    try:
        # weights_only=False: the file holds RNG states (numpy, python) besides tensors;
        # it is the user's own checkpoint, written by this package.
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # a cut file fails inside torch's zip reader or the unpickler, in many ways
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DamagedFile(f"{path} is damaged ({first})") from None
    missing = [k for k in STATE_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise DamagedFile(f"{path} is damaged: not a checkpoint of this package (it lacks {', '.join(missing)})")
    return state


def load_latest(run_dir: Path, log: Log = print,
                map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The newest checkpoint of ``run_dir`` that loads; None when the folder holds none.

    A damaged newest one is set aside as ``checkpoint.pt.damaged`` (kept, never deleted), with one
    line naming it and the epoch the run falls back to; when neither loads, one line saying so."""
    run_dir = Path(run_dir)
    newest, previous = run_dir / CHECKPOINT, run_dir / PREVIOUS
    if not has_checkpoint(run_dir):
        return None
    try:
        return load(newest, map_location)
    except DamagedFile as e:
        first = e
    try:
        state = load(previous, map_location)
    except DamagedFile as e:
        raise DamagedFile(f"no checkpoint in {run_dir} can be read ({first}; {e}); start a new run folder "
                          "(another --out, or another OUT in the notebook)") from None
    if newest.exists():
        os.replace(newest, newest.with_name(newest.name + ".damaged"))
    os.replace(previous, newest)
    log(f"{first}: continuing from the checkpoint before it, after epoch {state['epoch']} "
        f"(the damaged file is kept as {CHECKPOINT}.damaged)")
    return state


def saved_epoch(run_dir: Path) -> int:
    """The last finished epoch whose checkpoint loads; 0 when there is none."""
    state = load_latest(run_dir, log=lambda _: None)
    return int(state["epoch"]) if state else 0


class RunLock:
    """One writer per run folder: ``.lock`` names the host and process that writes there.

    The holder renews it every ``lease`` seconds from a background thread while it holds the
    folder (:meth:`acquire` to :meth:`release`), so a live writer's lock is always fresh. A
    second writer is refused in one line while the holder lives: on the same host, while its
    process exists; on another host (a Colab reconnect is a new machine), until the lock has not
    been renewed for ``stale`` seconds: then it is taken over, saying so. The holder may acquire
    again (re-running cells).
    """

    def __init__(self, run_dir: Path, lease: float = LEASE_SECONDS, stale: float = STALE_SECONDS,
                 log: Log = print) -> None:
        self.path = Path(run_dir) / LOCK
        self.me = {"host": socket.gethostname(), "pid": os.getpid()}
        self.lease, self.stale, self.log = lease, stale, log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict[str, Any] | None:
        try:
            h = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return h if isinstance(h, dict) else None

    def _mine(self, h: dict[str, Any]) -> bool:
        return (h.get("host"), h.get("pid")) == (self.me["host"], self.me["pid"])

    def _age(self, h: dict[str, Any]) -> float:
        t = h.get("time", 0)
        return time.time() - (t if isinstance(t, (int, float)) else 0)

    def _alive(self, h: dict[str, Any]) -> bool:
        if h.get("host") != self.me["host"]:
            return self._age(h) < self.stale
        try:
            os.kill(int(h["pid"]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, KeyError, ValueError, TypeError, OverflowError):
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
            ago = int(self._age(h))
            wait = (f"if that runtime is gone, its lock expires {int(self.stale) - ago} s from now: try again then"
                    if h.get("host") != self.me["host"] else "wait for it to finish")
            raise UserError(f"another process writes to {self.path.parent} (pid {h.get('pid')} on "
                            f"{h.get('host')}, lock renewed {ago} s ago); {wait}, or choose another output "
                            f"folder")
        if h and h.get("host") != self.me["host"]:
            self.log(f"taking over {self.path}: it was held by pid {h.get('pid')} on {h.get('host')}, last "
                     f"renewed {int(self._age(h))} s ago (over {int(self.stale)} s: that runtime is gone)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)  # a dead holder's lock
        try:  # O_EXCL: of two writers starting at once, one wins
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            raise UserError(f"another process took {self.path} just now; choose another output folder") from None
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({**self.me, "time": time.time()}))
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name=f"run-lock-lease {self.path.parent}",
                                        daemon=True)
        self._thread.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.lease):
            try:
                self.touch()
            except (OSError, WriteFailed):  # a drive that hiccups or fills: the next renewal tries again
                pass

    def touch(self) -> None:
        if (h := self.holder()) and self._mine(h):
            atomic_write_text(json.dumps({**self.me, "time": time.time()}), self.path)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if (h := self.holder()) and self._mine(h):
            self.path.unlink(missing_ok=True)
