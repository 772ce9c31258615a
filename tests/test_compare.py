"""python -m helpers compare: arms x seeds, one summary with statistics, two figures."""
import json

import numpy as np
import pytest
import torch

from helpers.cli import main
from helpers.compare import parse_arm, summarize_runs
from helpers.errors import UserError
from helpers.schedule import step_within


def lrs_of(make, steps):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.4)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        step_within(sched)
    return np.array(out)


def test_statistics_flag_only_differences_above_the_noise():
    runs = [{"arm": a, "schedule": a, "epochs": 8, "seed": s, "final_test_acc": v}
            for a, vals in (("x", [0.80, 0.81, 0.79]), ("y", [0.90, 0.91, 0.89]), ("z", [0.805, 0.79, 0.81]))
            for s, v in enumerate(vals)]
    pairs = {(p["a"], p["b"]): p for p in summarize_runs(runs)["pairs"]}
    assert abs(pairs[("x", "y")]["welch_t"]) > 10 and abs(pairs[("x", "z")]["welch_t"]) < 1


def test_bad_arm_is_one_clear_error():
    with pytest.raises(UserError, match="SCHEDULE:EPOCHS"):
        parse_arm("cosine:24")


@pytest.mark.slow
def test_compare_command(class_tree, tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--data-dir", str(class_tree), "--out", str(out), "--seeds", "0", "1",
            "--arm", "one_cycle:3", "--arm", "step:3", "--arm", "one_cycle_annealed:3",
            "--width", "0.0625", "--batch-size", "32", "--lr-find-iters", "20", "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["arms"]) == {"one_cycle-3ep", "step-3ep", "one_cycle_annealed-3ep"}
    assert all(a["seeds"] == [0, 1] and a["final_summary"]["n"] == 2 for a in summary["arms"].values())
    assert len(summary["pairs"]) == 3
    assert summary["command"].startswith("python -m helpers compare --data-dir DIR --out ")
    by = {(r["arm"], r["seed"]): r for r in summary["runs"]}
    lr_find = json.loads((out / "lr_find-s0.json").read_text())["suggestions"]
    assert by[("step-3ep", 0)]["lr_max"] == pytest.approx(lr_find["min10"])
    assert by[("one_cycle-3ep", 0)]["lr_max"] == pytest.approx(lr_find["first_min_capped"])
    cfg = json.loads((out / "step-3ep-s1" / "config.json").read_text())
    assert cfg["schedule"] == "step" and cfg["seed"] == 1 and cfg["epochs"] == 3
    for png in ("compare_curves.png", "compare_budget.png"):
        assert (out / png).stat().st_size > 2000
    # run again: every run is read back, nothing trains twice, the summary is the same
    capsys.readouterr()
    assert main(argv) == 0
    assert json.loads((out / "summary.json").read_text())["runs"] == summary["runs"]
