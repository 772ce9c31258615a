"""benchmarks/collect_runs.py: run folders -> rows, appended per call, unfinished folders left out."""
import json
from pathlib import Path

from benchmarks import collect_runs


def fake_run(folder: Path, seed: int, acc: float, finished: bool = True) -> Path:
    folder.mkdir(parents=True)
    cfg = {"width": 0.5, "lr_max_rule": "min10", "seed": seed, "lr_max": 0.1, "lr_min": 0.01, "epochs": 24,
           "resolved": {"device_name": "GPU X", "precision": "bf16"}}
    (folder / "config.json").write_text(json.dumps(cfg))
    # an interrupted run has a history without its final accuracy
    (folder / "history.json").write_text(json.dumps({"final_test_acc": acc, "epochs": []} if finished else
                                                    {"epochs": [{"epoch": 1}]}))
    return folder


def test_rows_append_across_calls_and_keep_their_label(tmp_path):
    out = tmp_path / "rules.json"
    collect_runs.main(["--label", "machine A", str(fake_run(tmp_path / "a", 0, 0.9)),
                       str(fake_run(tmp_path / "b", 1, 0.8, finished=False)), "--out", str(out)])
    collect_runs.main(["--label", "machine B", str(fake_run(tmp_path / "c", 0, 0.85)), "--out", str(out)])
    rows = json.loads(out.read_text())["runs"]
    assert [(r["label"], r["seed"], r["final_test_acc"]) for r in rows] == [("machine A", 0, 0.9), ("machine B", 0, 0.85)]
    assert rows[0]["rule"] == "min10" and rows[0]["width"] == 0.5 and rows[0]["device_name"] == "GPU X"
    assert rows[0]["arm"] == "min10"  # no arm recorded, no queue folder name: the rule
    assert "cpu_model" not in rows[0]  # a run that predates the record has none


def test_the_arm_comes_from_a_ladder_folder_name_else_the_runs_record(tmp_path):
    out = tmp_path / "ladder.json"
    ref = fake_run(tmp_path / "x", 0, 0.9)
    cfg = json.loads((ref / "config.json").read_text())
    (ref / "config.json").write_text(json.dumps({**cfg, "arm": "ref"}))
    collect_runs.main(["--label", "cpu", str(fake_run(tmp_path / "q30-w0.125-s1", 1, 0.8)),
                       str(fake_run(tmp_path / "ours-page-order-w0.25-s0", 0, 0.85)), str(ref), "--out", str(out)])
    assert [r["arm"] for r in json.loads(out.read_text())["runs"]] == ["q30", "ours-page-order", "ref"]


def test_rows_keep_each_epochs_accuracies_and_on_request_the_range_test(tmp_path):
    run = fake_run(tmp_path / "tta-ema-w0.125-s0", 0, 0.84)
    epochs = [{"epoch": e, "test_acc": 0.5 + e / 10, "test_acc_ema_tta": 0.6 + e / 10, "test_loss": 1.0}
              for e in (1, 2)]
    (run / "history.json").write_text(json.dumps({"final_test_acc": 0.8, "epochs": epochs}))
    (run / "lr_find.json").write_text(json.dumps({"lrs": [0.1, 1.0], "losses": [2.0, 1.9], "suggestions": {},
                                                  "lr_max": 1.0, "lr_min": 0.01, "rule": "r", "seconds": 3}))
    out = tmp_path / "tricks.json"
    collect_runs.main(["--label", "cpu", str(run), "--out", str(out)])
    (plain,) = json.loads(out.read_text())["runs"]
    assert plain["curves"] == {"test_acc": [0.6, 0.7], "test_acc_ema_tta": [0.7, 0.8]} and "range_test" not in plain
    collect_runs.main(["--label", "cpu, again", str(run), "--out", str(out), "--range-test"])
    (with_test,) = json.loads(out.read_text())["runs"]  # the same run collected again: its row, replaced
    assert with_test["range_test"]["losses"] == [2.0, 1.9] and "seconds" not in with_test["range_test"]
    assert with_test["label"] == "cpu, again"


def test_a_run_collected_again_replaces_its_row_and_a_repeat_elsewhere_is_kept(tmp_path):
    out = tmp_path / "ladder.json"
    first, second = fake_run(tmp_path / "A" / "ref-w1-s0", 0, 0.91), fake_run(tmp_path / "A" / "ref-w1-s1", 1, 0.92)
    collect_runs.main(["--label", "cpu", str(first), "--out", str(out)])
    collect_runs.main(["--label", "cpu", str(first), str(second), "--out", str(out)])
    assert [r["run"] for r in json.loads(out.read_text())["runs"]] == ["ref-w1-s0", "ref-w1-s1"]
    for key, value in (("final_test_acc", 0.915), ("lr_max", 0.2), ("lr_min", 0.02), ("seed", 3)):
        elsewhere = fake_run(tmp_path / key / "ref-w1-s0", 0, 0.91)  # one field differs: another run
        cfg = json.loads((elsewhere / "config.json").read_text())
        hist = json.loads((elsewhere / "history.json").read_text())
        (cfg if key in cfg else hist)[key] = value
        (elsewhere / "config.json").write_text(json.dumps(cfg))
        (elsewhere / "history.json").write_text(json.dumps(hist))
        collect_runs.main(["--label", "gpu", str(elsewhere), "--out", str(out)])
    assert len(json.loads(out.read_text())["runs"]) == 6
    curves = fake_run(tmp_path / "curves" / "ref-w1-s1", 1, 0.92)
    (curves / "history.json").write_text(json.dumps({"final_test_acc": 0.92, "epochs": [{"test_acc": 0.92}]}))
    collect_runs.main(["--label", "gpu", str(curves), "--out", str(out)])
    assert len(json.loads(out.read_text())["runs"]) == 7
    collect_runs.main(["--label", "cpu", str(fake_run(tmp_path / "ours-w1-s0", 0, 0.91)), "--out", str(out)])
    assert len(json.loads(out.read_text())["runs"]) == 8  # another arm's folder with the same numbers


def test_rows_carry_what_a_cpu_runs_numbers_depend_on(tmp_path):
    from helpers.provenance import machine

    run = fake_run(tmp_path / "a", 0, 0.9)
    cfg = json.loads((run / "config.json").read_text())
    cfg["resolved"].update(torch="2.14.1", **machine())
    (run / "config.json").write_text(json.dumps(cfg))
    collect_runs.main(["--label", "cpu", str(run), "--out", str(tmp_path / "o.json")])
    (row,) = json.loads((tmp_path / "o.json").read_text())["runs"]
    assert row["cpu_capability"] == machine()["cpu_capability"] and row["cpu_threads"] >= 1
    assert set(row["versions"]) == {"torch", "torchvision", "numpy", "pillow", "albumentations"} and row["cpu_model"]


def test_an_fp16_runs_loss_scale_is_kept_per_epoch(tmp_path):
    out = tmp_path / "fp16.json"
    run = fake_run(tmp_path / "ours-w0.125-s0", 0, 0.8)
    (run / "history.json").write_text(json.dumps({"final_test_acc": 0.8, "epochs": [
        {"epoch": 1, "test_acc": 0.5, "loss_scale": 65536.0}, {"epoch": 2, "test_acc": 0.8, "loss_scale": 32768.0}]}))
    plain = fake_run(tmp_path / "ours-w0.125-s1", 1, 0.8)
    collect_runs.main(["--label", "cpu fp16", str(run), str(plain), "--out", str(out)])
    rows = json.loads(out.read_text())["runs"]
    assert rows[0]["loss_scale"] == [65536.0, 32768.0] and "loss_scale" not in rows[1]
