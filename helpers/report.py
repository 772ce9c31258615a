"""Every figure of a run, written into its folder, and its ``results.json``: drawn at the end of
training (:mod:`helpers.run`), or from a finished run's files (``python -m helpers report``,
:func:`report_run`); the banner and results table the notebook shows.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checkpoint as ckpt
from . import plots
from .augment import albumentations_train, denormalize, reseed
from .checkpoint import atomic_write_text
from .config import CIFAR10_CLASSES, CPU_PROXY_WIDTH, TrainConfig, read_record
from .data import Cifar10, load_data
from .errors import Log, UserError
from .files import read_json
from .gradcam import gradcam_maps
from .loaders import EvalLoader
from .lr_finder import RangeTestResult
from .model import ResNet9, build_model, count_parameters
from .train import Precision, choose_device, confusion_matrix, device_name, per_class_accuracy, predict


def augmentation_samples(images: np.ndarray, repeats: int = 2, seed: int = 0) -> np.ndarray:
    """The assignment's albumentations transform applied ``repeats`` times; HWC in [0, 1]."""
    t = albumentations_train()
    reseed(t, seed)
    out = [t(image=im)["image"] for _ in range(repeats) for im in images]
    return denormalize(torch.stack(out)).numpy()


def first_per_class(y: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first image of each class, for the first ``n`` classes present."""
    return np.array([int(np.argmax(y == c)) for c in np.unique(y)[:n]], dtype=np.int64)


def worst_mistakes(true: np.ndarray, pred: np.ndarray, confidence: np.ndarray, n: int) -> np.ndarray:
    """The most confident mistake of each true class (then the next ones), ``n`` in all."""
    wrong = np.nonzero(pred != true)[0]
    # rank each mistake within its class by confidence, then take rank 0 of every class first
    order = wrong[np.lexsort((-confidence[wrong], true[wrong]))]
    rank = np.zeros(len(order), dtype=np.int64)
    for i in range(1, len(order)):
        rank[i] = rank[i - 1] + 1 if true[order[i]] == true[order[i - 1]] else 0
    return order[np.lexsort((true[order], rank))][:n]


def run_label(cfg: dict[str, Any]) -> str:
    """What made a run's figures: network width, device, precision, seed."""
    res = cfg.get("resolved", {})
    return (f"ResNet-9 width {cfg['width']:g}, {res.get('device_name', res.get('device', '?'))}, "
            f"{res.get('precision', '?')}, seed {cfg['seed']}")


def save_range_test(result: RangeTestResult, out_dir: Path) -> tuple[Path, Path]:
    """``lr_find.json`` and ``lr_find.png`` into ``out_dir``."""
    return result.save(Path(out_dir)), plots.plot_lr_find(result, Path(out_dir) / "lr_find.png")


def render_report(run_dir: Path, cfg: TrainConfig, history: dict[str, Any], model: torch.nn.Module,
                  data: Cifar10, precision: Precision, test_loader: EvalLoader | None = None,
                  n_examples: int = 10, gradcam_layer: str = "layer3",
                  log: Log = print) -> list[Path]:
    """Draw every figure of a run into ``run_dir`` and write ``results.json``; the figures are
    labelled from the run's ``config.json`` (what ran it).

    ``test_loader``: the run's normalized test set, when the caller holds one already.
    """
    run_dir = Path(run_dir)
    device = next(model.parameters()).device
    label = run_label(read_json(run_dir / "config.json", "the run's settings"))
    # read before anything is drawn: a damaged file stops the report with nothing redrawn
    found = RangeTestResult.load(run_dir / "lr_find.json") if (run_dir / "lr_find.json").is_file() else None
    out = [plots.plot_schedule(history["lr"], history["steps_per_epoch"], run_dir / "schedule.png",
                               cfg.max_at_epoch, history.get("momentum"), label=label),
           plots.plot_curves(history, run_dir / "curves.png", label=label),
           plots.plot_triangle(run_dir / "triangle.png")]
    if found is not None:
        out.append(plots.plot_lr_find(found, run_dir / "lr_find.png", label=label))
    sample = data.train.x[first_per_class(data.train.y, 8)]
    out.append(plots.plot_augmentation(sample, augmentation_samples(sample, 2, cfg.seed),
                                       run_dir / "augmentation.png"))
    test = test_loader or EvalLoader(data.test, device)
    probs, labels = predict(model, test, precision)
    pred = probs.argmax(1).numpy()
    true = labels.numpy()
    conf = confusion_matrix(true, pred, len(CIFAR10_CLASSES))
    out.append(plots.plot_per_class(conf, CIFAR10_CLASSES, run_dir / "per_class.png", label=label))
    wrong = worst_mistakes(true, pred, probs.max(1).values.numpy(), n_examples)
    images = data.test.x[wrong]
    out.append(plots.plot_misclassified(images, true[wrong], pred[wrong], CIFAR10_CLASSES,
                                        run_dir / "misclassified.png", probs[wrong, pred[wrong]].numpy()))
    if len(wrong):
        x = test.images[torch.as_tensor(wrong, device=test.images.device)]
        cam_pred = gradcam_maps(model, x, pred[wrong], gradcam_layer)
        cam_true = gradcam_maps(model, x, true[wrong], gradcam_layer)
        out.append(plots.plot_gradcam(images / 255.0, cam_pred, cam_true, true[wrong], pred[wrong],
                                      CIFAR10_CLASSES, run_dir / "gradcam.png", gradcam_layer))
    acc = per_class_accuracy(conf)
    results = {"final_test_acc": float((pred == true).mean()),
               "best_test_acc": max(e["test_acc"] for e in history["epochs"]),
               "epochs": len(history["epochs"]), "train_seconds": history.get("total_seconds"),
               "per_class_acc": {c: float(acc[i]) for i, c in enumerate(CIFAR10_CLASSES)},
               "confusion": conf.tolist()}
    atomic_write_text(json.dumps(results, indent=2), run_dir / "results.json")
    log(f"report: {len(out)} figures in {run_dir}")
    return out


def run_banner(cfg: TrainConfig, run_dir: Path | None = None) -> str:
    """One paragraph naming what made a run's outputs. A run that has started is described
    from its own record (``config.json``: its settings, and the device and precision that ran
    it, whatever machine reads it now); a new one from ``cfg`` and the device it will use."""
    record = Path(run_dir) / "config.json" if run_dir is not None else None
    warning = ""
    if record is not None and record.is_file():
        cfg, res = read_record(record)
        machine = f"{res.get('device_name', res.get('device', '?'))}, {res.get('precision', '?')}"
    else:
        device = choose_device(cfg.device)
        machine = (f"{device_name(device)}, {Precision.for_device(device, cfg.amp, cfg.precision).name} "
                   "(this machine; the run has not started)")
        if device.type == "cpu" and cfg.width > CPU_PROXY_WIDTH:
            warning = (" **No GPU: on a CPU this network trains for hours** (the training cell estimates how "
                       "long before it starts); WIDTH = 0.125 is the CPU proxy, or choose a GPU runtime.")
    full = ResNet9(width=1.0)
    n = count_parameters(ResNet9(width=cfg.width))
    what = ("the assignment's network" if cfg.width == 1 else
            f"a narrow proxy of the assignment's network (width 1, {count_parameters(full):,} parameters)")
    return (f"**The outputs below come from this run:** ResNet-9 width {cfg.width:g} ({n:,} parameters), {what}; "
            f"{machine}; {cfg.epochs} epochs, LR peak at epoch {cfg.max_at_epoch:g}, batch {cfg.batch_size}; "
            f"LRMIN {cfg.lr_min}, LRMAX {cfg.lr_max} ('auto' = LR range test); seed {cfg.seed}; "
            f"data folder `{cfg.data_dir}`; run folder `{cfg.out}`.{warning}")


def results_table(run_dir: Path) -> str:
    """The run's headline numbers as a Markdown table (config, LRs, accuracy, time)."""
    run_dir = Path(run_dir)
    cfg = read_json(run_dir / "config.json", "the run's settings", keys=("resolved",))
    hist = read_json(run_dir / "history.json", "the run's history", keys=("epochs", "lr"))
    res = cfg["resolved"]
    best = max(hist["epochs"], key=lambda e: e["test_acc"])
    rows = [("network", f"ResNet-9, width {cfg['width']:g} ({res.get('parameters', 0):,} parameters)"),
            ("data", f"{res['train_images']:,} train / {res['test_images']:,} test images"),
            ("device, precision", f"{res.get('device_name', res['device'])}, {res.get('precision', 'n/a')}"),
            ("epochs / batch size", f"{len(hist['epochs'])} / {cfg['batch_size']}"),
            ("LRMIN -> LRMAX -> LRMIN", f"{cfg['lr_min']:.4g} -> {cfg['lr_max']:.4g} -> {hist['lr'][-1]:.4g}"
                                         f" (peak at epoch {cfg['max_at_epoch']:g})"),
            ("LR rule", res.get("lr_find", {}).get("rule", "set by hand")),
            ("final test accuracy", f"{100 * hist['epochs'][-1]['test_acc']:.2f}%"),
            ("best test accuracy", f"{100 * best['test_acc']:.2f}% (epoch {best['epoch']})"),
            ("training time (epochs + evaluation)", f"{sum(e['seconds'] for e in hist['epochs']) / 60:.1f} min"),
            ("wall time of the training call", f"{hist['wall_seconds'] / 60:.1f} min" if "wall_seconds" in hist
             else "n/a")]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def load_finished_run(run_dir: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """A run folder's settings (the LRs in force) and history; one clear line when it is not a run
    folder or has no finished epoch."""
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
    """The network of the run's newest whole checkpoint, on ``device``."""
    state = ckpt.load_latest(run_dir)
    if state is None:
        raise UserError(f"no checkpoint in {run_dir}; run 'python -m helpers train' first")
    model = build_model(cfg, device)
    model.load_state_dict(state["model"])
    return model


def report_run(run_dir: Path, data_dir: str | None = None, device: str = "auto",
               gradcam_layer: str = "layer3", log: Log = print) -> list[Path]:
    """``python -m helpers report RUN_DIR``: every figure of a finished run, from its files, on
    ``device`` ('auto', 'cuda', 'mps' or 'cpu')."""
    cfg, history = load_finished_run(run_dir)
    device = choose_device(device)
    if data_dir:
        cfg = cfg.replace(data_dir=data_dir)
    data = load_data(cfg)
    model = load_model(run_dir, cfg, device)
    return render_report(Path(run_dir), cfg, history, model, data, Precision.for_device(device, cfg.amp, cfg.precision),
                         gradcam_layer=gradcam_layer, log=log)
