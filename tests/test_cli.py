"""The command line end to end, and one clear line for every bad input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import main

TINY = ["--width", "0.0625", "--batch-size", "64", "--no-progress", "--device", "cpu"]


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data-dir", str(data), "--out", str(out), "--epochs", "2", "--max-at-epoch", "1",
            "--lr-min", "0.05", "--lr-max", "0.4", *TINY, *extra]


@pytest.mark.slow
def test_train_end_to_end(class_tree, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(class_tree, out)) == 0
    printed = capsys.readouterr().out
    assert "final test accuracy:" in printed
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["epochs"] == 2 and cfg["batch_size"] == 64 and cfg["lr_max"] == 0.4 and cfg["width"] == 0.0625
    assert cfg["resolved"]["train_images"] == 200 and cfg["resolved"]["device"] == "cpu"
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["epochs"]) == 2 and len(hist["lr"]) == 2 * (200 // 64)
    assert hist["lr"][0] == pytest.approx(0.05) and hist["lr"][-1] == pytest.approx(0.05)
    assert f"{hist['final_test_acc'] * 100:.2f}%" in printed
    assert (out / "checkpoint.pt").stat().st_size > 0 and "Total params" in (out / "summary.txt").read_text()
    for png in ("schedule.png", "curves.png", "augmentation.png", "misclassified.png", "per_class.png",
                "gradcam.png", "triangle.png"):
        assert (out / png).stat().st_size > 1000, png


def test_triangle_command(tmp_path):
    out = tmp_path / "tri.png"
    assert main(["triangle", "--out", str(out), "--step-size", "50", "--cycles", "2"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def err(capsys, argv) -> str:
    assert main(argv) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), cap.err
    return lines[0]


@pytest.mark.parametrize("extra,needle", [
    (["--epochs", "0"], "--epochs must be a positive"),
    (["--max-at-epoch", "2"], "--max-at-epoch must lie strictly between 0 and --epochs"),
    (["--max-at-epoch", "0"], "--max-at-epoch must lie strictly between 0 and --epochs"),
    (["--lr-min", "0.5"], "--lr-min (0.5) must be smaller than --lr-max (0.4); lower --lr-min"),
    (["--batch-size", "0"], "--batch-size must be a positive"),
    (["--batch-size", "4096"], "larger than the training set"),
    (["--device", "tpu"], "unknown --device 'tpu'"),
])
def test_bad_settings(class_tree, tmp_path, capsys, extra, needle):
    out = tmp_path / "run"
    assert needle in err(capsys, train_args(class_tree, out) + extra)
    assert not (out / "history.json").exists()  # nothing that looks like a result


def test_missing_data_folder_without_download(tmp_path, capsys):
    line = err(capsys, ["train", "--data-dir", str(tmp_path / "none"), "--no-download", *TINY,
                        "--out", str(tmp_path / "r")])
    assert "no CIFAR-10 in" in line and "--data-dir" in line


def test_existing_run_folder_is_never_overwritten(class_tree, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert "holds files that are not a run's (precious.txt)" in err(capsys, train_args(class_tree, out))
    assert (out / "precious.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1


def test_unwritable_output_folder(class_tree, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "cannot write to" in err(capsys, train_args(class_tree, blocker / "run"))


def test_resume_without_checkpoint(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert "no checkpoint in" in err(capsys, ["train", "--resume", str(tmp_path / "empty")])


def test_offline_download(tmp_path, capsys, monkeypatch):
    import urllib.error

    import helpers.data as data

    def offline(*a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(data, "_torchvision_split", offline)
    line = err(capsys, ["train", "--data-dir", str(tmp_path / "dl"), "--out", str(tmp_path / "r"), *TINY])
    assert "could not download CIFAR-10" in line and "--data-dir" in line
    assert not (tmp_path / "r").exists()


def test_bad_image_in_tree(tmp_path, capsys):
    from conftest import write_class_folders

    root = write_class_folders(tmp_path / "c", 20, 10)
    (root / "train" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    line = err(capsys, train_args(root, tmp_path / "r"))
    assert "broken.jpg" in line and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_errors_print_no_traceback_in_a_real_process(tmp_path):
    r = subprocess.run([sys.executable, "-m", "helpers", "train", "--epochs", "-1", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, cwd=Path(__file__).parents[1],
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert r.returncode == 2
    assert r.stderr.strip() == "error: --epochs must be a positive integer, got -1"


@pytest.mark.slow
def test_divergence_keeps_the_last_good_checkpoint(class_tree, tmp_path, capsys, monkeypatch):
    import torch

    from conftest import fail_in_epoch
    from helpers.train import Diverged

    fail_in_epoch(monkeypatch, 2, Diverged("training diverged at epoch 2, step 3: loss is nan at lr 0.4"))
    out = tmp_path / "run"
    line = err(capsys, train_args(class_tree, out))
    assert "diverged at epoch 2, step 3" in line and "lr 0.4" in line
    assert f"last good checkpoint (epoch 1) stays in {out}" in line
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 1
    assert len(json.loads((out / "history.json").read_text())["epochs"]) == 1


@pytest.mark.parametrize("damage,needle", [("rename_class", "class folders must be the ten CIFAR-10 classes"),
                                           ("big_image", "32x32 RGB")])
def test_bad_class_tree_from_the_command_line(tmp_path, capsys, damage, needle):
    from PIL import Image

    from conftest import write_class_folders

    root = write_class_folders(tmp_path / "c", 20, 10)
    if damage == "rename_class":
        (root / "test" / "cat").rename(root / "test" / "kitten")
    else:
        Image.new("RGB", (48, 48)).save(root / "train" / "dog" / "huge.png")
    assert needle in err(capsys, train_args(root, tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_lr_rule_options_list_the_rules_config_holds(capsys):
    from helpers.config import LR_MAX_RULES, LR_MIN_RULES

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"one of {', '.join(LR_MIN_RULES)}" in text and f"one of {', '.join(LR_MAX_RULES)}" in text
