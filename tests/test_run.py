"""helpers.run.Run, the notebook's run object, and the notebook as people run it (papermill,
re-runs, changed parameters, small data, errors in one line)."""
import json

import pytest
import torch

from conftest import fail_in_epoch, pretend_cpu
from helpers.cli import main
from helpers.config import TrainConfig
from helpers.errors import UserError
from helpers.run import Run

TINY = dict(epochs=2, max_at_epoch=1, batch_size=32, width=0.0625, lr_find_iters=20, device="cpu", progress=False)


def cfg_for(tree, out, **kw) -> TrainConfig:
    return TrainConfig(data_dir=str(tree), out=str(out), **{**TINY, **kw})


def interrupted_run(tree, folder, monkeypatch) -> None:
    """A CLI run killed in epoch 2: a checkpoint after epoch 1."""
    with monkeypatch.context() as m:
        fail_in_epoch(m, 2, KeyboardInterrupt())
        assert main(["train", "--data-dir", str(tree), "--out", str(folder), "--epochs", "2", "--max-at-epoch", "1",
                     "--width", "0.0625", "--batch-size", "32", "--lr-find-iters", "20", "--no-progress",
                     "--device", "cpu", "--no-report"]) == 130


# 1. papermill on a data folder too small for the schedule: one line, nothing trained ----------
# 2. re-running before the first checkpoint ----------------------------------------------------
def test_a_folder_with_only_pre_training_files_is_reused_and_a_foreign_one_refused(class_tree, tmp_path):
    out = tmp_path / "nb"
    run = Run.open(cfg_for(class_tree, out), log=lambda s: None)
    run.augmentation(), run.triangle(), run.range_test(), run.schedule()
    assert {"augmentation.png", "triangle.png", "lr_find.json", "lr_find.png", "schedule.png"} <= \
        {p.name for p in out.iterdir()}
    saved = (out / "lr_find.json").read_text()
    again = Run.open(cfg_for(class_tree, out), log=lambda s: None)  # "Run all" again: reused
    assert not again.resuming
    logs = []
    again.log = logs.append
    again.range_test()
    assert (out / "lr_find.json").read_text() == saved and any("not run again" in m for m in logs)
    other = Run.open(cfg_for(class_tree, out, width=0.125), log=logs.append)  # other settings: a new test
    other.range_test()
    assert json.loads((out / "lr_find.json").read_text())["settings"]["width"] == 0.125
    assert any("run with other settings" in m for m in logs)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds files that are not a run's \(notes.txt\)"):
        Run.open(cfg_for(class_tree, out), log=lambda s: None)
    assert (out / "notes.txt").read_text() == "mine"


# 3. changed parameters against a checkpoint ----------------------------------------------------
def test_a_checkpoint_with_other_parameters_is_refused_listing_them(class_tree, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    interrupted_run(class_tree, folder, monkeypatch)
    with pytest.raises(UserError) as e:
        Run.open(cfg_for(class_tree, folder, width=0.125, lr_max=0.3), log=lambda s: None)
    assert "epoch 1 of 2 done" in str(e.value) and "WIDTH 0.0625 -> 0.125" in str(e.value)
    assert "LR_MAX 'auto' -> 0.3" in str(e.value) and "\n" not in str(e.value)
    run = Run.open(cfg_for(class_tree, folder, report=False), log=lambda s: None)  # the same: continued
    assert run.resuming and run.cfg.lr_max == "auto"  # the settings as asked; the LRs in force are the run's
    saved = json.loads((folder / "config.json").read_text())
    assert run.lrs() == (saved["lr_min"], saved["lr_max"]) and isinstance(saved["lr_max"], float)
    history = run.fit()
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]


def test_the_schedule_cell_draws_the_runs_own_lrs(class_tree, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    interrupted_run(class_tree, folder, monkeypatch)
    run = Run.open(cfg_for(class_tree, folder), log=lambda s: None)
    saved = json.loads((folder / "config.json").read_text())
    assert run.lrs() == (saved["lr_min"], saved["lr_max"])
    run.schedule()
    assert (folder / "schedule.png").stat().st_size > 1000


# 4. the banner reads the run's record ----------------------------------------------------------
# 5. errors in one line ----------------------------------------------------------------------------
# the lock: one writer per run folder --------------------------------------------------------------
# the README and --help say what the code does ------------------------------------------------------


@pytest.mark.parametrize("hardware,dtype,fp32_epoch,expected", [
    (True, None, 100.0, "this CPU computes bf16 in hardware: --precision bf16 (PRECISION = \"bf16\" in the notebook) "
                        "trains an epoch in about 30 s (fp32: about 100 s)"),
    (True, None, None, "this CPU computes bf16 in hardware: --precision bf16 (PRECISION = \"bf16\" in the notebook) "
                       "trains an epoch in about 30 s"),
    (True, torch.bfloat16, None, None),
    (False, None, 100.0, None),
    (False, torch.bfloat16, None, "this CPU emulates bf16: slower than fp32 (fp16 about 20x at width 1), for "
                                  "checking a GPU's numerics; --precision auto picks the fastest"),
    (True, torch.float16, None, "this CPU emulates fp16: slower than fp32 (fp16 about 20x at width 1), for "
                                "checking a GPU's numerics; --precision auto picks the fastest")])
def test_a_cpu_run_names_the_faster_precision_or_the_emulated_one(monkeypatch, hardware, dtype, fp32_epoch, expected):
    from helpers import run as R
    from helpers.train import Precision

    pretend_cpu(monkeypatch, avx512_bf16=hardware)
    timed = []
    monkeypatch.setattr(R, "estimate_epoch_seconds", lambda m, b, s, p: timed.append((b, s, p.dtype)) or 30.0)
    lines = R.cpu_precision_line(Precision("cpu", dtype), torch.nn.Linear(2, 2), 512, 97, fp32_epoch)
    assert lines == ([expected] if expected else [])
    assert timed == ([(512, 97, torch.bfloat16)] if "computes" in (expected or "") else [])
