"""A whole training job in a run folder: config, data, LR, model, training, report.

Run folder contents:
    config.json      every setting, plus what the run resolved (device, LRs found)
    summary.txt      the torchsummary table
    history.json     per-epoch metrics and the per-step LR / momentum
    checkpoint.pt    the last completed epoch (model, optimizer, scheduler,
                     scaler, RNG states, history): ``--resume`` continues from it
    lr_find.json/png the LR range test, when LRs are 'auto'
    *.png            the figures (see helpers.report)
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from . import checkpoint as ckpt
from . import plots
from .config import CPU_PROXY_WIDTH, TrainConfig
from .data import Cifar10, load_data
from .errors import Interrupted, Log, UserError
from .files import read_json
from .loaders import EvalLoader, check_batch_size, make_train_loader
from .lr_finder import RangeTestResult, lrs_in_force, range_test
from .model import ResNet9, build_model, count_parameters, summary_text
from .provenance import machine
from .report import render_report
from .schedule import check_schedule, make_schedule
from .train import (ESTIMATE_STEPS, Diverged, Precision, choose_device, configure_backend, cpu_bf16_in_hardware,
                    device_name, estimate_epoch_seconds, evaluate, make_ema, make_optimizer, out_of_memory,
                    synchronize, train_epoch)



def prepare_run_dir(out: str, resumable: bool = True) -> Path:
    """Create a fresh output folder; never reuse one that holds files."""
    run_dir = Path(out or Path("runs") / datetime.now().strftime("resnet9-%Y%m%d-%H%M%S"))
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        hint = f", or continue it with --resume {run_dir}" if resumable else ""
        raise UserError(f"output folder {run_dir} already exists and is not empty; choose another --out{hint}")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to run folder {run_dir} ({e.strerror}); choose a writable --out") from None
    return run_dir


def drive_folder(out: str, mount_point: str = "/content/drive") -> str:
    """``out`` on Google Drive (mounted on first use), so a Colab disconnect loses nothing."""
    import sys

    if "google.colab" not in sys.modules:
        raise UserError("DRIVE = True needs Google Colab (it mounts Google Drive); set DRIVE = False here")
    from google.colab import drive  # type: ignore[import-not-found]

    drive.mount(mount_point)
    return str(Path(mount_point) / "MyDrive" / out)


def write_json(obj: Any, path: Path) -> None:
    ckpt.atomic_write_text(json.dumps(obj, indent=2), path)


def resolve_lrs(cfg: TrainConfig, model, train_loader, run_dir: Path, log: Log, result=None) -> None:
    """Replace 'auto' LRs by the LR range test's suggestions (recorded in config.resolved).

    ``result``: a range test already run on the same settings (the notebook runs it
    in its own cell); otherwise it runs here, from the seeded initial weights.
    """
    if cfg.lr_min != "auto" and cfg.lr_max != "auto":
        return
    cfg.resolved["requested"] = {"lr_min": cfg.lr_min, "lr_max": cfg.lr_max}  # helpers.job compares these
    if result is None:
        result = find_lrs(cfg, log=log, model=model, loader=train_loader)
    save_range_test(result, run_dir)
    cfg.lr_min, cfg.lr_max = lrs_in_force(cfg.lr_min, cfg.lr_max, result, cfg.lr_min_rule)
    cfg.resolved["lr_find"] = {"lr_max": result.lr_max, "lr_min": result.lr_min,
                               "rule": result.rule, "seconds": round(result.seconds, 1)}


def train_run(run_dir: Path, cfg: TrainConfig, state: dict[str, Any] | None, data: Cifar10, log: Log = print,
              lr_find: RangeTestResult | None = None, started: float | None = None) -> dict[str, Any]:
    """The one way into training, for the command line, the notebook and sweeps (each opens the
    job with :class:`helpers.job.Run`, which checks it before anything is written): the job in
    ``run_dir``, new when ``state`` is None, else continuing that checkpoint. Returns the history.

    ``lr_find``: a range test already run on these settings (the notebook's cell) for 'auto'
    LRs, else the job runs it; ``started``: when the training call began (default: now).
    """
    started = time.perf_counter() if started is None else started
    device = choose_device(cfg.device)
    lock = ckpt.RunLock(run_dir)
    took = lock.acquire()  # False: the caller holds it already (Run does)
    try:
        configure_backend(device)
        return _train_in(run_dir, cfg, state, data, device, log, lr_find, started)
    except torch.cuda.OutOfMemoryError:
        saved = ckpt.saved_epoch(run_dir)
        raise out_of_memory(device, cfg.batch_size, cfg.width,
                            f"the checkpoint after epoch {saved} stays in {run_dir} (a run continues only with "
                            "its own settings: lower them in a new run folder)" if saved
                            else "no epoch had finished, so no checkpoint was written") from None
    except KeyboardInterrupt:
        saved = ckpt.saved_epoch(run_dir)
        raise Interrupted(f"interrupted; epoch {saved} is saved: continue with --resume {run_dir}" if saved else
                          f"interrupted before the first epoch finished, so there is nothing to resume in "
                          f"{run_dir}; start again (with another --out, or after deleting that folder)") from None
    finally:
        if took:
            lock.release()


def checked_data(cfg: TrainConfig, data: Cifar10 | None = None, log: Log = print) -> Cifar10:
    """CIFAR-10 for ``cfg`` (``data`` when already loaded), checked against the batch size and the
    schedule: one line, before anything trains or is written, when it is too small for them."""
    data = data if data is not None else load_data(cfg, log=log)
    check_batch_size(cfg.batch_size, len(data.train))
    check_schedule(cfg.epochs, len(data.train) // cfg.batch_size, cfg.max_at_epoch)
    return data


def _train_in(run_dir: Path, cfg: TrainConfig, state: dict[str, Any] | None, data: Cifar10,
              device: torch.device, log: Log, lr_find: RangeTestResult | None, started: float) -> dict[str, Any]:
    """The job inside its run folder: range test, epochs, checkpoints, report."""
    precision = Precision.for_device(device, cfg.amp, cfg.precision)
    # a CPU run repeats bit for bit for one seed on one machine: CPU, kernels, threads, versions
    cfg.resolved.update(device=str(device), device_name=device_name(device), precision=precision.name,
                        data_source=data.source, train_images=len(data.train), test_images=len(data.test),
                        torch=torch.__version__, **machine())
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_loader = make_train_loader(cfg.augment, data.train, cfg.batch_size, device, cfg.seed,
                                     cfg.num_workers)
    test_loader = EvalLoader(data.test, device)
    model = build_model(cfg, device)
    for line in start_lines(cfg, device, precision, data, run_dir, model, len(train_loader),
                            cfg.epochs - (state["epoch"] if state else 0)):
        log(line)
    if state is None:
        (run_dir / "summary.txt").write_text(summary_text(model))
        cfg.resolved["parameters"] = count_parameters(model)
        resolve_lrs(cfg, model, train_loader, run_dir, log, lr_find)
    optimizer = make_optimizer(model, cfg.lr_max, cfg.momentum, cfg.weight_decay, cfg.nesterov)
    scheduler = make_schedule(cfg.schedule, optimizer, cfg.lr_min, cfg.lr_max, cfg.epochs, len(train_loader),
                              cfg.max_at_epoch)
    ema = make_ema(model, cfg.ema) if cfg.ema else None
    history: dict[str, Any] = {"epochs": [], "lr": [], "momentum": [], "steps_per_epoch": len(train_loader),
                               "headline": headline_key(cfg)}
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        precision.load_scaler_state(state["scaler"])
        ckpt.set_rng_states(state["rng"])
        history, start_epoch = state["history"], state["epoch"]
        log(f"resuming {run_dir} after epoch {start_epoch}")
    else:
        write_json(cfg.to_dict(), run_dir / "config.json")
    step_fn = model
    if cfg.compile:
        step_fn = torch.compile(model)
    progress = _progress_factory(cfg, len(train_loader))
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        try:
            stats = train_epoch(step_fn, train_loader.epoch(epoch), optimizer, scheduler, precision, epoch + 1,
                                progress(epoch) if progress else None, cfg.label_smoothing, ema)
        except Diverged as e:
            kept = (f"the last good checkpoint (epoch {epoch}) stays in {run_dir}" if epoch
                    else "no epoch had finished, so no checkpoint was written")
            raise Diverged(f"{e}; {kept}") from None
        synchronize(device)  # the clock measures the GPU's work, not how fast it was queued
        train_seconds = time.perf_counter() - t0
        # the eager module (same weights): a compiled one would recompile for the last, partial test batch
        tests = evaluate_all(model, ema, test_loader, precision, cfg.tta)
        test_loss, test_acc = tests["test_loss"], tests["test_acc"]
        history["lr"] += stats.lrs
        history["momentum"] += stats.momenta
        row = {"epoch": epoch + 1, "train_loss": stats.loss, "train_acc": stats.acc, **tests,
               "lr_last": stats.lrs[-1], "train_seconds": round(train_seconds, 2),
               "seconds": round(time.perf_counter() - t0, 2)}
        if precision.scaler.is_enabled():  # fp16: the loss scale at the epoch's end (its history, for a T4's numerics)
            row["loss_scale"] = precision.scaler.get_scale()
        history["epochs"].append(row)
        log(f"epoch {epoch + 1:2d}/{cfg.epochs}  train loss {stats.loss:.4f} acc {stats.acc:.4f}  "
            f"test loss {test_loss:.4f} acc {test_acc:.4f}  lr {stats.lrs[-1]:.4f}  {row['seconds']:.1f}s")
        try:
            ckpt.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                  "scheduler": scheduler.state_dict(), "scaler": precision.scaler.state_dict(),
                                  "rng": ckpt.rng_states(), "history": history, "epoch": epoch + 1,
                                  "config": cfg.to_dict(), "ema": ema.state_dict() if ema is not None else None},
                                 run_dir)
        except ckpt.WriteFailed as e:
            saved = (f"the last good checkpoint is epoch {epoch}: once the folder can be written, continue "
                     f"with --resume {run_dir}" if ckpt.has_checkpoint(run_dir) else "no epoch was saved")
            raise ckpt.WriteFailed(f"{e}; epoch {epoch + 1} is not saved, {saved}") from None
        write_json(history, run_dir / "history.json")
    history["final_test_acc"] = history["epochs"][-1][headline_key(cfg)]
    history["total_seconds"] = round(sum(e["seconds"] for e in history["epochs"]), 1)
    # this process, data loading and the range test included (a resumed run counts only its part)
    history["wall_seconds"] = round(time.perf_counter() - started, 1)
    if device.type == "cuda":  # this process's part, the range test included
        history["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    write_json(history, run_dir / "history.json")
    if cfg.report:
        render_report(run_dir, cfg, history, model, data, device, test_loader, log=log)
    return history


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
                     f"{_duration(epoch * epochs_left)} (from {ESTIMATE_STEPS} timed steps); --width 0.125 trains the CPU proxy "
                     "of this network, --device cuda a GPU")
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


def headline_key(cfg: TrainConfig) -> str:
    """The accuracy a run reports: the weight average's where --ema is on, with --tta where on;
    ``test_acc`` (the trained weights, plain evaluation) is recorded beside it in every run."""
    return "test_acc" + ("_ema" if cfg.ema else "") + ("_tta" if cfg.tta != "none" else "")


def evaluate_all(model, ema, test_loader, precision, tta: str) -> dict[str, float]:
    """Test loss and accuracy of the weights, and where on, of their average and with ``tta``:
    keys test_acc, test_acc_tta, test_acc_ema, test_acc_ema_tta (and the matching losses)."""
    out: dict[str, float] = {}
    for suffix, m in (("", model), ("_ema", ema.module if ema is not None else None)):
        if m is None:
            continue
        out[f"test_loss{suffix}"], out[f"test_acc{suffix}"] = evaluate(m, test_loader, precision)
        if tta != "none":
            out[f"test_loss{suffix}_tta"], out[f"test_acc{suffix}_tta"] = evaluate(m, test_loader, precision, tta)
    return out


def _progress_factory(cfg: TrainConfig, total: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm  # text bars: they also read well in a saved notebook

    def factory(epoch: int):
        return lambda it: tqdm(it, total=total, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                               mininterval=1.0)
    return factory


def save_range_test(result: RangeTestResult, out_dir: Path) -> tuple[Path, Path]:
    """``lr_find.json`` and ``lr_find.png`` into ``out_dir``."""
    return result.save(Path(out_dir)), plots.plot_lr_find(result, Path(out_dir) / "lr_find.png")


def find_lrs(cfg: TrainConfig, data: Cifar10 | None = None, log: Log = print, model: torch.nn.Module | None = None,
             loader=None) -> RangeTestResult:
    """The LR range test: every caller runs it through here (``train``, ``lr-find``, the notebook's
    cell, sweeps, the width study). On ``data`` (loaded from ``cfg.data_dir`` if None) with a fresh
    seeded model and loader, or on a job's own ``model`` and ``loader`` (its weights come back as
    they were). Out of GPU memory is one line."""
    cfg.validate()
    device = choose_device(cfg.device) if model is None else next(model.parameters()).device
    if loader is None:
        data = data if data is not None else load_data(cfg)
        loader = make_train_loader(cfg.augment, data.train, cfg.batch_size, device, cfg.seed, cfg.num_workers)
    model = model if model is not None else build_model(cfg, device)
    try:
        return range_test(model, loader, device, Precision.for_device(device, cfg.amp, cfg.precision), cfg, log=log)
    except torch.cuda.OutOfMemoryError:
        raise out_of_memory(device, cfg.batch_size, cfg.width, "no range test was saved") from None


def lr_find_command(cfg: TrainConfig, log: Log = print) -> RangeTestResult:
    """``python -m helpers lr-find``: the test on the training data, JSON + PNG into a new ``cfg.out``."""
    cfg.validate()
    data = load_data(cfg)
    check_batch_size(cfg.batch_size, len(data.train))
    out = prepare_run_dir(cfg.out, resumable=False)  # refuses a folder with files, checks it can write
    result = find_lrs(cfg, data, log=log)
    js, png = save_range_test(result, out)
    log(f"wrote {js} and {png}")
    return result


def load_finished_run(run_dir: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """A run folder's settings and history; one clear line when it is not a run folder."""
    run_dir = Path(run_dir)
    for name in ("config.json", "history.json"):
        if not (run_dir / name).is_file():
            raise UserError(f"{run_dir} holds no {name}; is it a run folder written by 'helpers train'?")
    cfg = TrainConfig.read(run_dir / "config.json")
    history = read_json(run_dir / "history.json", "the run's history", keys=("epochs",))
    if not history["epochs"]:
        raise UserError(f"{run_dir} has no finished epoch yet; nothing to report")
    return cfg, history


def load_model(run_dir: Path, cfg: TrainConfig, device: torch.device) -> ResNet9:
    state = ckpt.load_latest(run_dir)
    if state is None:
        raise UserError(f"no checkpoint in {run_dir}; run 'python -m helpers train' first")
    model = build_model(cfg, device)
    model.load_state_dict(state["model"])
    return model


def report_run(run_dir: Path, data_dir: str | None = None, device_name: str = "auto",
               gradcam_layer: str = "layer3", log: Log = print) -> list[Path]:
    """``python -m helpers report RUN_DIR``: every figure of a finished run, from its files."""
    cfg, history = load_finished_run(run_dir)
    device = choose_device(device_name)
    if data_dir:
        cfg.data_dir = data_dir
    data = load_data(cfg)
    model = load_model(run_dir, cfg, device)
    return render_report(Path(run_dir), cfg, history, model, data, device, gradcam_layer=gradcam_layer, log=log)
