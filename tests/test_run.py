"""helpers.run.Run: the one rule for a folder that exists (the same for the notebook, ``train`` and
sweeps), the LRs resolved once, the run's record, a finished run, what a CPU run says first."""
import json
import re
from pathlib import Path

import pytest
import torch

from conftest import fail_in_epoch, numbered_split, pretend_cpu
from helpers.cli import main
from helpers.config import TrainConfig
from helpers.errors import Interrupted, UserError
from helpers.run import Run

TINY = dict(epochs=2, max_at_epoch=1, batch_size=32, width=0.0625, lr_find_iters=20, device="cpu", progress=False)


def cfg_for(tree, out, **kw) -> TrainConfig:
    return TrainConfig(data_dir=str(tree), out=str(out), **{**TINY, **kw})


def spy(monkeypatch, got: dict, name: str, fake=None) -> None:
    """Each call of ``helpers.run``'s ``name`` recorded in ``got[name]`` as (args, kwargs), then made
    (to ``fake`` instead, when given)."""
    import helpers.run as run_module

    real = getattr(run_module, name)
    monkeypatch.setattr(run_module, name, lambda *a, **k: got.setdefault(name, []).append((a, k))
                        or (fake or real)(*a, **k))


def interrupted_run(tree, folder, monkeypatch) -> None:
    """A CLI run killed in epoch 2: a checkpoint after epoch 1."""
    with monkeypatch.context() as m:
        fail_in_epoch(m, 2, KeyboardInterrupt())
        assert main(["train", "--data-dir", str(tree), "--out", str(folder), "--epochs", "2", "--max-at-epoch", "1",
                     "--width", "0.0625", "--batch-size", "32", "--lr-find-iters", "20", "--no-progress",
                     "--device", "cpu", "--no-report"]) == 130


# re-running before the first checkpoint ---------------------------------------------------------
@pytest.mark.slow
def test_a_folder_with_only_pre_training_files_is_reused_and_a_foreign_one_refused(class_tree, tmp_path,
                                                                                    monkeypatch):
    import helpers.lr_finder

    out = tmp_path / "nb"
    run = Run.open(cfg_for(class_tree, out), log=lambda s: None)
    run.augmentation(), run.triangle(), run.schedule()
    first = run.range_test()
    assert {"augmentation.png", "triangle.png", "lr_find.json", "lr_find.png", "schedule.png"} <= \
        {p.name for p in out.iterdir()}
    saved = (out / "lr_find.json").read_text()
    again = Run.open(cfg_for(class_tree, out), log=lambda s: None)  # "Run all" again: reused
    assert not again.resuming
    logs = []
    again.log = logs.append
    assert again.range_test() == first and again.lrs() == run.lrs()
    assert (out / "lr_find.json").read_text() == saved and any("not run again" in m for m in logs)
    loaded = run.data
    monkeypatch.setattr(helpers.lr_finder, "load_data", lambda *a, **k: pytest.fail("the folder was read again"))
    other = Run.open(cfg_for(class_tree, out, width=0.125), data=loaded, log=logs.append)  # other settings: a new test
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


def test_the_cells_draw_what_the_runs_settings_say(class_tree, tmp_path, monkeypatch):
    """Each cell's figure from this run's settings, none left to a default: the seed of the
    augmentation's draws, the schedule's kind and peak, the network's block order."""
    import numpy as np

    from helpers import plots
    from helpers.model import ResNet9, summary_text
    from helpers.report import augmentation_samples
    from helpers.schedule import make_schedule_values

    drawn = {}
    monkeypatch.setattr(plots, "plot_augmentation", lambda sample, aug, path: drawn.update(aug=(sample, aug)) or path)
    monkeypatch.setattr(plots, "plot_schedule", lambda v, n, path, peak: drawn.update(sched=(v, n, peak)) or path)
    cfg = cfg_for(class_tree, tmp_path / "r", epochs=4, max_at_epoch=3, schedule="one_cycle_annealed", seed=7,
                  block_order="page", lr_min=0.05, lr_max=0.4)
    with Run.open(cfg, log=lambda s: None) as run:
        run.augmentation()
        run.schedule()
        summary = run.summary()
    sample, aug = drawn["aug"]
    assert np.array_equal(sample, run.data.train.x[:8]) and np.array_equal(aug, augmentation_samples(sample, 2, 7))
    values, steps, peak = drawn["sched"]
    assert steps == len(run.data.train) // 32 and peak == 3
    assert np.array_equal(values, make_schedule_values("one_cycle_annealed", 0.05, 0.4, 4, steps, 3))
    assert summary == summary_text(ResNet9(width=0.0625, block_order="page"))
    assert summary != summary_text(ResNet9(width=0.0625))


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
    monkeypatch.setattr(R, "estimate_epoch_seconds",
                        lambda m, b, s, p: timed.append((m, b, s, p.device_type, p.dtype)) or 30.0)
    model = torch.nn.Linear(2, 2)
    lines = R.cpu_precision_line(Precision("cpu", dtype), model, 512, 97, fp32_epoch)
    assert lines == ([expected] if expected else [])
    assert timed == ([(model, 512, 97, "cpu", torch.bfloat16)] if "computes" in (expected or "") else [])


@pytest.mark.parametrize("width,said", [
    (0.5, "on this CPU an epoch takes about 90 s, 24 epochs about 36 min (from 3 timed steps); --width 0.125 "
           "trains the CPU proxy of this network, --device cuda a GPU"),
    (0.25, None)])  # the widest proxy: no estimate
def test_a_cpu_run_above_the_proxys_width_says_what_its_epochs_will_take(monkeypatch, width, said):
    from helpers import run as R
    from helpers.data import Cifar10
    from helpers.train import ESTIMATE_STEPS, Precision

    assert (ESTIMATE_STEPS, R.CPU_PROXY_WIDTH) == (3, 0.25)
    pretend_cpu(monkeypatch, avx512_bf16=True)
    monkeypatch.setattr(R, "estimate_epoch_seconds", lambda m, b, s, p: 90.0 if p.dtype is None else 30.0)
    handed = []
    real = R.cpu_precision_line
    monkeypatch.setattr(R, "cpu_precision_line", lambda *a: handed.append(a) or real(*a))
    model, precision = torch.nn.Linear(2, 2), Precision("cpu")
    lines = R.start_lines(TrainConfig(width=width, batch_size=64), torch.device("cpu"), precision,
                          Cifar10(numbered_split(10), numbered_split(10)), Path("r"), model, 97, 24)
    estimates = [line for line in lines if line.startswith("on this CPU")]
    assert estimates == ([said] if said else [])
    assert handed == [(precision, model, 64, 97, 90.0 if said else None)]
    assert lines[-1].endswith("in about 30 s (fp32: about 90 s)" if said else "in about 30 s")



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


def test_a_continued_run_with_its_weight_average_equals_the_uninterrupted_one_bit_for_bit(tmp_path, monkeypatch):
    """In-process and small, so that mutation testing runs it: the model, the weight average, the
    optimizer, the schedule, the loss scale, the RNG and the history all come back from the checkpoint.
    The run continued here was moved, its newest checkpoint damaged (it falls back to the one before),
    and its data is handed over already loaded (as a sweep's worker does)."""
    import os
    import shutil

    from conftest import Watch, observe_runs, write_class_folders
    from helpers.checkpoint import LOCK
    from helpers.data import load_cifar10

    data = write_class_folders(tmp_path / "c", 64, 32)  # 2 steps an epoch
    cfg = lambda out: cfg_for(data, tmp_path / out, epochs=3, lr_min=0.05, lr_max=0.4, ema=0.5, tta="flip",  # noqa: E731
                              report=False, precision="fp32")
    with Run.open(cfg("whole"), log=lambda s: None) as run:
        whole = run.fit()
    with monkeypatch.context() as m:
        fail_in_epoch(m, 3, KeyboardInterrupt())
        with pytest.raises(Interrupted, match="epoch 2 is saved"), Run.open(cfg("cut"), log=lambda s: None) as run:
            run.fit()
    moved = tmp_path / "moved"
    (tmp_path / "cut").rename(moved)
    (moved / "checkpoint.pt").write_bytes(b"cut short")
    os.utime(next(data.glob("train/*/*")), (0, 0))  # the decoded cache is stale: its note goes to the log
    notes = []
    Run.resume(tmp_path / "whole", log=notes.append).close()
    assert any("is stale" in line for line in notes)
    loaded = load_cifar10(data, download=False)
    shutil.rmtree(data)  # the folder is not read again
    locked = Watch(also=lambda epoch: locked.held.append((moved / LOCK).is_file()))
    locked.held = []
    observe_runs(monkeypatch, locked)
    lines = []
    with Run.resume(moved, data=loaded, log=lines.append) as run:
        cut = run.fit()
    assert run.cfg.out == str(moved)  # the settings name the folder where the run now is
    assert locked.started == [2, 3] and locked.held == [True, True] and not (moved / LOCK).exists()
    assert any("continuing from the checkpoint before it, after epoch 1" in line for line in lines)
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["2/3", "3/3"]  # one line an epoch
    drop = lambda h: [{k: v for k, v in e.items() if "seconds" not in k} for e in h["epochs"]]  # noqa: E731
    assert drop(cut) == drop(whole) and cut["lr"] == whole["lr"] and cut["final_test_acc"] == whole["final_test_acc"]
    a, b = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=False) for d in ("whole", "moved"))
    for key in ("model", "ema", "optimizer"):
        flat = lambda s: [t for t in torch.utils._pytree.tree_leaves(s) if isinstance(t, torch.Tensor)]  # noqa: E731
        assert all(torch.equal(x, y) for x, y in zip(flat(a[key]), flat(b[key]))), key


def test_the_extras_that_only_read_the_model_leave_its_training_unchanged_bit_for_bit(tmp_path):
    """TTA and the weight average read the model, never steer it: a run with both trains the
    default's very model, so its plain accuracy is the default's (the ladder counts it as such)."""
    from conftest import write_class_folders

    data = write_class_folders(tmp_path / "c", 64, 32)
    histories, models = {}, {}
    for name, extras in (("plain", {}), ("extras", dict(ema=0.5, tta="flip"))):
        with Run.open(cfg_for(data, tmp_path / name, epochs=2, lr_min=0.05, lr_max=0.4, report=False,
                              precision="fp32", **extras), log=lambda s: None) as run:
            histories[name] = run.fit()
        models[name] = torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)["model"]
    keep = ("train_loss", "train_acc", "test_loss", "test_acc")
    plain, extras = ([{k: e[k] for k in keep} for e in histories[n]["epochs"]] for n in ("plain", "extras"))
    assert plain == extras and "test_acc_ema_tta" in histories["extras"]["epochs"][-1]
    assert all(torch.equal(models["plain"][k], models["extras"][k]) for k in models["plain"])


@pytest.mark.parametrize("full_from", [1, 2])
def test_a_checkpoint_that_cannot_be_written_stops_the_run_naming_the_last_good_epoch(tmp_path, monkeypatch,
                                                                                      full_from):
    import helpers.checkpoint as ckpt
    from conftest import write_class_folders

    data = write_class_folders(tmp_path / "c", 64, 32)
    real = ckpt.save_checkpoint

    def disk_full_after_epoch_1(state, run_dir):
        if state["epoch"] >= full_from:
            raise ckpt.WriteFailed("cannot write checkpoint.pt: no space left on the device")
        real(state, run_dir)

    monkeypatch.setattr(ckpt, "save_checkpoint", disk_full_after_epoch_1)
    out = tmp_path / "r"
    with pytest.raises(ckpt.WriteFailed) as e, Run.open(cfg_for(data, out, lr_min=0.05, lr_max=0.4, report=False),
                                                        log=lambda s: None) as run:
        run.fit()
    assert str(e.value) == "cannot write checkpoint.pt: no space left on the device; " + (
        "epoch 1 is not saved, no epoch was saved" if full_from == 1 else
        f"epoch 2 is not saved, the last good checkpoint is epoch 1: once the folder can be written, continue with "
        f"--resume {out}")
    if full_from == 2:
        assert len(json.loads((out / "history.json").read_text())["epochs"]) == 1  # the history matches the checkpoint


def test_the_cells_show_the_runs_banner_summary_figures_and_results(tmp_path):
    from conftest import write_class_folders
    from helpers.report import results_table, run_banner

    data = write_class_folders(tmp_path / "c", 64, 32)
    cfg = cfg_for(data, tmp_path / "r", lr_min=0.05, lr_max=0.4, report=False)
    with Run.open(cfg, log=lambda s: None) as run:
        assert run.banner() == run_banner(run.cfg, run.run_dir) and str(run.run_dir) in run.banner()
        assert "Total params: 26,340" in run.summary()  # width 1/16's own network
        with pytest.raises(UserError, match=r"curves.png does not exist yet: run the training cell first"):
            run.figure("curves")
        assert "the run has not started" in run.banner()
        run.fit()
        assert "the run has not started" not in run.banner()  # now read from the run's own record
        assert run.results() == results_table(run.run_dir) and "final test accuracy" in run.results()
        (run.run_dir / "curves.png").write_bytes(b"png")
        assert run.figure("curves") == run.run_dir / "curves.png"


@pytest.mark.parametrize("seconds,said", [(119.4, "119 s"), (120, "2 min"), (7199, "120 min"), (7200, "2.0 h"),
                                          (720000, "200.0 h")])
def test_a_cpu_estimate_is_said_in_seconds_minutes_or_hours(seconds, said):
    from helpers.run import _duration

    assert _duration(seconds) == said


def test_the_lrs_a_run_asked_for_come_from_its_record_or_for_an_older_record_from_its_range_test():
    from helpers.run import requested_lrs

    saved = {"lr_min": 0.004, "lr_max": 0.38}
    asked = {"lr_min": "auto", "lr_max": 0.4}
    assert requested_lrs({**saved, "resolved": {"requested": asked, "lr_find": {}}}) == asked
    older = {**saved, "resolved": {"lr_find": {"lr_min": 0.004, "lr_max": 0.5}}}  # recorded before 'requested'
    assert requested_lrs(older) == {"lr_min": "auto", "lr_max": 0.38}  # found and in force: it was 'auto'
    assert requested_lrs({**saved, "resolved": {"requested": {"lr_max": "auto"}}}) == {"lr_max": "auto",
                                                                                        "lr_min": 0.004}
    assert requested_lrs(saved) == saved


def test_a_run_hands_its_settings_to_its_parts_and_records_what_ran_it(tmp_path, monkeypatch):
    """The wiring of ``Run._fit``, seen from the parts it builds: the loaders, the network and the
    start lines get the run's settings, device and folder; ``config.json`` records what ran it."""
    import time

    import helpers.run as run_module
    from conftest import Watch, observe_runs, write_class_folders
    from helpers.model import count_parameters
    from helpers.train import device_name

    got = {}
    for name in ("make_train_loader", "EvalLoader", "build_model", "start_lines"):
        spy(monkeypatch, got, name)
    data = write_class_folders(tmp_path / "c", 64, 32)
    cfg = cfg_for(data, tmp_path / "r", augment="albumentations", num_workers=0, seed=5, epochs=2, lr_min=0.05,
                  lr_max=0.4, report=False, precision="fp32")
    with monkeypatch.context() as m:
        fail_in_epoch(m, 2, KeyboardInterrupt())
        with pytest.raises(Interrupted), Run.open(cfg, log=lambda s: None) as run:
            run.fit()
    cpu = torch.device("cpu")
    ((kind, split, batch, device, seed, workers), _), = got["make_train_loader"]
    assert (kind, len(split), batch, device, seed, workers) == ("albumentations", 64, 32, cpu, 5, 0)
    assert [(len(s), d) for (s, d), _ in got["EvalLoader"]] == [(32, cpu)] and got["build_model"][0][0][1] == cpu
    args = got["start_lines"][0][0]
    assert args[4] == tmp_path / "r" and args[-1] == 2  # the folder, and the epochs left to train
    record = json.loads((tmp_path / "r" / "config.json").read_text())["resolved"]
    assert {k: record[k] for k in ("device", "device_name", "precision", "data_source", "train_images",
                                   "test_images", "torch", "parameters")} == {
        "device": "cpu", "device_name": device_name(cpu), "precision": "fp32",
        "data_source": f"class folders in {data}", "train_images": 64, "test_images": 32, "torch": torch.__version__,
        "parameters": count_parameters(run_module.ResNet9(width=0.0625))}

    watch = Watch()
    observe_runs(monkeypatch, watch)
    with Run.resume(tmp_path / "r", log=lambda s: None) as run:
        assert run.record == record  # what ran it, carried on into the checkpoints still to come
        history = run.fit(started=time.perf_counter() - 1000)  # the command began 1000 s ago
    assert got["start_lines"][-1][0][-1] == 1 and watch.started == [2]  # one epoch left, and only it trained
    assert history["wall_seconds"] >= 1000
    assert not any("_ema" in k for k in history["epochs"][0])  # no weight average asked for: none kept
    # killed after its last epoch was saved, before its end was written: the end is written, nothing trains
    path = tmp_path / "r" / "history.json"
    path.write_text(json.dumps({k: v for k, v in history.items() if k != "final_test_acc"}))
    with Run.resume(tmp_path / "r", log=lambda s: None) as run:
        again = run.fit()
    assert watch.started == [2] and again["final_test_acc"] == history["final_test_acc"]


def test_a_run_hands_its_training_settings_to_the_loop_and_report_and_writes_its_totals(tmp_path, monkeypatch):
    """The rest of ``Run._fit``'s wiring: the optimizer's settings, the weight average and TTA, the
    progress bars, the report's loader and log, the saved loss scale on resuming; the totals."""
    from types import SimpleNamespace

    import helpers.run as run_module
    from conftest import write_class_folders
    from helpers.loop import Callback
    from helpers.train import Precision

    got = {}
    for name in ("make_optimizer", "progress_bars", "train_loop"):
        spy(monkeypatch, got, name)
    spy(monkeypatch, got, "render_report", lambda *a, **k: [])
    real_load = Precision.load_scaler_state
    monkeypatch.setattr(Precision, "load_scaler_state",
                        lambda self, state: got.setdefault("scaler", []).append(state) or real_load(self, state))
    monkeypatch.setattr(run_module, "time", SimpleNamespace(perf_counter=lambda: 5000.0))  # the run's own clock

    class Rows(Callback):  # each epoch took 1.254 s; epoch n's headline accuracy is n / 10
        def on_epoch_end(self, end):
            end.row["seconds"], end.row["test_acc_ema_tta"] = 1.254, end.epoch / 10

    data = write_class_folders(tmp_path / "c", 64, 32)
    lines = []
    cfg = cfg_for(data, tmp_path / "r", nesterov=False, momentum=0.8, weight_decay=1e-3, ema=0.5, tta="flip",
                  progress=True, report=True, lr_min=0.05, lr_max=0.4, precision="fp32", epochs=3)
    with Run.open(cfg, log=lines.append) as run:
        history = run.fit(started=5000.0 - 1.23456, callbacks=(Rows(),))
    (model, lr_max, *settings), _ = got["make_optimizer"][0]
    assert lr_max == 0.4 and settings == [0.8, 1e-3, False]
    assert [a for a, _ in got["progress_bars"]] == [(2, 3)]  # 64 images in batches of 32, 3 epochs
    (parts, epochs, _, _, progress), _ = got["train_loop"][0]
    assert epochs == range(3) and progress is not None and parts.ema is not None and parts.tta == "flip"
    assert history["headline"] == "test_acc_ema_tta" and history["final_test_acc"] == 0.3  # the last epoch's
    assert (history["total_seconds"], history["wall_seconds"]) == (3.8, 1.2)  # to the tenth
    assert "peak_gpu_memory_gib" not in history  # a CPU run
    (a, k), = got["render_report"]
    assert a[6] is parts.test_loader and k["log"] == lines.append  # the run's loader and its log

    (tmp_path / "r" / "history.json").unlink()  # as if killed before its end was written: resumed
    saved = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)["scaler"]
    with Run.resume(tmp_path / "r", log=lines.append) as run:
        run.fit()
    assert got["scaler"] == [saved]  # the checkpoint's loss scaler state, handed to the precision


@pytest.mark.parametrize("amp,choice,name", [(True, "bf16", "bf16"), (False, "bf16", "fp32"), (True, "fp32", "fp32")])
def test_a_runs_precision_is_the_one_its_settings_ask_for(amp, choice, name):
    from helpers.run import device_and_precision

    device, precision = device_and_precision(TrainConfig(device="cpu", amp=amp, precision=choice))
    assert device.type == "cpu" and precision.name == name


def test_the_schedule_is_checked_against_the_full_batches_an_epoch_trains(tmp_path):
    from helpers.data import Cifar10
    from helpers.run import checked_data

    data = Cifar10(numbered_split(80), numbered_split(10))  # 1.6 batches of 50: one full batch an epoch, no peak
    with pytest.raises(UserError, match="at least one step to rise and one to fall"):
        checked_data(TrainConfig(batch_size=50, epochs=2, max_at_epoch=1), data)


def test_a_run_records_the_lrs_asked_for_and_found_and_reads_lrmin_by_its_rule(tmp_path):
    from conftest import write_class_folders
    from helpers.data import load_cifar10
    from helpers.lr_finder import RangeTestResult

    data = load_cifar10(write_class_folders(tmp_path / "c", 64, 32), download=False)
    cfg = TrainConfig(data_dir=str(tmp_path / "not read"), out="", lr_min="auto", lr_max="auto", batch_size=32,
                      lr_min_rule="smith", device="cpu")
    with Run.open(cfg, data=data, log=lambda s: None) as run:  # the data handed over: the folder is never read
        assert run.run_dir.parent == Path("runs") and re.fullmatch(r"resnet9-\d{8}-\d{6}", run.run_dir.name)
        assert run.data is data
        run._range_test = RangeTestResult([0.1, 1.0], [2.0, 1.0], lr_max=0.5, lr_min=0.02, rule="steepest",
                                          suggestions={"smith_min": 0.02}, seconds=12.345)
        assert run.lrs() == (0.02, 0.5)  # Smith's LRMIN, not LRMAX / 8
        run._record_lrs()
        assert run.record["requested"] == {"lr_min": "auto", "lr_max": "auto"}
        assert run.record["lr_find"] == {"lr_max": 0.5, "lr_min": 0.02, "rule": "steepest", "seconds": 12.3}


def test_a_device_this_machine_lacks_stops_a_run_before_its_folder_is_made(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="--device cuda"):
        Run.open(TrainConfig(out=str(tmp_path / "r"), device="cuda"), log=lambda s: None)
    assert not (tmp_path / "r").exists()


def test_a_closed_run_leaves_nothing_for_the_interpreters_exit_and_closes_again_quietly(tmp_path, monkeypatch):
    import atexit

    from helpers.checkpoint import LOCK

    said = []
    for name in ("register", "unregister"):
        monkeypatch.setattr(atexit, name, lambda f, *a, name=name: said.append((name, f)))
    run = Run.open(TrainConfig(out=str(tmp_path / "r"), device="cpu"), log=lambda s: None)
    release = run._lock.release  # registered, should the kernel exit with the run open
    run.close()
    assert said == [("register", release), ("unregister", release)] and not (tmp_path / "r" / LOCK).exists()
    run.close()  # a context manager's exit after an explicit close


def test_a_run_opened_again_in_this_process_leaves_the_folders_lock_to_the_first(tmp_path):
    from helpers.checkpoint import LOCK

    cfg = TrainConfig(out=str(tmp_path / "r"), device="cpu")
    first = Run.open(cfg, log=lambda s: None)
    Run.open(cfg, log=lambda s: None).close()  # a notebook cell run again, then closed
    assert (tmp_path / "r" / LOCK).exists()  # still the first one's
    first.close()
    assert not (tmp_path / "r" / LOCK).exists()


def test_a_run_continued_by_opening_its_folder_keeps_the_data_handed_over_its_log_and_its_lock(
        tmp_path, monkeypatch):
    from conftest import write_class_folders
    from helpers.checkpoint import CHECKPOINT, LOCK
    from helpers.data import load_cifar10

    tree = write_class_folders(tmp_path / "c", 64, 32)
    cfg = cfg_for(tree, tmp_path / "r", epochs=3, lr_min=0.05, lr_max=0.4, report=False)
    with monkeypatch.context() as m:
        fail_in_epoch(m, 3, KeyboardInterrupt())
        with pytest.raises(Interrupted), Run.open(cfg, log=lambda s: None) as run:
            run.fit()
    (tmp_path / "r" / CHECKPOINT).write_bytes(b"cut")  # the newest checkpoint (epoch 2) damaged
    data, said = load_cifar10(tree, download=False), []
    run = Run.open(cfg.replace(data_dir=str(tmp_path / "not read")), data=data, log=said.append)
    assert run.resuming and run.data is data
    assert any("is damaged" in s and "after epoch 1" in s for s in said)  # in the run's own log
    run.close()
    assert not (tmp_path / "r" / LOCK).exists()  # the lock it took, released
