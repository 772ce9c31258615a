"""A run killed with SIGKILL mid-training, then resumed, equals an uninterrupted run bit for bit."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import write_class_folders
from helpers.cli import main

ROOT = Path(__file__).parents[1]


def args(data: Path, out: Path) -> list[str]:
    return ["train", "--data-dir", str(data), "--out", str(out), "--epochs", "3", "--max-at-epoch", "1",
            "--lr-min", "0.05", "--lr-max", "0.4", "--width", "0.0625", "--batch-size", "32",
            "--no-progress", "--no-report", "--device", "cpu", "--seed", "3"]


def strip_times(history: dict) -> dict:
    for row in history["epochs"]:
        row.pop("seconds"), row.pop("train_seconds")
    history.pop("total_seconds", None), history.pop("wall_seconds", None)
    return history


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    data = write_class_folders(tmp_path / "c", 640, 40)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "helpers", *args(data, killed)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not (killed / "history.json").exists():  # epoch 1 is done and saved
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(0.3)  # well into epoch 2 (20 steps of ~0.1 s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = torch.load(killed / "checkpoint.pt", weights_only=False)
    assert saved["epoch"] < 3, "the run finished before it could be killed"

    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    full = tmp_path / "full"
    assert main(args(data, full)) == 0

    a = strip_times(json.loads((killed / "history.json").read_text()))
    b = strip_times(json.loads((full / "history.json").read_text()))
    assert a == b
    wa = torch.load(killed / "checkpoint.pt", weights_only=False)["model"]
    wb = torch.load(full / "checkpoint.pt", weights_only=False)["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
