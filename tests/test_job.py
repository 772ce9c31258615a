"""helpers.job.Run, the notebook's run object, and the notebook as people run it (papermill,
re-runs, changed parameters, small data, errors in one line)."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import fail_in_epoch, write_class_folders
from helpers import checkpoint as ckpt
from helpers.cli import main
from helpers.config import TrainConfig
from helpers.errors import UserError
from helpers.job import Run
from helpers.notebook import NOTEBOOK, error_line
from helpers.report import run_banner

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
def test_papermill_quick_on_one_step_an_epoch_is_one_clear_error_and_trains_nothing(tmp_path):
    import papermill

    tree = write_class_folders(tmp_path / "small" / "cifar10", 600, 50)  # QUICK: 1 step of 512 an epoch
    out = tmp_path / "runs" / "pm"
    with pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                   parameters={"DATA_DIR": str(tree), "OUT": str(out), "QUICK": True, "DEVICE": "cpu"},
                                   cwd=str(NOTEBOOK.parent), progress_bar=False)
    assert e.value.ename == "UserError" and "the schedule needs at least one step to rise" in e.value.evalue
    assert e.value.traceback == [f"error: {e.value.evalue}"]  # the message, not a traceback
    folder = Path(f"{out}-quick")
    assert not (folder / "checkpoint.pt").exists() and not (folder / "config.json").exists()
    assert not out.exists()  # QUICK runs go to a folder of their own


def test_papermill_runs_the_committed_notebook_quick(class_tree, tmp_path):
    import papermill

    out = tmp_path / "pm"
    nb = papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                    parameters={"DATA_DIR": str(class_tree), "OUT": str(out), "QUICK": True,
                                                "BATCH_SIZE": 32, "DEVICE": "cpu"},
                                    cwd=str(NOTEBOOK.parent), progress_bar=False)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    cfg = json.loads((Path(f"{out}-quick") / "config.json").read_text())
    assert cfg["epochs"] == 2 and cfg["width"] == 0.0625
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 8


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
    with pytest.raises(UserError, match=r"holds files that are not this notebook's run \(notes.txt\)"):
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
    assert run.resuming and run.cfg.lr_max != "auto"  # the run's own settings, LRs resolved
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
def test_banner_names_the_device_that_ran_not_todays(tmp_path):
    cfg = TrainConfig(out=str(tmp_path), data_dir="data", width=1.0,
                      resolved={"device_name": "Tesla T4", "precision": "fp16 + GradScaler"})
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))
    text = run_banner(TrainConfig(), tmp_path)
    assert "Tesla T4, fp16 + GradScaler" in text and "CPU" not in text
    assert "data folder `data`" in text and "data data" not in text
    assert "the run has not started" in run_banner(TrainConfig(device="cpu"), tmp_path / "new")


# 5. errors in one line ----------------------------------------------------------------------------
def test_user_errors_render_as_one_line_in_ipython_and_colours_are_stripped():
    assert UserError("bad WIDTH")._render_traceback_() == ["error: bad WIDTH"]
    text = "Traceback\n\x1b[31mUserError\x1b[39m: x\n\x1b[0;31merror: --width must be a positive number\x1b[0m\n"
    assert error_line(text) == "--width must be a positive number"


def test_headless_notebook_error_is_one_clean_line(capsys):
    assert main(["notebook", "--set", "WIDTH=abc", "--output", "/nonexistent/x.ipynb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "WARNING" not in err
    assert err.startswith("error: the notebook stopped at an error: --width must be a positive number")


def test_a_width_with_too_few_channels_is_refused(capsys):
    assert main(["train", "--width", "0.001", "--data-dir", "nowhere"]) == 2
    assert "leaves the first layer fewer than 4 channels" in capsys.readouterr().err
    from helpers.config import MIN_WIDTH
    from helpers.model import channels

    assert min(channels(MIN_WIDTH)) >= 4 and min(channels(MIN_WIDTH * 0.99)) < 4


def test_summary_is_of_a_cpu_copy(monkeypatch):
    import torchsummary

    from helpers.model import ResNet9, summary_text

    seen = {}
    monkeypatch.setattr(torchsummary, "summary", lambda m, size, device: seen.update(m=m, device=device))
    model = ResNet9(width=0.125)
    summary_text(model)
    assert seen["device"] == "cpu" and seen["m"] is not model and not seen["m"].training and model.training


# the lock: one writer per run folder --------------------------------------------------------------
def _lock(folder: Path, **h) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ckpt.LOCK).write_text(json.dumps(h))


def test_a_second_writer_is_refused_in_one_line_and_a_dead_ones_lock_taken_over(tmp_path, monkeypatch, capsys):
    host = socket.gethostname()
    folder = tmp_path / "run"
    interrupted_run(write_class_folders(tmp_path / "d" / "cifar10", 100, 50), folder, monkeypatch)
    assert not (folder / ckpt.LOCK).exists()  # released when the run stopped
    capsys.readouterr()
    _lock(folder, host=host, pid=os.getppid(), time=time.time())  # a live process on this machine
    assert main(["train", "--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: another process writes to {folder} (pid {os.getppid()}") and err.count("\n") == 1
    _lock(folder, host="other-colab-vm", pid=1, time=time.time() - 60)  # another machine, a minute ago
    with pytest.raises(UserError, match="on other-colab-vm"):
        ckpt.RunLock(folder).acquire()
    _lock(folder, host="other-colab-vm", pid=1, time=time.time() - ckpt.STALE_SECONDS - 1)  # left behind
    assert ckpt.RunLock(folder).acquire() is True
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _lock(folder, host=host, pid=dead.pid, time=time.time())
    lock = ckpt.RunLock(folder)
    assert lock.acquire() is True and lock.acquire() is False  # taken over; then ours already
    lock.release()
    assert not (folder / ckpt.LOCK).exists()


# the README and --help say what the code does ------------------------------------------------------
def test_the_design_docs_module_table_names_every_module():
    root = Path(__file__).parents[1]
    design = (root / "docs" / "DESIGN.md").read_text()
    table = design[design.index("## What is in the package"):design.index("## Design notes")]
    missing = [p.name for p in (root / "helpers").glob("*.py")
               if not p.name.startswith("__") and f"`{p.name}`" not in table]
    assert not missing, f"docs/DESIGN.md's module table lacks {missing}"


def test_lr_rule_options_list_the_rules_config_holds(capsys):
    from helpers.config import LR_MAX_RULES, LR_MIN_RULES

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"one of {', '.join(LR_MIN_RULES)}" in text and f"one of {', '.join(LR_MAX_RULES)}" in text
