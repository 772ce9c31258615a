"""helpers.sweep: one runner for the sequential path and Ray; compare, full_size and the ladder
queue on it; finished runs never redone; a bad address or a missing Ray is one line, exit 2."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import helpers.compare as compare_mod
from helpers import sweep
from helpers.cli import main
from helpers.compare import compare
from helpers.config import TrainConfig
from helpers.errors import UserError

ROOT = Path(__file__).parents[1]
TINY = ["--seeds", "0", "1", "--arm", "one_cycle:2", "--arm", "step:2", "--width", "0.0625", "--batch-size", "32",
        "--lr-find-iters", "20", "--no-progress", "--device", "cpu", "--cpus-per-job", "1", "--precision", "fp32"]


def numbers(summary: dict) -> dict:
    """A summary without what the clock or the command line decide."""
    runs = [{k: v for k, v in r.items() if k != "train_seconds"} for r in summary["runs"]]
    return {"runs": runs, "arms": summary["arms"], "pairs": summary["pairs"], "data": summary["data"]}


@pytest.mark.slow
def test_ray_comparison_equals_the_sequential_one(class_tree, tmp_path):
    """2 Ray workers, 1 CPU each, against one process with 1 thread: the same numbers (a CPU run
    repeats for one seed and one thread count), every run folder written as today."""
    ray = pytest.importorskip("ray", reason="Ray is in requirements-dev.txt; CI installs it")
    here, there = tmp_path / "here", tmp_path / "ray"
    assert main(["compare", "--data-dir", str(class_tree), "--out", str(here), *TINY]) == 0
    ray.init(num_cpus=2, include_dashboard=False, runtime_env=sweep.RUNTIME_ENV, logging_level="WARNING")
    try:
        assert main(["compare", "--data-dir", str(class_tree), "--out", str(there), "--ray", *TINY]) == 0
    finally:
        ray.shutdown()
    a, b = (json.loads((d / "summary.json").read_text()) for d in (here, there))
    assert numbers(a) == numbers(b) and len(a["runs"]) == 4
    assert a["arms"]["one_cycle-2ep"]["final_summary"]["n"] == 2
    for d in (here, there):
        for run in ("one_cycle-2ep-s0", "step-2ep-s1"):
            cfg = json.loads((d / run / "config.json").read_text())
            assert cfg["resolved"]["cpu_threads"] == 1 and (d / run / "history.json").is_file()
        assert (d / "lr_find-s1.json").is_file() and (d / "compare_curves.png").is_file()


@pytest.mark.slow
def test_a_stopped_sweep_redoes_none_of_its_finished_runs(class_tree, tmp_path, monkeypatch):
    base = TrainConfig(data_dir=str(class_tree), download=False, width=0.0625, batch_size=32, lr_find_iters=20,
                       progress=False, device="cpu")
    arms, out = [("one_cycle", 2), ("step", 2)], str(tmp_path / "cmp")
    real, trained = sweep.train_job, []

    def counted(config, log=print):
        trained.append(Path(config["out"]).name)
        if len(trained) == 3 and stop:
            raise UserError("stopped")  # the third run fails: two are finished
        return real(config, log)

    tests = []
    real_test = sweep.range_test_job
    monkeypatch.setattr(compare_mod, "range_test_job", lambda **kw: tests.append(1) or real_test(**kw))
    monkeypatch.setattr(compare_mod, "train_job", counted)
    stop = True
    with pytest.raises(UserError, match="stopped"):
        compare(base, [0, 1], arms, out, log=lambda s: None)
    first_two = trained[:2]
    trained.clear()
    stop = False
    summary = compare(base, [0, 1], arms, out, log=lambda s: None)
    assert len(tests) == 2 and not set(trained) & set(first_two) and len(trained) == 2
    # all finished: nothing trains, Ray is not even reached (an address nobody answers at is fine)
    trained.clear()
    again = compare(base, [0, 1], arms, out, log=lambda s: None, ray=sweep.RaySettings(address="127.0.0.1:1"))
    assert trained == [] and numbers(again) == numbers(summary)


@pytest.mark.parametrize("address, says", [("127.0.0.1:1", "no Ray cluster answers at 127.0.0.1:1"),
                                           ("headnode", "expects HOST:PORT")])
def test_bad_address_is_one_line_and_exit_2(address, says, tmp_path, capsys):
    pytest.importorskip("ray")
    code = main(["compare", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--ray-address", address])
    err = capsys.readouterr().err.strip()
    assert code == 2 and says in err and len(err.splitlines()) == 1 and not (tmp_path / "o").exists()


def test_missing_ray_is_one_line_and_exit_2_in_each_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    from benchmarks import full_size, ladder

    for run in (lambda: main(["compare", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--ray"]),
                lambda: full_size.main(["--data-dir", str(tmp_path), "--proxy-width", "0.0625", "--ray",
                                        "--out", str(tmp_path / "o")]),
                lambda: ladder.main([str(tmp_path), str(tmp_path / "o"), "ours:0.0625:0", "--ray"])):
        assert run() == 2
        err = capsys.readouterr().err.strip()
        assert "requirements-sweep.txt" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_nothing_imports_ray_unless_asked():
    code = "import sys, helpers.cli, helpers.compare, helpers.sweep, helpers.run; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
    assert "ray" not in (ROOT / "requirements.txt").read_text()


def test_a_worker_without_the_data_folder_says_which_node(tmp_path):
    job = sweep.Job("ours seed 0", sweep.command_job, {"argv": ["-c", "pass"]}, needs=(str(tmp_path / "nowhere"),))
    with pytest.raises(UserError, match="nowhere is not readable on node .*at the same path"):
        sweep.run_jobs([job])
    # on a Ray worker the same line comes back as the job's failure, not as a remote traceback
    failed = sweep._task(job.fn, job.kwargs, job.needs, 1)
    assert isinstance(failed, sweep._Failed) and "not readable on node" in failed.message


@pytest.mark.slow
def test_jobs_run_with_the_threads_they_were_given(tmp_path):
    check = "import os, sys, torch; sys.exit(0 if torch.get_num_threads() == 1 else 3)"
    job = sweep.Job("threads", sweep.command_job, {"argv": ["-c", check]})
    assert sweep.run_jobs([job], cpus_per_job=1) == [0]
    with pytest.raises(UserError, match="exited with status 3"):
        sweep.run_jobs([sweep.Job("fails", sweep.command_job, {"argv": ["-c", "import sys; sys.exit(3)"]})])


def test_finished_jobs_are_read_back_not_run():
    calls = []
    jobs = [sweep.Job(f"j{i}", sweep.command_job, {"argv": ["-c", "pass"]}, done=(lambda i=i: f"saved {i}" if i else None))
            for i in range(3)]
    jobs[0] = sweep.Job("j0", lambda log: calls.append(1) or "ran", {})
    assert sweep.run_jobs(jobs, log=calls.append) == ["ran", "saved 1", "saved 2"]


def test_cpus_per_job_must_be_positive(tmp_path, capsys):
    assert main(["compare", "--data-dir", str(tmp_path), "--cpus-per-job", "0"]) == 2
    assert "--cpus-per-job must be at least 1" in capsys.readouterr().err


# ---- the ladder queue ----------------------------------------------------------------------

def ladder_module():
    from benchmarks import ladder

    return ladder


def test_ladder_specs_and_their_commands(tmp_path):
    ladder = ladder_module()
    assert ladder.parse_spec("rule-min10:0.125:2") == ("rule-min10", "0.125", 2)
    for bad in ("foo:0.25:0", "ours:0.25", "ours:wide:0", "q:0.25:0"):
        with pytest.raises(UserError, match="ARM:WIDTH:SEED"):
            ladder.parse_spec(bad)
    d = tmp_path / "q30-w0.125-s1"
    argv = ladder.command("q30", "0.125", 1, d, "/data", "/jpeg", "cpu")
    assert argv[:3] == ["-m", "helpers", "train"] and "/jpeg/q30" in argv and argv[argv.index("--seed") + 1] == "1"
    assert ladder.command("ref", "0.25", 0, d, "/data", "/jpeg", "cpu")[:2] == ["-m", "benchmarks.reference"]
    assert argv[argv.index("--precision") + 1] == "auto"  # the product's rule unless asked
    for arm in ("ours", "ref"):  # both arms of a comparison in the precision asked
        asked = ladder.command(arm, "1", 0, d, "/data", "/jpeg", "cpu", "bf16")
        assert asked[asked.index("--precision") + 1] == "bf16"
    for arm, module in (("ours", ["-m", "helpers", "train"]), ("ref", ["-m", "benchmarks.reference"])):
        fast = ["-m", "benchmarks.fp16_cpu", *module]  # fp16 on a CPU: the fast convolution backward
        assert ladder.command(arm, "1", 0, d, "/data", "/jpeg", "cpu", "fp16")[:len(fast)] == fast
        assert ladder.command(arm, "1", 0, d, "/data", "/jpeg", "cuda", "fp16")[:len(module)] == module
    d.mkdir()
    (d / "checkpoint.pt").write_bytes(b"")
    assert ladder.command("q30", "0.125", 1, d, "/data", "/jpeg", "cpu")[-2:] == ["--resume", str(d)]
    assert ladder.command("ours", "0.125", 1, d, "/data", "/jpeg", "cpu", "fp16") == [
        "-m", "benchmarks.fp16_cpu", "-m", "helpers", "train", "--resume", str(d)]


@pytest.mark.slow
def test_ladder_skips_finished_runs_and_stops_at_a_foreign_folder(class_tree, tmp_path, capsys):
    ladder = ladder_module()
    runs = tmp_path / "runs"
    (runs / "ours-w0.0625-s0").mkdir(parents=True)
    (runs / "ours-w0.0625-s0" / "history.json").write_text(json.dumps({"final_test_acc": 0.5, "epochs": []}))
    assert ladder.main([str(class_tree), str(runs), "ours:0.0625:0"]) == 0  # finished: nothing runs
    (runs / "ours-w0.0625-s1").mkdir()
    (runs / "ours-w0.0625-s1" / "notes.txt").write_text("mine")
    assert ladder.main([str(class_tree), str(runs), "ours:0.0625:0", "ours:0.0625:1"]) == 2
    err = capsys.readouterr().err
    assert "exited with status 2" in err.splitlines()[-1]
    assert (runs / "ours-w0.0625-s1" / "notes.txt").read_text() == "mine"


def test_a_bad_data_folder_stops_compare_before_anything_is_written(tmp_path, capsys):
    code = main(["compare", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--no-download"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no CIFAR-10 in" in err and len(err.splitlines()) == 1 and not (tmp_path / "o").exists()
