"""helpers.run.Run: the one rule for a folder that exists (the same for the notebook, ``train`` and
sweeps), the LRs resolved once, the run's record, a finished run, what a CPU run says first."""
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


# re-running before the first checkpoint ---------------------------------------------------------
@pytest.mark.slow
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


# changed parameters against a checkpoint ----------------------------------------------------
@pytest.mark.slow
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


@pytest.mark.slow
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



TRAIN = ["--epochs", "2", "--max-at-epoch", "1", "--width", "0.0625", "--batch-size", "32", "--lr-find-iters", "20",
         "--no-progress", "--device", "cpu", "--no-report"]


@pytest.mark.slow
def test_train_into_a_folder_follows_the_one_rule(class_tree, tmp_path, monkeypatch, capsys):
    """``train --out`` as the notebook and sweeps: a checkpoint of the same settings is continued,
    one of other settings refused in one line, a folder of pre-training files started again."""
    from conftest import Watch, observe_runs

    folder = tmp_path / "run"
    interrupted_run(class_tree, folder, monkeypatch)
    capsys.readouterr()
    assert main(["train", "--data-dir", str(class_tree), "--out", str(folder), *TRAIN, "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SEED 0 -> 1" in err and f"--resume {folder}" in err
    watch = Watch()
    observe_runs(monkeypatch, watch)
    assert main(["train", "--data-dir", str(class_tree), "--out", str(folder), *TRAIN]) == 0
    assert watch.started == [2]  # continued, not started again
    assert "holds a checkpoint after epoch 1" in capsys.readouterr().out
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "triangle.png").write_bytes(b"")  # what a run writes before its first epoch: started again
    (fresh / "summary.txt").write_text("old")
    assert main(["train", "--data-dir", str(class_tree), "--out", str(fresh), *TRAIN]) == 0
    assert watch.started == [2, 1, 2] and "Total params" in (fresh / "summary.txt").read_text()


@pytest.mark.slow
def test_a_finished_run_is_not_trained_again(class_tree, tmp_path, monkeypatch):
    from conftest import Watch, observe_runs

    folder = tmp_path / "run"
    assert main(["train", "--data-dir", str(class_tree), "--out", str(folder), *TRAIN]) == 0
    history = (folder / "history.json").read_text()
    watch = Watch()
    observe_runs(monkeypatch, watch)
    said = []
    with Run.open(cfg_for(class_tree, folder, report=False), log=said.append) as run:
        assert run.fit()["final_test_acc"] == json.loads(history)["final_test_acc"]
    assert watch.started == [] and (folder / "history.json").read_text() == history  # nothing rewritten
    assert any("finished run (2 epochs): nothing left to train" in s for s in said)


def test_the_settings_are_frozen_and_the_record_is_the_runs_own(class_tree, tmp_path):
    import dataclasses

    cfg = cfg_for(class_tree, tmp_path / "r", lr_min=0.05, lr_max=0.4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr_max = 1.0
    with Run.open(cfg, log=lambda s: None) as run:
        assert run.cfg == cfg and run.record == {} and run.lrs() == (0.05, 0.4)
        assert (tmp_path / "r" / ".lock").is_file()  # taken once, by opening
    assert not (tmp_path / "r" / ".lock").exists()  # released once, by closing
