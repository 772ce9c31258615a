"""benchmarks/full_size.py: refuses a machine without CUDA, runs a proxy when told to."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.train import auto_precision

ROOT = Path(__file__).parents[1]
MODULE = "benchmarks.full_size"


@pytest.mark.slow
def test_without_cuda_one_clear_line(tmp_path):
    if torch.cuda.is_available():  # the refusal is for machines without a GPU
        return
    r = subprocess.run([sys.executable, "-m", MODULE, "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "no CUDA GPU" in r.stderr and "--proxy-width" in r.stderr and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_proxy_run_writes_json_and_table(class_tree, tmp_path):
    from benchmarks import full_size

    out = tmp_path / "fs"
    assert full_size.main(["--data-dir", str(class_tree), "--out", str(out), "--seeds", "0", "1",
                           "--proxy-width", "0.0625", "--epochs", "2", "--batch-size", "32"]) == 0
    summary = json.loads((out / "full_size.json").read_text())
    assert [r["seed"] for r in summary["seeds"]] == [0, 1] and summary["width"] == 0.0625
    for r in summary["seeds"]:
        assert 0 <= r["final_test_acc"] <= 1 and r["lr_min"] < r["lr_max"] and r["images_per_second"] > 0
    accs = [r["final_test_acc"] for r in summary["seeds"]]
    assert summary["final_test_acc"]["mean"] == sum(accs) / 2
    assert summary["precision"] == auto_precision(torch.device("cpu"))  # the device's rule, as recorded
    table = (out / "full_size.md").read_text()
    assert "CPU" in table and "| 0 |" in table and "| 1 |" in table and "standard deviation" in table
    assert "| n/a |" in table  # no GPU memory to report on the CPU
