"""A run killed with SIGKILL inside an epoch's training steps, then resumed, trains only the
remaining epochs and equals an uninterrupted run bit for bit."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import Watch, observe_runs, write_class_folders
from helpers.cli import main

ROOT = Path(__file__).parents[1]
KILL_AT = (2, 5)  # epoch, step

# The training process, with a callback that kills it (SIGKILL: no handler runs, nothing is
# flushed) before step 5 of epoch 2: the kill lands inside an epoch, by construction, not by timing.
KILLER = """
import os, signal, sys
from helpers.loop import Callback
from helpers.run import Run
class Kill(Callback):
    def on_step(self, epoch, step):
        if (epoch, step) == ({e}, {s}):
            os.kill(os.getpid(), signal.SIGKILL)
Run.callbacks = (Kill(),)
from helpers.cli import main
sys.exit(main(sys.argv[1:]))
"""


def args(data: Path, out: Path) -> list[str]:
    return ["train", "--data-dir", str(data), "--out", str(out), "--epochs", "3", "--max-at-epoch", "1",
            "--lr-min", "0.05", "--lr-max", "0.4", "--width", "0.0625", "--batch-size", "32",
            "--no-progress", "--no-report", "--device", "cpu", "--seed", "3", "--precision", "fp32"]


def strip_times(history: dict) -> dict:
    for row in history["epochs"]:
        row.pop("seconds"), row.pop("train_seconds")
    history.pop("total_seconds", None), history.pop("wall_seconds", None)
    return history


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_inside_an_epoch_then_resume_equals_uninterrupted(tmp_path, monkeypatch):
    data = write_class_folders(tmp_path / "c", 320, 40)  # 10 steps an epoch
    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILLER.format(e=KILL_AT[0], s=KILL_AT[1]), *args(data, killed)],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    saved = torch.load(killed / "checkpoint.pt", weights_only=False)
    assert saved["epoch"] == KILL_AT[0] - 1 >= 1  # epoch 1 was saved, epoch 2 was not
    assert len(json.loads((killed / "history.json").read_text())["epochs"]) == 1

    watch = Watch()
    observe_runs(monkeypatch, watch)
    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    assert watch.started == [2, 3]  # only the remaining epochs
    watch.started.clear()
    full = tmp_path / "full"
    assert main(args(data, full)) == 0
    assert watch.started == [1, 2, 3]

    a = strip_times(json.loads((killed / "history.json").read_text()))
    b = strip_times(json.loads((full / "history.json").read_text()))
    assert a == b
    wa = torch.load(killed / "checkpoint.pt", weights_only=False)["model"]
    wb = torch.load(full / "checkpoint.pt", weights_only=False)["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
