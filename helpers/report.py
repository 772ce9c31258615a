"""Render every figure of a finished run into its folder (``python -m helpers report RUN_DIR``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import checkpoint as ckpt
from . import plots
from .augment import albumentations_train, denormalize, reseed
from .config import CIFAR10_CLASSES, TrainConfig
from .data import Cifar10
from .errors import UserError
from .gradcam import gradcam_maps
from .loaders import EvalLoader
from .model import ResNet9
from .train import Precision, choose_device, predict


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


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n: int = 10) -> np.ndarray:
    return np.bincount(true * n + pred, minlength=n * n).reshape(n, n)


def load_model(run_dir: Path, cfg: TrainConfig, device: torch.device) -> ResNet9:
    path = run_dir / ckpt.CHECKPOINT
    if not path.is_file():
        raise UserError(f"no checkpoint in {run_dir}; run 'python -m helpers train' first")
    from .run import build_model

    model = build_model(cfg, device)
    model.load_state_dict(ckpt.load(path)["model"])
    return model


def render_report(run_dir: Path, model: ResNet9 | None = None, data: Cifar10 | None = None,
                  device: torch.device | None = None, data_dir: str | None = None, device_name: str = "auto",
                  n_examples: int = 10, gradcam_layer: str = "layer3",
                  log: Callable[[str], None] = print) -> list[Path]:
    run_dir = Path(run_dir)
    for name in ("config.json", "history.json"):
        if not (run_dir / name).is_file():
            raise UserError(f"{run_dir} holds no {name}; is it a run folder written by 'helpers train'?")
    cfg = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    history = json.loads((run_dir / "history.json").read_text())
    if not history["epochs"]:
        raise UserError(f"{run_dir} has no finished epoch yet; nothing to report")
    device = device or choose_device(device_name)
    if data is None:
        from .run import load_data

        if data_dir:
            cfg.data_dir = data_dir
        data = load_data(cfg)
    if model is None:
        model = load_model(run_dir, cfg, device)
    out = [plots.plot_schedule(history["lr"], history["steps_per_epoch"], run_dir / "schedule.png",
                               cfg.max_at_epoch, history.get("momentum")),
           plots.plot_curves(history, run_dir / "curves.png"),
           plots.plot_triangle(run_dir / "triangle.png")]
    if (run_dir / "lr_find.json").is_file():
        from .lr_finder import RangeTestResult

        out.append(plots.plot_lr_find(RangeTestResult(**json.loads((run_dir / "lr_find.json").read_text())),
                                      run_dir / "lr_find.png"))
    sample = data.train.x[first_per_class(data.train.y, 8)]
    out.append(plots.plot_augmentation(sample, augmentation_samples(sample, 2, cfg.seed),
                                       run_dir / "augmentation.png"))
    precision = Precision.for_device(device, cfg.amp)
    test = EvalLoader(data.test, device)
    probs, labels = predict(model, test, precision)
    pred = probs.argmax(1).numpy()
    true = labels.numpy()
    conf = confusion_matrix(true, pred, len(CIFAR10_CLASSES))
    out.append(plots.plot_per_class(conf, CIFAR10_CLASSES, run_dir / "per_class.png"))
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
    results = {"final_test_acc": float((pred == true).mean()), "best_test_acc": max(e["test_acc"] for e in history["epochs"]),
               "epochs": len(history["epochs"]), "train_seconds": history.get("total_seconds"),
               "per_class_acc": {c: float(conf[i, i] / max(conf[i].sum(), 1)) for i, c in enumerate(CIFAR10_CLASSES)}}
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    log(f"report: {len(out)} figures in {run_dir}")
    return out


def results_table(run_dir: Path) -> str:
    """The run's headline numbers as a Markdown table (config, LRs, accuracy, time)."""
    run_dir = Path(run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    hist = json.loads((run_dir / "history.json").read_text())
    res = cfg["resolved"]
    best = max(hist["epochs"], key=lambda e: e["test_acc"])
    rows = [("network", f"ResNet-9, width {cfg['width']:g} ({res.get('parameters', 0):,} parameters)"),
            ("data", f"{res['train_images']:,} train / {res['test_images']:,} test images"),
            ("device", res["device"]),
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
