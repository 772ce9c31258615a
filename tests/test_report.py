import json

import numpy as np
import pytest
import torch

from helpers import plots
from helpers.cli import main
from helpers.config import CIFAR10_CLASSES, TrainConfig
from helpers.gradcam import gradcam_maps
from helpers.lr_finder import RangeTestResult
from helpers.model import ResNet9
from helpers.train import confusion_matrix
from helpers.report import augmentation_samples, run_banner


def is_png(path):
    data = path.read_bytes()
    return data[:4] == b"\x89PNG" and len(data) > 2000


@pytest.mark.slow
@pytest.mark.parametrize("layer,side", [("layer3", 4), ("layer2", 8)])
def test_gradcam_shape_range_and_mode_restored(layer, side):
    torch.manual_seed(0)
    model = ResNet9(width=0.125)
    model.train()
    x = torch.randn(3, 3, 32, 32)
    maps = gradcam_maps(model, x, [0, 1, 2], layer)
    assert maps.shape == (3, 32, 32) and maps.min() >= 0 and maps.max() <= 1
    assert model.training
    model.eval()
    gradcam_maps(model, x, [0, 1, 2], layer)
    assert not model.training
    seen = {}

    def record(module, inputs, output):
        seen["side"] = output.shape[-1]
    hook = getattr(model, layer).register_forward_hook(record)
    model(x)
    hook.remove()
    assert seen["side"] == side  # layer3 is the 4x4 map, layer2 the 8x8 one


def test_gradcam_rejects_unknown_layer():
    with pytest.raises(ValueError, match="layer3"):
        gradcam_maps(ResNet9(width=0.125), torch.randn(1, 3, 32, 32), [0], "fc")


@pytest.mark.slow
def test_each_figure_function_writes_an_image(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    hist = {"epochs": [{"epoch": e, "train_loss": 2 / e, "test_loss": 2.1 / e, "train_acc": e / 4,
                        "test_acc": e / 5} for e in range(1, 4)]}
    lrs = np.logspace(-4, 1, 50)
    result = RangeTestResult(list(lrs), list(2.3 - np.sin(np.linspace(0, 3, 50))), 0.3, 0.01, "r",
                             {"steepest": 0.01, "valley": 0.02}, "", 1.0, 64)
    conf = confusion_matrix(rng.integers(0, 10, 300), rng.integers(0, 10, 300))
    cams = rng.random((4, 32, 32)).astype(np.float32)
    written = [
        plots.plot_triangle(tmp_path / "t.png", step_size=10),
        plots.plot_lr_find(result, tmp_path / "lf.png"),
        plots.plot_schedule(np.r_[np.linspace(0.05, 0.4, 10), np.linspace(0.4, 0.05, 20)], 5, tmp_path / "s.png", 2),
        plots.plot_curves(hist, tmp_path / "c.png"),
        plots.plot_augmentation(imgs, augmentation_samples(imgs, 2), tmp_path / "a.png"),
        plots.plot_misclassified(imgs, [0, 1, 2, 3], [1, 2, 3, 4], CIFAR10_CLASSES, tmp_path / "m.png"),
        plots.plot_per_class(conf, CIFAR10_CLASSES, tmp_path / "p.png"),
        plots.plot_gradcam(imgs / 255.0, cams, cams, [0, 1, 2, 3], [1, 2, 3, 4], CIFAR10_CLASSES, tmp_path / "g.png"),
    ]
    assert all(is_png(p) for p in written)


@pytest.mark.slow
def test_report_command_renders_a_run(class_tree, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(class_tree), "--out", str(out), "--epochs", "1", "--max-at-epoch",
                 "0.5", "--lr-min", "0.05", "--lr-max", "0.4", "--width", "0.0625", "--batch-size", "64",
                 "--no-progress", "--no-report", "--device", "cpu"]) == 0
    assert not (out / "curves.png").exists()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("schedule", "curves", "augmentation", "misclassified", "per_class", "gradcam", "triangle"):
        assert is_png(out / f"{name}.png") and f"{name}.png" in printed
    res = json.loads((out / "results.json").read_text())
    assert set(res["per_class_acc"]) == set(CIFAR10_CLASSES)
    assert res["final_test_acc"] == pytest.approx(json.loads((out / "history.json").read_text())["final_test_acc"])


def test_worst_mistakes_spread_over_classes_most_confident_first():
    from helpers.report import worst_mistakes

    true = np.array([0, 0, 0, 1, 1, 2, 2])
    pred = np.array([1, 2, 0, 0, 0, 2, 2])
    conf = np.array([0.6, 0.9, 0.99, 0.7, 0.8, 0.5, 0.5])
    assert worst_mistakes(true, pred, conf, 10).tolist() == [1, 4, 0, 3]
    assert worst_mistakes(true, pred, conf, 2).tolist() == [1, 4]


def test_banner_names_the_device_that_ran_not_todays(tmp_path):
    cfg = TrainConfig(out=str(tmp_path), data_dir="data", width=1.0)
    record = {"device_name": "Tesla T4", "precision": "fp16 + GradScaler"}
    (tmp_path / "config.json").write_text(json.dumps({**cfg.to_dict(), "resolved": record}))
    text = run_banner(TrainConfig(), tmp_path)
    assert "Tesla T4, fp16 + GradScaler" in text and "CPU" not in text
    assert "data folder `data`" in text and "data data" not in text
    assert "the run has not started" in run_banner(TrainConfig(device="cpu"), tmp_path / "new")


def test_the_notebooks_banner_warns_before_a_full_network_trains_on_a_cpu():
    from helpers.report import run_banner

    assert "No GPU: on a CPU this network trains for hours" in run_banner(TrainConfig(device="cpu"))
    assert "WIDTH = 0.125 is the CPU proxy" in run_banner(TrainConfig(device="cpu", width=0.5))
    assert "No GPU" not in run_banner(TrainConfig(device="cpu", width=0.125))
