"""A training job in its folder. The notebook drives it step by step, one object from the
parameters cell to the report; the command line and sweeps open it with ``Run.new(cfg)`` or
``Run.resume(folder)`` and call ``fit()``, which is the one way into training for all three.

    run = Run.open(cfg)     # the run folder: new, reused (pre-training files only) or continued
    run.banner()            # what made the outputs below: the run's own record when it has one
    run.data                # CIFAR-10, loaded once; batch size and schedule checked against it
    run.augmentation()      # each figure method draws its file into the folder, returns the path
    run.summary()           # torchsummary's table of the run's network
    run.triangle()
    run.range_test()        # saved in the folder; read back when its settings match
    run.schedule()          # the schedule training will use: the same LRs, steps and peak
    run.fit()               # train (or continue) and render the report
    run.figure("gradcam")   # a file the run wrote
    run.results()           # the headline table

Every cell of the notebook calls one of these, so the notebook recomputes nothing the package
owns, and a cell shows the file the run keeps. Opening a folder that holds a checkpoint checks
the parameters against the run's ``config.json`` and refuses, in one line listing the
differences, to continue a run under other settings; a folder holding only the files the cells
before training write is reused; anything else is refused, never overwritten.
"""
from __future__ import annotations

import atexit
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt
from . import plots
from .config import TrainConfig
from .data import Cifar10
from .errors import Log, UserError
from .files import DamagedFile
from .lr_finder import RangeTestResult, lrs_in_force, settings_of
from .report import augmentation_samples, results_table, run_banner
from .schedule import make_schedule_values
from .train import choose_device


# Settings that do not change what a run computes: a continued run may differ in these.
NOT_COMPARED = {"out", "resolved", "data_dir", "download", "progress", "report", "num_workers", "compile"}


def requested_lrs(saved: TrainConfig) -> dict[str, Any]:
    """The LRs a run was asked for ('auto' or a number): recorded since the range test writes
    ``resolved.requested``; for older runs, 'auto' where the found value is the one in force."""
    found = saved.resolved.get("lr_find", {})
    out = dict(saved.resolved.get("requested", {}))
    for name in ("lr_min", "lr_max"):
        if name not in out:
            out[name] = "auto" if found and found.get(name) == getattr(saved, name) else getattr(saved, name)
    return out


def differences(saved: TrainConfig, now: TrainConfig) -> list[str]:
    """``name: saved -> now`` for every setting that changes what the run computes."""
    asked = requested_lrs(saved)
    out = []
    for name, value in now.to_dict().items():
        if name in NOT_COMPARED:
            continue
        before = asked[name] if name in asked else getattr(saved, name)
        if before != value:
            out.append(f"{name.upper()} {before!r} -> {value!r}")
    return out


def _taken(run_dir: Path) -> ckpt.RunLock | None:
    """The folder's lock, taken now (None when this process holds it already); a second writer
    stops here in one line."""
    lock = ckpt.RunLock(run_dir)
    return lock if lock.acquire() else None


class Run:
    """A training job in its folder, driven step by step (see the module doc)."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, state: dict[str, Any] | None, log: Log = print,
                 data: Cifar10 | None = None, lock: ckpt.RunLock | None = None) -> None:
        """``state``: the checkpoint the run continues (None: a new run); ``lock``: the folder's
        lock when this object took it, released by :meth:`close`."""
        self.cfg, self.run_dir, self.state, self.log = cfg, run_dir, state, log
        self._data, self._lock = data, lock
        self._range_test: RangeTestResult | None = None

    @property
    def resuming(self) -> bool:
        """Whether the run continues a checkpoint."""
        return self.state is not None

    @classmethod
    def new(cls, cfg: TrainConfig, data: Cifar10 | None = None, log: Log = print) -> "Run":
        """A new run into ``cfg.out`` (``train``; a sweep's job): settings, device and data are
        checked before anything is written, and a folder holding files is refused."""
        from .run import checked_data, prepare_run_dir

        cfg.validate()
        choose_device(cfg.device)
        data = checked_data(cfg, data, log)
        run_dir = prepare_run_dir(cfg.out)
        cfg.out = str(run_dir)
        return cls(cfg, run_dir, None, log, data, _taken(run_dir))

    @classmethod
    def resume(cls, run_dir: Path | str, data: Cifar10 | None = None, log: Log = print) -> "Run":
        """Continue the run in ``run_dir`` with its own settings (``train --resume``; a sweep's
        unfinished job). The lock is taken before the checkpoint is read."""
        from .run import checked_data

        run_dir = Path(run_dir)
        if not ckpt.has_checkpoint(run_dir):
            raise UserError(f"no checkpoint in {run_dir} ({ckpt.CHECKPOINT} missing); "
                            "point --resume at a run folder written by 'helpers train'")
        lock = _taken(run_dir)
        try:
            state = ckpt.load_latest(run_dir, log=log)  # a damaged newest checkpoint: the one before it
            cfg = TrainConfig.from_dict(state["config"])
            cfg.validate()
            choose_device(cfg.device)
            return cls(cfg, run_dir, state, log, checked_data(cfg, data, log), lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def close(self) -> None:
        """Release the folder's lock if this object took it (the notebook's is held until the
        kernel exits)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def open(cls, cfg: TrainConfig, log: Log = print) -> "Run":
        """The notebook's run: new, reused (pre-training files only) or continued (see the module doc)."""
        cfg.validate()
        run_dir = Path(cfg.out)
        lock = _taken(run_dir)
        if lock is not None:  # held until the kernel exits
            atexit.register(lock.release)
        state = ckpt.load_latest(run_dir, log=log)
        if state is not None:
            epoch, saved = int(state["epoch"]), TrainConfig.from_dict(state["config"])
            changed = differences(saved, cfg)
            if changed:
                raise UserError(f"{run_dir} holds a run (epoch {epoch} of {saved.epochs} done) made with other "
                                f"parameters: {'; '.join(changed)}. Set them back to continue it, or choose "
                                "another OUT for a new run")
            log(f"{run_dir} holds a checkpoint after epoch {epoch}: training continues that run")
            saved.data_dir, saved.progress = cfg.data_dir, cfg.progress  # where the data is now
            return cls(saved, run_dir, state, log)
        others = sorted(p.name for p in run_dir.iterdir() if p.name not in ckpt.PRE_TRAINING) if run_dir.is_dir() else []
        if others:
            raise UserError(f"{run_dir} holds files that are not this notebook's run ({', '.join(others[:5])}); "
                            "choose another OUT (nothing there is overwritten)")
        run_dir.mkdir(parents=True, exist_ok=True)
        log(f"run folder: {run_dir}. After a disconnect, run all cells again with the same OUT to continue "
            f"from the last finished epoch (or: python -m helpers train --resume {run_dir})")
        return cls(cfg, run_dir, None, log)

    # ---- what the cells show -----------------------------------------------------------------
    def banner(self) -> str:
        return run_banner(self.cfg, self.run_dir)

    @property
    def data(self) -> Cifar10:
        """CIFAR-10 as the run's settings ask for it, loaded once, checked against the batch size
        and the schedule before anything trains (one line, nothing written, when too small)."""
        if self._data is None:
            from .run import checked_data

            self._data = checked_data(self.cfg, log=self.log)
        return self._data

    def augmentation(self, n: int = 8) -> Path:
        sample = self.data.train.x[:n]
        return plots.plot_augmentation(sample, augmentation_samples(sample, 2, self.cfg.seed),
                                       self.run_dir / "augmentation.png")

    def summary(self) -> str:
        from .model import ResNet9, summary_text

        return summary_text(ResNet9(width=self.cfg.width, block_order=self.cfg.block_order))

    def triangle(self) -> Path:
        return plots.plot_triangle(self.run_dir / "triangle.png")

    def range_test(self) -> RangeTestResult:
        """The range test saved in the folder when it was run with these settings (or by the run
        being continued: its LRs are fixed already), else a new one."""
        if self._range_test is None:
            from .run import find_lrs, save_range_test

            path = self.run_dir / "lr_find.json"
            try:
                saved = RangeTestResult.load(path) if path.is_file() else None
            except DamagedFile as e:
                raise DamagedFile(f"{e}; delete it and run this cell again to run the range test anew") from None
            if saved is not None and (self.resuming or saved.settings == settings_of(self.cfg)):
                self.log(f"the range test saved in {path} (not run again)")
                self._range_test = saved
            else:
                if saved is not None:
                    self.log(f"the range test in {path} was run with other settings: running it again")
                result = find_lrs(self.cfg, self.data, log=self.log)
                save_range_test(result, self.run_dir)
                self._range_test = result
        return self._range_test

    def lrs(self) -> tuple[float, float]:
        """(LRMIN, LRMAX) as training will use them: the run's own when it has started, else the
        parameters', with 'auto' read off the range test exactly as the job reads it."""
        lr_min, lr_max = self.cfg.lr_min, self.cfg.lr_max
        if "auto" in (lr_min, lr_max):  # fixed numbers were checked by TrainConfig.validate
            lr_min, lr_max = lrs_in_force(lr_min, lr_max, self.range_test(), self.cfg.lr_min_rule)
        return lr_min, lr_max

    def schedule(self) -> Path:
        """The schedule training will follow (same kind, LRs, steps an epoch and peak), drawn."""
        lr_min, lr_max = self.lrs()
        steps = len(self.data.train) // self.cfg.batch_size
        values = make_schedule_values(self.cfg.schedule, lr_min, lr_max, self.cfg.epochs, steps,
                                      self.cfg.max_at_epoch)
        return plots.plot_schedule(values, steps, self.run_dir / "schedule.png", self.cfg.max_at_epoch)

    def fit(self, started: float | None = None) -> dict[str, Any]:
        """Train, or continue the run in the folder, and render its report; returns the history.
        'auto' LRs come from the range test shown above (:meth:`range_test`) when it ran, else
        the job runs it. ``started``: when the training call began (the command's start)."""
        from .run import train_run

        return train_run(self.run_dir, self.cfg, self.state, self.data, self.log, self._range_test, started)

    def figure(self, name: str) -> Path:
        path = self.run_dir / f"{name}.png"
        if not path.is_file():
            raise UserError(f"{path} does not exist yet: run the training cell first")
        return path

    def results(self) -> str:
        return results_table(self.run_dir)
