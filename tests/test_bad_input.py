"""Every bad input: exactly one line on stderr, exit status 2, and no file created or changed."""
import os
import pickle
from pathlib import Path

import pytest

from conftest import fail_in_epoch, write_class_folders, write_torchvision_copy
from helpers.cli import main
from helpers.data import load_cifar10

TINY = ["--width", "0.0625", "--batch-size", "32", "--no-progress", "--device", "cpu"]


def snapshot(*folders: Path) -> dict:
    """Every file's size and modification time, and every folder (a folder's own mtime moves
    when something is created and removed again inside it: only its presence counts)."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else "folder"
            for f in folders if f.exists() for p in [f, *f.rglob("*")]}


def one_line_exit_2_nothing_written(capsys, argv, *folders: Path) -> str:
    before = snapshot(*folders)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert snapshot(*folders) == before
    return lines[0]


@pytest.fixture
def tree(tmp_path):
    root = write_class_folders(tmp_path / "data", 64, 32)
    load_cifar10(root)  # its decoded-data cache exists before the snapshot
    return root


def train(tree, out, *extra):
    return ["train", "--data-dir", str(tree), "--out", str(out), "--epochs", "2", "--max-at-epoch", "1", *TINY,
            *extra]


@pytest.mark.parametrize("extra,needle", [
    (["--epochs", "abc"], "argument --epochs: invalid int value: 'abc'"),
    (["--batch-size", "1.5"], "argument --batch-size: invalid int value"),
    (["--lr-max", "fast"], "argument --lr-max: expected a number or 'auto'"),
    (["--momentum", "0"], "--momentum must be above 0 with Nesterov"),
    (["--momentum", "1"], "--momentum must be a number in [0, 1)"),
    (["--lr-max", "nan"], "--lr-max must be a positive number or 'auto', got nan"),
    (["--lr-max", "inf"], "--lr-max must be a positive number or 'auto', got inf"),
    (["--lr-min", "-0.1"], "--lr-min must be a positive number"),
    (["--weight-decay=-1e-4"], "--weight-decay must be a number >= 0"),
    (["--num-workers", "-1"], "--num-workers must be an integer >= 0"),
    (["--limit-train", "-5"], "--limit-train must be an integer >= 0"),
    (["--limit-test", "-5"], "--limit-test must be an integer >= 0"),
    (["--width", "inf"], "--width must be a positive number"),
    (["--max-at-epoch", "nan"], "--max-at-epoch must lie strictly between 0 and --epochs (2), got nan"),
    (["--lr-find-end", "nan"], "--lr-find-start (0.0001) must be a positive number below --lr-find-end (nan)"),
    (["--lr-max-rule", "biggest"], "--lr-max-rule must be one of"),
])
def test_bad_settings_of_train(tree, tmp_path, capsys, extra, needle):
    line = one_line_exit_2_nothing_written(capsys, train(tree, tmp_path / "run", *extra), tmp_path)
    assert needle in line


def test_lr_find_never_overwrites(tree, tmp_path, capsys):
    out = tmp_path / "lf"
    out.mkdir()
    (out / "lr_find.json").write_text('{"earlier": true}')
    line = one_line_exit_2_nothing_written(capsys, ["lr-find", "--data-dir", str(tree), "--out", str(out), *TINY],
                                           tmp_path)
    assert "already exists and is not empty" in line and (out / "lr_find.json").read_text() == '{"earlier": true}'


def test_lr_find_checks_it_can_write_before_the_test(tree, tmp_path, capsys, monkeypatch):
    import helpers.lr_finder as lr_finder

    monkeypatch.setattr(lr_finder, "find_lrs", lambda *a, **k: pytest.fail("the range test ran"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = one_line_exit_2_nothing_written(capsys, ["lr-find", "--data-dir", str(tree), "--out",
                                                    str(blocker / "lf"), *TINY], tmp_path)
    assert "cannot write" in line


def test_train_folder_without_test_folder_is_not_a_download(tmp_path, capsys, monkeypatch):
    import helpers.data as data

    monkeypatch.setattr(data, "_torchvision_split", lambda *a, **k: pytest.fail("tried to download"))
    root = write_class_folders(tmp_path / "half", 20, 10)
    import shutil
    shutil.rmtree(root / "test")
    line = one_line_exit_2_nothing_written(capsys, train(root, tmp_path / "run"), tmp_path)
    assert "has train/ but no test/" in line


@pytest.mark.slow
def test_corrupt_torchvision_copy(tmp_path, capsys):
    root = write_torchvision_copy(tmp_path / "tv")
    (root / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"\x80\x04 not a pickle")
    line = one_line_exit_2_nothing_written(capsys, train(root, tmp_path / "run"), tmp_path)
    assert "cifar-10-batches-py is incomplete or corrupt" in line and "delete that folder" in line


@pytest.mark.parametrize("cause", [OSError(28, "No space left on device"), PermissionError(13, "Permission denied"),
                                   RuntimeError("File not found or corrupted.")])
def test_download_failure_names_its_cause_and_leaves_nothing(tmp_path, capsys, monkeypatch, cause):
    import helpers.data as data

    def fail(data_dir, train, download):
        (Path(data_dir) / "cifar-10-python.tar.gz").write_bytes(b"half a download")
        raise cause
    monkeypatch.setattr(data, "_torchvision_split", fail)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep")
    for data_dir in (tmp_path / "new" / "data", existing):
        line = one_line_exit_2_nothing_written(capsys, train(data_dir, tmp_path / "run"), tmp_path)
        assert "could not download CIFAR-10" in line and str(cause.args[-1]) in line
    assert not (tmp_path / "new").exists() and [p.name for p in existing.iterdir()] == ["mine.txt"]


def test_schedule_with_too_few_steps(tmp_path, capsys):
    root = write_class_folders(tmp_path / "small", 40, 10)  # 1 step an epoch at batch 32
    load_cifar10(root)
    line = one_line_exit_2_nothing_written(capsys, train(root, tmp_path / "run"), tmp_path)
    assert "at least one step to rise and one to fall" in line


@pytest.mark.slow
def test_fixed_lr_max_sets_the_auto_lr_min(tree, tmp_path):
    """LRMIN 'auto' is read off the curve for the user's LRMAX, not the range test's."""
    import json

    out = tmp_path / "run"
    assert main(train(tree, out, "--lr-max", "0.002", "--lr-min-rule", "max/8", "--lr-find-iters", "20",
                      "--no-report")) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["lr_max"] == 0.002 and cfg["lr_min"] == pytest.approx(0.002 / 8)


@pytest.mark.slow
def test_range_test_gives_the_model_back_in_its_mode(split):
    import torch

    from helpers.config import TrainConfig
    from helpers.data import Split
    from helpers.loaders import BatchedTrainLoader
    from helpers.lr_finder import range_test
    from helpers.model import ResNet9
    from helpers.train import Precision

    model = ResNet9(width=0.0625).eval()
    loader = BatchedTrainLoader(Split(split.x[:128], split.y[:128]), 32, torch.device("cpu"))
    range_test(model, loader, torch.device("cpu"), Precision("cpu"), TrainConfig(lr_find_iters=10),
               log=lambda s: None)
    assert not model.training


@pytest.mark.slow
@pytest.mark.parametrize("stop_in_epoch,expect", [(1, "nothing to resume"), (2, "epoch 1 is saved")])
def test_ctrl_c_says_what_is_saved(tree, tmp_path, capsys, monkeypatch, stop_in_epoch, expect):
    fail_in_epoch(monkeypatch, stop_in_epoch, KeyboardInterrupt())
    out = tmp_path / "run"
    assert main(train(tree, out, "--lr-min", "0.05", "--lr-max", "0.4")) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0]
    if stop_in_epoch == 2:
        assert f"--resume {out}" in err[0]


def test_atomic_text_write_is_flushed_to_disk(tmp_path, monkeypatch):
    from helpers import checkpoint

    synced = []
    real = os.fsync
    monkeypatch.setattr(checkpoint.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    checkpoint.atomic_write_text("{}", tmp_path / "a.json")
    assert synced and (tmp_path / "a.json").read_text() == "{}"


def test_albumentations_worker_init_pickles(split):
    import torch

    from helpers.loaders import AlbumentationsTrainLoader

    loader = AlbumentationsTrainLoader(split, 32, torch.device("cpu"), num_workers=0)
    import helpers.loaders as loaders

    init = loaders._ReseedWorker(loader.dataset.transform, 5)
    again = pickle.loads(pickle.dumps(init))
    again(0)  # reseeds its copy like a spawned worker would
    batches = loader.epoch(0)
    assert next(batches)[0].shape == (32, 3, 32, 32)
