"""A training job in its folder: one :class:`Run` owns the folder from opening to closing. The
notebook drives it step by step, one object from the parameters cell to the report; the command
line and sweeps open it and call ``fit()``, the one way into training for all three.

    run = Run.open(cfg)     # the folder: a new run, one started again, or one continued (below)
    run.banner()            # what made the outputs below: the run's own record when it has one
    run.data                # CIFAR-10, loaded once; batch size and schedule checked against it
    run.augmentation()      # each figure method draws its file into the folder, returns the path
    run.summary()           # torchsummary's table of the run's network
    run.triangle()
    run.range_test()        # saved in the folder; read back when its settings match
    run.lrs()               # (LRMIN, LRMAX) in force: the one place 'auto' is resolved
    run.schedule()          # the schedule training will use: the same LRs, steps and peak
    run.fit()               # train (or continue) and render the report
    run.figure("gradcam")   # a file the run wrote
    run.results()           # the headline table
    run.close()             # the folder's lock released (also on leaving a ``with`` block)

**One rule for a folder that exists**, for ``train --out``, the notebook and sweeps: one holding a
checkpoint is continued when the settings match (else refused in one line listing the
differences); one holding only what a run writes before its first epoch ends is started again
(a range test saved there with the same settings is reused); any other is refused, never
overwritten. ``Run.resume(folder)`` (``train --resume``) continues a checkpoint with its own settings.

The lock is taken once, when the run is opened, and released once. The settings
(:class:`helpers.config.TrainConfig`) are frozen; what the run resolves (device, precision, the
LRs a range test found, data, machine) is its ``record``, saved with them in ``config.json``:

    config.json      the settings (``lr_min``/``lr_max``: the LRs in force) and ``resolved``, the record
    summary.txt      the torchsummary table
    history.json     per-epoch metrics and the per-step LR / momentum
    checkpoint.pt    the last completed epoch (model, optimizer, scheduler, scaler, RNG states,
                     history, settings): ``--resume`` continues from it; checkpoint-prev.pt the one before
    lr_find.json/png the LR range test, when LRs are 'auto'
    *.png            the figures (see helpers.report)
"""
from __future__ import annotations

import atexit
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from . import checkpoint as ckpt
from . import plots
from .config import CPU_PROXY_WIDTH, TrainConfig
from .data import Cifar10, load_data
from .errors import Interrupted, Log, UserError
from .files import DamagedFile, read_json
from .loaders import EvalLoader, check_batch_size, make_train_loader
from .loop import Callback, EpochEnd, Parts, headline_key, new_history, progress_bars, train_loop
from .lr_finder import RangeTestResult, find_lrs, lrs_in_force, settings_of
from .model import ResNet9, build_model, count_parameters, summary_text
from .provenance import machine
from .report import augmentation_samples, render_report, results_table, run_banner, save_range_test
from .schedule import check_schedule, make_schedule, make_schedule_values
from .train import (ESTIMATE_STEPS, Diverged, Precision, choose_device, configure_backend, cpu_bf16_in_hardware,
                    device_name, estimate_epoch_seconds, make_ema, make_optimizer, out_of_memory)

# Settings that do not change what a run computes: a continued run takes these from the caller.
NOT_COMPARED = ("out", "data_dir", "download", "progress", "report", "num_workers", "compile")


def requested_lrs(saved: dict[str, Any]) -> dict[str, Any]:
    """The LRs a run was asked for ('auto' or a number), from its ``config.json`` or checkpoint
    settings: recorded in ``resolved.requested``; for older runs, 'auto' where the found value is
    the one in force."""
    resolved = saved.get("resolved") or {}
    found = resolved.get("lr_find")  # None in a record without a range test
    out = dict(resolved.get("requested", {}))
    for name in ("lr_min", "lr_max"):
        if name not in out:
            out[name] = "auto" if found and found.get(name) == saved.get(name) else saved.get(name)
    return out


def settings_asked(saved: dict[str, Any]) -> TrainConfig:
    """A run's settings as they were asked for (its LRs 'auto' where a range test found them)."""
    return TrainConfig.from_dict({**saved, **requested_lrs(saved)})


def differences(saved: dict[str, Any], now: TrainConfig) -> list[str]:
    """``NAME before -> now`` for every setting that changes what the run computes."""
    before = settings_asked(saved)
    return [f"{name.upper()} {getattr(before, name)!r} -> {value!r}" for name, value in now.to_dict().items()
            if name not in NOT_COMPARED and getattr(before, name) != value]


def checked_data(cfg: TrainConfig, data: Cifar10 | None = None, log: Log = print) -> Cifar10:
    """CIFAR-10 for ``cfg`` (``data`` when already loaded), checked against the batch size and the
    schedule: one line, before anything trains or is written, when it is too small for them."""
    data = data if data is not None else load_data(cfg, log=log)
    check_batch_size(cfg.batch_size, len(data.train))
    check_schedule(cfg.epochs, len(data.train) // cfg.batch_size, cfg.max_at_epoch)
    return data


def write_json(obj: Any, path: Path) -> None:
    ckpt.atomic_write_text(json.dumps(obj, indent=2), path)


def device_and_precision(cfg: TrainConfig) -> tuple[torch.device, Precision]:
    """The device and precision a run of ``cfg`` uses here; one line when this machine lacks them."""
    device = choose_device(cfg.device)
    return device, Precision.for_device(device, cfg.amp, cfg.precision)


def _taken(run_dir: Path) -> ckpt.RunLock | None:
    """The folder's lock, taken now (None when this process holds it already); a second writer
    stops here in one line."""
    lock = ckpt.RunLock(run_dir)
    return lock if lock.acquire() else None


@contextlib.contextmanager
def _released_on_error(lock: ckpt.RunLock | None) -> Iterator[ckpt.RunLock | None]:
    """``lock`` for opening a run: released again when opening fails, kept by the run otherwise."""
    try:
        yield lock
    except BaseException:
        if lock is not None:
            lock.release()
        raise


class Run:
    """A training job in its folder, from opening to closing (see the module doc).

    ``cfg``: the settings as asked for (frozen); ``record``: what the run resolved;
    ``callbacks``: observers every run's training loop calls after the run's own
    (:class:`helpers.loop.Callback`; tests interrupt a run through them).
    """

    callbacks: tuple[Callback, ...] = ()

    def __init__(self, cfg: TrainConfig, run_dir: Path, state: dict[str, Any] | None, log: Log = print,
                 data: Cifar10 | None = None, lock: ckpt.RunLock | None = None,
                 machine: tuple[torch.device, Precision] | None = None) -> None:
        """Use :meth:`open` or :meth:`resume`. ``state``: the checkpoint the run continues (None: a
        new run); ``lock``: the folder's lock when the opener took it (None: this process held it
        already), released by :meth:`close`; ``machine``: (device, precision) when chosen already."""
        self.cfg, self.run_dir, self.state, self.log = cfg, run_dir, state, log
        self.device, self.precision = machine or device_and_precision(cfg)
        self.record: dict[str, Any] = dict(state["config"].get("resolved") or {}) if state else {}
        self._data = data  # checked by the opener against these settings
        self._lock = lock
        if lock is not None:  # a kernel that exits with the run open releases it too
            atexit.register(lock.release)
        self._range_test: RangeTestResult | None = None

    # ---- opening and closing -----------------------------------------------------------------
    @classmethod
    def open(cls, cfg: TrainConfig, data: Cifar10 | None = None, log: Log = print) -> "Run":
        """The run in ``cfg.out`` (default: a new ``runs/resnet9-<time>``) by the one rule of the
        module doc. Settings, device and ``data`` (when given) are checked before anything is
        written; the lock is taken before the folder is read."""
        cfg.validate()
        run_dir = Path(cfg.out or Path("runs") / datetime.now().strftime("resnet9-%Y%m%d-%H%M%S"))
        cfg = cfg.replace(out=str(run_dir))
        machine = device_and_precision(cfg)
        if data is not None:
            checked_data(cfg, data, log)
        with _released_on_error(_taken(ckpt.writable_folder(run_dir))) as lock:
            return cls._opened(cfg, run_dir, data, log, lock, machine)

    @classmethod
    def _opened(cls, cfg: TrainConfig, run_dir: Path, data: Cifar10 | None, log: Log, lock: ckpt.RunLock | None,
                machine: tuple[torch.device, Precision]) -> "Run":
        state = ckpt.load_latest(run_dir, log=log)  # a damaged newest checkpoint: the one before it
        if state is not None:
            epoch, saved = int(state["epoch"]), state["config"]
            changed = differences(saved, cfg)
            if changed:
                raise UserError(f"{run_dir} holds a run (epoch {epoch} of {saved['epochs']} done) made with other "
                                f"settings: {'; '.join(changed)}. Set them back to continue it (or continue it as it "
                                f"was with --resume {run_dir}), or choose another run folder (--out; OUT in the "
                                "notebook)")
            log(f"{run_dir} holds a checkpoint after epoch {epoch}: training continues that run")
            mine = {name: getattr(cfg, name) for name in NOT_COMPARED}
            return cls(settings_asked(saved).replace(**mine), run_dir, state, log, data, lock, machine)
        others = sorted(p.name for p in run_dir.iterdir() if p.name not in ckpt.PRE_TRAINING)
        if others:
            raise UserError(f"{run_dir} holds files that are not a run's ({', '.join(others[:5])}); choose another "
                            "run folder (--out; OUT in the notebook): nothing there is overwritten")
        log(f"run folder: {run_dir}. After a disconnect, run the same again (the notebook: all cells, the same "
            f"OUT) to continue from the last finished epoch (or: python -m helpers train --resume {run_dir})")
        return cls(cfg, run_dir, None, log, data, lock, machine)

    @classmethod
    def resume(cls, run_dir: Path | str, data: Cifar10 | None = None, log: Log = print) -> "Run":
        """Continue the run in ``run_dir`` with its own settings (``train --resume``). The lock is
        taken before the checkpoint is read."""
        run_dir = Path(run_dir)
        if not ckpt.has_checkpoint(run_dir):
            raise UserError(f"no checkpoint in {run_dir} ({ckpt.CHECKPOINT} missing); "
                            "point --resume at a run folder written by 'helpers train'")
        with _released_on_error(_taken(run_dir)) as lock:
            state = ckpt.load_latest(run_dir, log=log)
            cfg = settings_asked(state["config"]).replace(out=str(run_dir))
            cfg.validate()
            return cls(cfg, run_dir, state, log, checked_data(cfg, data, log), lock)

    def close(self) -> None:
        """Release the folder's lock (the notebook's is held until the kernel exits)."""
        if self._lock is not None:
            atexit.unregister(self._lock.release)
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def resuming(self) -> bool:
        """Whether the run continues a checkpoint."""
        return self.state is not None

    # ---- what the cells show -----------------------------------------------------------------
    def banner(self) -> str:
        return run_banner(self.cfg, self.run_dir)

    @property
    def data(self) -> Cifar10:
        """CIFAR-10 as the run's settings ask for it, loaded once, checked against the batch size
        and the schedule before anything trains (one line, nothing written, when too small)."""
        if self._data is None:
            self._data = checked_data(self.cfg, log=self.log)
        return self._data

    def augmentation(self, n: int = 8) -> Path:
        sample = self.data.train.x[:n]
        return plots.plot_augmentation(sample, augmentation_samples(sample, 2, self.cfg.seed),
                                       self.run_dir / "augmentation.png")

    def summary(self) -> str:
        return summary_text(ResNet9(width=self.cfg.width, block_order=self.cfg.block_order))

    def triangle(self) -> Path:
        return plots.plot_triangle(self.run_dir / "triangle.png")

    def range_test(self) -> RangeTestResult:
        """The range test saved in the folder when it was run with these settings (or by the run
        being continued: its LRs are fixed already), else a new one, saved there."""
        if self._range_test is None:
            path = self.run_dir / "lr_find.json"
            try:
                saved = RangeTestResult.load(path) if path.is_file() else None
            except DamagedFile as e:
                raise DamagedFile(f"{e}; delete it and run again (in the notebook: this cell) to run the range test anew") from None
            if saved is not None and (self.resuming or saved.settings == settings_of(self.cfg)):
                self.log(f"the range test saved in {path} (not run again)")
                self._range_test = saved
            else:
                if saved is not None:
                    self.log(f"the range test in {path} was run with other settings: running it again")
                result = find_lrs(self.cfg, self.data, self.log, self.device, self.precision)
                save_range_test(result, self.run_dir)
                self._range_test = result
        return self._range_test

    def lrs(self) -> tuple[float, float]:
        """(LRMIN, LRMAX) in force, the one place they are resolved: a continued run's own, else
        the settings', with 'auto' read off the range test (:meth:`range_test`)."""
        if self.state is not None:
            return self.state["config"]["lr_min"], self.state["config"]["lr_max"]
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

    def figure(self, name: str) -> Path:
        path = self.run_dir / f"{name}.png"
        if not path.is_file():
            raise UserError(f"{path} does not exist yet: run the training cell first")
        return path

    def results(self) -> str:
        return results_table(self.run_dir)

    # ---- training ----------------------------------------------------------------------------
    def settings_in_force(self) -> dict[str, Any]:
        """What ``config.json`` and each checkpoint hold: the settings with the LRs in force, and
        the record under ``resolved``."""
        lr_min, lr_max = self.lrs()
        return {**self.cfg.replace(lr_min=lr_min, lr_max=lr_max).to_dict(), "resolved": self.record}

    def fit(self, started: float | None = None, callbacks: tuple[Callback, ...] = ()) -> dict[str, Any]:
        """Train, or continue the run in the folder, and render its report; returns the history.
        A finished run is not trained again. ``started``: when the training call began (the
        command's start); ``callbacks``: observers of the loop, after the run's own."""
        started = time.perf_counter() if started is None else started
        done = self._finished()
        if done is not None:
            self.log(f"{self.run_dir} holds a finished run ({len(done['epochs'])} epochs): nothing left to train")
            return done
        configure_backend(self.device)
        try:
            return self._fit(started, (*type(self).callbacks, *callbacks))
        except torch.cuda.OutOfMemoryError:
            raise out_of_memory(self.device, self.cfg.batch_size, self.cfg.width, self._kept(
                "stays in {dir} (a run continues only with its own settings: lower them in a new run folder)",
                "no epoch had finished, so no checkpoint was written")) from None
        except KeyboardInterrupt:
            saved = ckpt.saved_epoch(self.run_dir)
            raise Interrupted(f"interrupted; epoch {saved} is saved: continue with --resume {self.run_dir}" if saved
                              else f"interrupted before the first epoch finished, so there is nothing to resume in "
                              f"{self.run_dir}; run the same again to start it anew") from None
        except Diverged as e:
            raise Diverged(f"{e}; " + self._kept("stays in {dir}", "no epoch had finished, so no checkpoint was "
                                                 "written")) from None

    def _finished(self) -> dict[str, Any] | None:
        """The history of a run whose every epoch is trained and whose end was written, else None."""
        if self.state is None or self.state["epoch"] < self.cfg.epochs:
            return None
        try:
            history = read_json(self.run_dir / "history.json", "the run's history")
        except DamagedFile:  # cut short: the run's end is written again from the checkpoint
            return None
        return history if "final_test_acc" in history else None

    def _kept(self, saved: str, none: str) -> str:
        epoch = ckpt.saved_epoch(self.run_dir)
        return f"the last good checkpoint (epoch {epoch}) " + saved.format(dir=self.run_dir) if epoch else none

    def _fit(self, started: float, callbacks: tuple[Callback, ...]) -> dict[str, Any]:
        cfg, device, precision, data = self.cfg, self.device, self.precision, self.data
        # a CPU run repeats bit for bit for one seed on one machine: CPU, kernels, threads, versions
        self.record.update(device=str(device), device_name=device_name(device), precision=precision.name,
                           data_source=data.source, train_images=len(data.train), test_images=len(data.test),
                           torch=torch.__version__, **machine())
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        train_loader = make_train_loader(cfg.augment, data.train, cfg.batch_size, device, cfg.seed, cfg.num_workers)
        test_loader = EvalLoader(data.test, device)
        model = build_model(cfg, device)
        epochs_left = cfg.epochs - (self.state["epoch"] if self.state else 0)
        for line in start_lines(cfg, device, precision, data, self.run_dir, model, len(train_loader), epochs_left):
            self.log(line)
        if self.state is None:
            (self.run_dir / "summary.txt").write_text(summary_text(model))
            self.record["parameters"] = count_parameters(model)
            self._record_lrs()
            write_json(self.settings_in_force(), self.run_dir / "config.json")
        lr_min, lr_max = self.lrs()
        optimizer = make_optimizer(model, lr_max, cfg.momentum, cfg.weight_decay, cfg.nesterov)
        scheduler = make_schedule(cfg.schedule, optimizer, lr_min, lr_max, cfg.epochs, len(train_loader),
                                  cfg.max_at_epoch)
        ema = make_ema(model, cfg.ema) if cfg.ema else None
        history, start = new_history(len(train_loader), headline_key(cfg.ema, cfg.tta)), 0
        if self.state is not None:
            model.load_state_dict(self.state["model"])
            if ema is not None:
                ema.load_state_dict(self.state["ema"])
            optimizer.load_state_dict(self.state["optimizer"])
            scheduler.load_state_dict(self.state["scheduler"])
            precision.load_scaler_state(self.state["scaler"])
            ckpt.set_rng_states(self.state["rng"])
            history, start = self.state["history"], self.state["epoch"]
            self.log(f"resuming {self.run_dir} after epoch {start}")
        parts = Parts(model, optimizer, scheduler, precision, train_loader, test_loader, ema,
                      torch.compile(model) if cfg.compile else None, cfg.label_smoothing, cfg.tta)
        progress = progress_bars(len(train_loader), cfg.epochs) if cfg.progress else None
        history = train_loop(parts, range(start, cfg.epochs), history, (_Saver(self), *callbacks), progress)
        history["final_test_acc"] = history["epochs"][-1][history["headline"]]
        history["total_seconds"] = round(sum(e["seconds"] for e in history["epochs"]), 1)
        # this process, data loading and the range test included (a resumed run counts only its part)
        history["wall_seconds"] = round(time.perf_counter() - started, 1)
        if device.type == "cuda":  # this process's part, the range test included
            history["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        write_json(history, self.run_dir / "history.json")
        if cfg.report:
            render_report(self.run_dir, cfg, history, model, data, precision, test_loader, log=self.log)
        return history

    def _record_lrs(self) -> None:
        """In the record: the LRs asked for and what the range test found, when any was 'auto'."""
        if "auto" not in (self.cfg.lr_min, self.cfg.lr_max):
            return
        self.record["requested"] = {"lr_min": self.cfg.lr_min, "lr_max": self.cfg.lr_max}  # compared on continuing
        result = self.range_test()
        self.record["lr_find"] = {"lr_max": result.lr_max, "lr_min": result.lr_min, "rule": result.rule,
                                  "seconds": round(result.seconds, 1)}


class _Saver(Callback):
    """The run's part of each epoch's end: its line, then the checkpoint and ``history.json``."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def on_epoch_end(self, end: EpochEnd) -> None:
        run, p, row = self.run, end.parts, end.row
        run.log(f"epoch {end.epoch:2d}/{run.cfg.epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
                f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.4f}  lr {row['lr_last']:.4f}  "
                f"{row['seconds']:.1f}s")
        state = {"model": p.model.state_dict(), "optimizer": p.optimizer.state_dict(),
                 "scheduler": p.scheduler.state_dict(), "scaler": p.precision.scaler.state_dict(),
                 "rng": ckpt.rng_states(), "history": end.history, "epoch": end.epoch,
                 "config": run.settings_in_force(), "ema": p.ema.state_dict() if p.ema is not None else None}
        try:
            ckpt.save_checkpoint(state, run.run_dir)
        except ckpt.WriteFailed as e:
            saved = ckpt.saved_epoch(run.run_dir)
            kept = (f"the last good checkpoint is epoch {saved}: once the folder can be written, continue with "
                    f"--resume {run.run_dir}" if saved else "no epoch was saved")
            raise ckpt.WriteFailed(f"{e}; epoch {end.epoch} is not saved, {kept}") from None
        write_json(end.history, run.run_dir / "history.json")


def start_lines(cfg: TrainConfig, device: torch.device, precision: Precision, data: Cifar10, run_dir: Path,
                model: torch.nn.Module, steps: int, epochs_left: int) -> list[str]:
    """What is about to run, said before anything slow: device, precision, network, data, folder;
    on a CPU at a width above the proxies, the time an epoch will take, from a few timed steps;
    on a CPU, what its precision costs there (:func:`cpu_precision_line`)."""
    lines = [f"device: {device_name(device)}, precision {precision.name}",
             f"network: ResNet-9, width {cfg.width:g} ({count_parameters(model):,} parameters), "
             f"block order {cfg.block_order}",
             f"data: {data.source}; {len(data.train):,} training / {len(data.test):,} test images, batch "
             f"{cfg.batch_size}, {steps} steps an epoch",
             f"run folder: {run_dir}"]
    if device.type != "cpu":
        return lines
    epoch = None
    if cfg.width > CPU_PROXY_WIDTH:
        epoch = estimate_epoch_seconds(model, cfg.batch_size, steps, precision)
        lines.append(f"on this CPU an epoch takes about {_duration(epoch)}, {epochs_left} epochs about "
                     f"{_duration(epoch * epochs_left)} (from {ESTIMATE_STEPS} timed steps); --width 0.125 trains "
                     "the CPU proxy of this network, --device cuda a GPU")
    return lines + cpu_precision_line(precision, model, cfg.batch_size, steps, epoch)


def cpu_precision_line(precision: Precision, model: torch.nn.Module, batch_size: int, steps: int,
                       fp32_epoch: float | None) -> list[str]:
    """On a CPU: in fp32 where the CPU computes bf16, the faster choice with its estimate; in a
    half precision that the CPU only emulates, that it is slower than fp32."""
    if precision.dtype is None and cpu_bf16_in_hardware():
        bf16 = estimate_epoch_seconds(model, batch_size, steps, Precision("cpu", torch.bfloat16))
        than = f" (fp32: about {_duration(fp32_epoch)})" if fp32_epoch is not None else ""
        return [f"this CPU computes bf16 in hardware: --precision bf16 (PRECISION = \"bf16\" in the notebook) "
                f"trains an epoch in about {_duration(bf16)}{than}"]
    if precision.dtype == torch.float16 or (precision.dtype == torch.bfloat16 and not cpu_bf16_in_hardware()):
        return [f"this CPU emulates {precision.name.split()[0]}: slower than fp32 (fp16 about 20x at width 1), "
                "for checking a GPU's numerics; --precision auto picks the fastest"]
    return []


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"
