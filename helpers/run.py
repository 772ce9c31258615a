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
import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import checkpoint as ckpt
from .config import TrainConfig
from .data import Cifar10, load_cifar10
from .errors import UserError
from .loaders import MEMORY_FORMAT, EvalLoader, check_batch_size, make_train_loader
from .model import ResNet9, count_parameters, summary_text
from .schedule import one_cycle
from .train import Diverged, Precision, choose_device, evaluate, make_optimizer, train_epoch

Log = Callable[[str], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_run_dir(out: str) -> Path:
    """Create a fresh run folder; never reuse one that holds files."""
    run_dir = Path(out or Path("runs") / datetime.now().strftime("resnet9-%Y%m%d-%H%M%S"))
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise UserError(f"run folder {run_dir} already exists and is not empty; choose another --out, "
                        f"or continue it with --resume {run_dir}")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to run folder {run_dir} ({e.strerror}); choose a writable --out") from None
    return run_dir


def load_data(cfg: TrainConfig) -> Cifar10:
    data = load_cifar10(cfg.data_dir, download=cfg.download)
    data.train = data.train.subset(cfg.limit_train, cfg.seed)
    data.test = data.test.subset(cfg.limit_test, cfg.seed)
    return data


def build_model(cfg: TrainConfig, device: torch.device) -> ResNet9:
    seed_everything(cfg.seed)
    model = ResNet9(width=cfg.width, logit_scale=cfg.logit_scale).to(device)
    # channels_last (loaders.MEMORY_FORMAT): tensor cores want it on CUDA; on a 2-core CPU a
    # quick check of a width-1/8 training step also favoured it (oneDNN's NHWC kernels).
    return model.to(memory_format=MEMORY_FORMAT)


def write_json(obj: Any, path: Path) -> None:
    ckpt.atomic_write_text(json.dumps(obj, indent=2), path)


def resolve_lrs(cfg: TrainConfig, model, train_loader, device, precision, run_dir: Path, log: Log,
                result=None) -> None:
    """Replace 'auto' LRs by the LR range test's suggestions (recorded in config.resolved).

    ``result``: a range test already run on the same settings (the notebook runs it
    in its own cell); otherwise it runs here, from the seeded initial weights.
    """
    if cfg.lr_min != "auto" and cfg.lr_max != "auto":
        return
    from .lr_finder import range_test

    if result is None:
        result = range_test(model, train_loader, device, precision, cfg, log=log)
    result.save(run_dir)
    if cfg.lr_max == "auto":
        cfg.lr_max = result.lr_max
    if cfg.lr_min == "auto":
        cfg.lr_min = min(result.lr_min, cfg.lr_max / 2)
    cfg.resolved["lr_find"] = {"lr_max": result.lr_max, "lr_min": result.lr_min,
                               "rule": result.rule, "seconds": round(result.seconds, 1)}
    if cfg.lr_min >= cfg.lr_max:
        raise UserError(f"--lr-min ({cfg.lr_min}) must be smaller than --lr-max ({cfg.lr_max})")


def train_run(cfg: TrainConfig, resume: str | None = None, data: Cifar10 | None = None,
              log: Log = print, lr_find=None, run_dir: Path | None = None) -> dict[str, Any]:
    """Run (or resume) a whole job; returns the history.

    ``data``: already loaded CIFAR-10 (else loaded from ``cfg.data_dir``);
    ``lr_find``: a :class:`~helpers.lr_finder.RangeTestResult` to use for 'auto' LRs;
    ``run_dir``: a folder already made by :func:`prepare_run_dir` (the notebook saves
    its first figures there before training).
    """
    started = time.perf_counter()
    if resume:
        run_dir = Path(resume)
        path = run_dir / ckpt.CHECKPOINT
        if not path.is_file():
            raise UserError(f"no checkpoint in {run_dir} ({ckpt.CHECKPOINT} missing); "
                            "point --resume at a run folder written by 'helpers train'")
        state = ckpt.load(path)
        cfg = TrainConfig.from_dict(state["config"])
        cfg.validate()
    else:
        cfg.validate()
        state = None
    device = choose_device(cfg.device)
    if data is None:
        data = load_data(cfg)
    check_batch_size(cfg.batch_size, len(data.train))  # before anything is written
    if not resume:
        run_dir = Path(run_dir) if run_dir is not None else prepare_run_dir(cfg.out)
        cfg.out = str(run_dir)
    precision = Precision.for_device(device, cfg.amp)
    cfg.resolved.update(device=str(device), amp_dtype=str(precision.dtype), data_source=data.source,
                        train_images=len(data.train), test_images=len(data.test), torch=torch.__version__)
    train_loader = make_train_loader(cfg.augment, data.train, cfg.batch_size, device, cfg.seed,
                                     cfg.num_workers)
    test_loader = EvalLoader(data.test, device)
    model = build_model(cfg, device)
    if state is None:
        (run_dir / "summary.txt").write_text(summary_text(model))
        cfg.resolved["parameters"] = count_parameters(model)
        resolve_lrs(cfg, model, train_loader, device, precision, run_dir, log, lr_find)
    optimizer = make_optimizer(model, cfg.lr_max, cfg.momentum, cfg.weight_decay, cfg.nesterov)
    scheduler = one_cycle(optimizer, cfg.lr_min, cfg.lr_max, cfg.epochs, len(train_loader), cfg.max_at_epoch)
    history: dict[str, Any] = {"epochs": [], "lr": [], "momentum": [], "steps_per_epoch": len(train_loader)}
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        precision.scaler.load_state_dict(state["scaler"])
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
                                progress(epoch) if progress else None)
        except Diverged as e:
            kept = (f"the last good checkpoint (epoch {epoch}) stays in {run_dir}" if epoch
                    else "no epoch had finished, so no checkpoint was written")
            raise Diverged(f"{e}; {kept}") from None
        train_seconds = time.perf_counter() - t0
        test_loss, test_acc = evaluate(step_fn, test_loader, precision)
        history["lr"] += stats.lrs
        history["momentum"] += stats.momenta
        row = {"epoch": epoch + 1, "train_loss": stats.loss, "train_acc": stats.acc, "test_loss": test_loss,
               "test_acc": test_acc, "lr_last": stats.lrs[-1], "train_seconds": round(train_seconds, 2),
               "seconds": round(time.perf_counter() - t0, 2)}
        history["epochs"].append(row)
        log(f"epoch {epoch + 1:2d}/{cfg.epochs}  train loss {stats.loss:.4f} acc {stats.acc:.4f}  "
            f"test loss {test_loss:.4f} acc {test_acc:.4f}  lr {stats.lrs[-1]:.4f}  {row['seconds']:.1f}s")
        ckpt.atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "scaler": precision.scaler.state_dict(),
                          "rng": ckpt.rng_states(), "history": history, "epoch": epoch + 1,
                          "config": cfg.to_dict()}, run_dir / ckpt.CHECKPOINT)
        write_json(history, run_dir / "history.json")
    history["final_test_acc"] = history["epochs"][-1]["test_acc"]
    history["total_seconds"] = round(sum(e["seconds"] for e in history["epochs"]), 1)
    # this process, data loading and the range test included (a resumed run counts only its part)
    history["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_json(history, run_dir / "history.json")
    if cfg.report:
        from .report import render_report

        render_report(run_dir, model=model, data=data, device=device, log=log)
    return history


def _progress_factory(cfg: TrainConfig, total: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm  # text bars: they also read well in a saved notebook

    def factory(epoch: int):
        return lambda it: tqdm(it, total=total, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                               mininterval=1.0)
    return factory
