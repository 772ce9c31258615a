"""The README's measured sections are exactly what results/ renders to."""
import json
import shutil
from pathlib import Path

import pytest

from benchmarks.render import MARK, fill, relinked, sections

ROOT = Path(__file__).parents[1]


def test_fill_replaces_only_marked_sections():
    text = "a\n<!-- results:x -->\nold\n<!-- /results:x -->\nb\n<!-- results:y -->\nkeep\n<!-- /results:y -->\n"
    assert fill(text, {"x": "new\n"}) == text.replace("old\n", "new\n")


@pytest.mark.slow
def test_readme_and_results_doc_match_the_committed_results(tmp_path):
    rendered = sections(ROOT / "results", tmp_path / "assets")
    assert rendered, "results/ renders nothing"
    found: set[str] = set()
    for doc in ("README.md", "docs/RESULTS.md", "docs/TESTING.md"):
        expected = relinked(rendered, ROOT / "assets", ROOT / doc)  # its figures linked from the doc's folder
        for m in MARK.finditer((ROOT / doc).read_text()):
            name = m.group("name")
            found.add(name)
            # a marker waiting for its measurement (no file yet) stays empty
            assert name in rendered or not m.group("body"), f"{doc}: {name} has no source"
            assert name not in rendered or m.group("body") == expected[name], \
                f"{doc}: section {name} is stale: run python -m benchmarks.render"
    for name in rendered:
        assert name in found, f"neither README.md nor docs/RESULTS.md has a section {name}"
    for png in (tmp_path / "assets").glob("*.png"):
        assert (ROOT / "assets" / png.name).is_file(), f"assets/{png.name} missing: run python -m benchmarks.render"


@pytest.mark.slow
def test_the_render_command_renders_into_a_copy(tmp_path):
    from benchmarks.render import main

    shutil.copytree(ROOT / "results" / "range_tests", tmp_path / "results" / "range_tests")  # one section: fast
    (tmp_path / "README.md").write_text("x\n<!-- results:range-tests -->\nstale\n<!-- /results:range-tests -->\n")
    assert main(["--results", str(tmp_path / "results"), "--doc", str(tmp_path / "README.md"),
                 "--assets", str(tmp_path / "assets")]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "stale" not in text and "| width | seeds |" in text and (tmp_path / "assets" / "range_tests.png").is_file()


@pytest.mark.slow
def test_compare_section_says_which_differences_beat_the_noise(tmp_path):
    from helpers.compare import summarize_runs

    runs = [{"arm": f"{k}-8ep", "schedule": k, "epochs": 8, "seed": s, "final_test_acc": v, "lr_max": 0.4,
             "test_acc": [0.5, v]}
            for k, vals in (("one_cycle", [0.80, 0.81, 0.79]), ("step", [0.70, 0.71, 0.69]),
                            ("one_cycle_annealed", [0.80, 0.815, 0.79])) for s, v in enumerate(vals)]
    summary = {"command": "python -m helpers compare", "width": 0.125, "device_name": "CPU (2 cores)",
               "precision": "fp32", "runs": runs, **summarize_runs(runs)}
    (tmp_path / "results" / "compare").mkdir(parents=True)
    (tmp_path / "results" / "compare" / "summary.json").write_text(json.dumps(summary))
    text = sections(tmp_path / "results", tmp_path / "assets")["compare"]
    assert "| one_cycle | 8 | 3 | 0.4 | 80.00% +- 1.00 | 79.00-81.00% |" in text
    assert "| one_cycle-8ep - step-8ep | +10.00 points | 12.2 | yes |" in text
    assert "| one_cycle-8ep - one_cycle_annealed-8ep |" in text and text.count("| no |") == 1
    assert (tmp_path / "assets" / "compare_budget.png").is_file()


@pytest.mark.slow
def test_a_finished_run_renders_from_its_json_files_alone(class_tree, tmp_path):
    from helpers.cli import main

    run = tmp_path / "results" / "runs" / "tiny"
    assert main(["train", "--data-dir", str(class_tree), "--out", str(run), "--epochs", "2", "--max-at-epoch", "1",
                 "--width", "0.0625", "--batch-size", "32", "--lr-find-iters", "20", "--no-progress",
                 "--device", "cpu"]) == 0
    for heavy in ("checkpoint.pt",):  # what results/ never holds
        (run / heavy).unlink()
    text = sections(tmp_path / "results", tmp_path / "assets")["run-tiny"]
    assert "| final test accuracy |" in text and "width 0.0625" in text and "CPU" in text
    for name in ("curves", "schedule", "lr_find", "per_class"):
        assert f"assets/tiny_{name}.png" in text and (tmp_path / "assets" / f"tiny_{name}.png").is_file()


@pytest.mark.slow
def test_rules_section_compares_rules_per_width_against_the_noise(tmp_path):
    def run(width, rule, seed, acc, lr, device="CPU"):
        return {"run": f"w{width}-{rule}-s{seed}", "label": "t", "width": width, "rule": rule, "seed": seed,
                "lr_max": lr, "lr_min": lr / 50, "epochs": 24, "device_name": device, "precision": "fp32",
                "final_test_acc": acc}

    rows = [run(1.0, "first_min", s, a, 0.3) for s, a in enumerate([0.91, 0.915, 0.905])]
    rows += [run(1.0, "min10", s, a, 0.03) for s, a in enumerate([0.88, 0.885, 0.875])]
    rows += [run(0.5, "first_min", s, a, 1.5) for s, a in enumerate([0.89, 0.88, 0.90])]
    rows += [run(0.5, "min10", s, a, 0.1) for s, a in enumerate([0.895, 0.875, 0.885])]
    rows += [run(0.25, "min10", 0, 0.86, 0.8)]  # one run: in the table, not in the t-test
    # Another device's runs at width 1/4: their own rows and their own test, never pooled with the CPU's.
    rows += [run(0.25, "first_min", s, a, 7.0, "GPU") for s, a in enumerate([0.80, 0.81, 0.82])]
    rows += [run(0.25, "min10", s, a, 0.8, "GPU") for s, a in enumerate([0.85, 0.86, 0.87])]
    (tmp_path / "results" / "lr_rules").mkdir(parents=True)
    (tmp_path / "results" / "lr_rules" / "x.json").write_text(json.dumps({"runs": rows}))
    text = sections(tmp_path / "results", tmp_path / "assets")["lr-rules"]
    assert "| 1 | CPU fp32 | first_min | 3 (0, 1, 2) | 0.3-0.3 | 91.00% +- 0.50 | 90.50-91.50% |" in text
    assert "| 1 | CPU fp32 | first_min - min10 | +3.00 points | 7.3 | yes |" in text
    assert "| 0.5 | CPU fp32 | first_min - min10 | +0.50 points | 0.6 | no |" in text
    assert "| 0.25 | CPU fp32 | min10 | 1 (0) | 0.8-0.8 | 86.00% +- 0.00 |" in text
    assert "| 0.25 | GPU fp32 | min10 | 3 (0, 1, 2) | 0.8-0.8 | 86.00% +- 1.00 |" in text
    assert "| 0.25 | GPU fp32 | first_min - min10 | -5.00 points | -6.1 | yes |" in text
    assert "| 0.25 | CPU fp32 | first_min" not in text
    # Three rules at one width: every pair is tested, the default rule first.
    rows += [run(0.125, rule, s, a, 1.0) for rule in ("min10", "first_min", "first_min_capped")
             for s, a in enumerate([0.80, 0.81, 0.82])]
    (tmp_path / "results" / "lr_rules" / "x.json").write_text(json.dumps({"runs": rows}))
    text = sections(tmp_path / "results", tmp_path / "assets")["lr-rules"]
    for pair in ("first_min_capped - first_min", "first_min_capped - min10", "first_min - min10"):
        assert f"| 0.125 | CPU fp32 | {pair} | +0.00 points |" in text
    assert (tmp_path / "assets" / "rules_vs_width.png").is_file()


def test_full_size_section_shows_every_seed_and_the_mean(tmp_path):
    seeds = [{"seed": s, "final_test_acc": a, "best_test_acc": a, "lr_min": 0.005, "lr_max": 0.34,
              "seconds_per_epoch": 0.64, "images_per_second": 78000.0, "peak_gpu_memory_gib": 1.6, "run_dir": f"seed{s}"}
             for s, a in enumerate([0.90, 0.92])]
    summary = {"device_name": "GPU X", "precision": "bf16", "torch": "2.x", "width": 1.0, "epochs": 24,
               "batch_size": 512, "train_images": 50000, "test_images": 10000, "seeds": seeds,
               "final_test_acc": {"n": 2, "mean": 0.91, "std": 0.0141, "min": 0.90, "max": 0.92}}
    (tmp_path / "results" / "full_size").mkdir(parents=True)
    (tmp_path / "results" / "full_size" / "gpu-x.json").write_text(json.dumps(summary))
    text = sections(tmp_path / "results", tmp_path / "assets")["full-size-gpu-x"]
    assert text.startswith("GPU X, bf16") and "| 1 | 92.00% | 92.00% | 0.005 | 0.34 |" in text
    assert "**Mean 91.00% +- 1.41 over 2 seeds**" in text


def _row(arm, seed, acc, width=0.25, device="CPU (2 cores)"):
    return {"arm": arm, "seed": seed, "final_test_acc": acc, "width": width, "device_name": device,
            "precision": "fp32", "rule": "x", "lr_max": 0.4, "lr_min": 0.0}


def test_ladder_table_pairs_arms_within_a_width_and_device_only():
    from benchmarks.render import ladder_table

    rows = ([_row("ours", s, v) for s, v in enumerate([0.86, 0.87, 0.88])] +
            [_row("ref", s, v) for s, v in enumerate([0.90, 0.91, 0.92])] +
            [_row("ref", s, 0.95, device="GPU") for s in range(3)] +  # another device: never pooled
            [_row("unknown-arm", 0, 0.5)])
    text = ladder_table(rows)
    assert "| 0.25 | CPU (2 cores) fp32 | (e) the reference" in text and "| 3 (0, 1, 2) | 91.00% +- 1.00 |" in text
    assert "| 0.25 | CPU (2 cores) fp32 | (e) - (a) | everything: the reference against our default | " \
           "+4.00 points | 4.9 | yes |" in text
    assert "| 0.25 | GPU fp32 | (e)" in text and text.count("+4.00 points") == 1 and "unknown-arm" not in text


def test_the_ladders_default_is_completed_from_the_extras_runs_never_counting_a_seed_twice():
    from benchmarks.render import defaults_from_tricks, ladder_table

    ladder = [_row("ours", 0, 0.86), _row("ref", 0, 0.90, width=1), _row("ref", 1, 0.92, width=1)]
    tricks = [{**_row("tta-ema", s, 0.0, width=w), "curves": {"test_acc": [0.5, acc], "test_acc_ema_tta": [0.6, 0.99]}}
              for s, w, acc in ((0, 0.25, 0.80), (1, 0.25, 0.87), (0, 1, 0.91), (1, 1, 0.93))]
    tricks.append({**_row("ls-tta-ema", 2, 0.0, width=1), "curves": {"test_acc": [0.5, 0.97]}})  # trains otherwise
    borrowed = defaults_from_tricks(ladder, tricks)
    assert [(r["width"], r["seed"], r["final_test_acc"]) for r in borrowed] == [(0.25, 1, 0.87), (1, 0, 0.91), (1, 1, 0.93)]
    text = ladder_table(ladder + borrowed)
    assert "| 0.25 | CPU (2 cores) fp32 | (a) ours: the default (assignment's block order, LRs found, ends at LRMIN) " \
           "| 2 (0, 1) | 86.50% +- 0.71 |" in text  # the ladder's own seed 0 (86%), not the extras' (80%)
    assert "| 1 | CPU (2 cores) fp32 | (e) - (a) | everything: the reference against our default | -1.00 points |" in text
    assert "(a) at width 1, CPU (2 cores) fp32: the plain accuracy" in text and "at width 0.25" in text
    assert "plain accuracy" not in ladder_table(ladder)


def test_jpeg_table_and_slope_read_each_level_against_the_copy():
    from benchmarks.render import jpeg_slope, jpeg_table

    levels = {q: {"train": {"psnr_db_mean": p, "bytes_mean": b}, "test": {"psnr_db_mean": p, "bytes_mean": b}}
              for q, p, b in (("50", 30.0, 600), ("30", 28.0, 450))}
    rows = ([_row("ours", s, v, 0.125) for s, v in enumerate([0.82, 0.83, 0.81])] +
            [_row("q50", s, v, 0.125) for s, v in enumerate([0.80, 0.81])] +
            [_row("q30", s, v, 0.125) for s, v in enumerate([0.76, 0.77])])
    text = jpeg_table(levels, rows)
    assert "| the copy (quality 75) | - | - | 0.125 | CPU (2 cores) fp32 | 3 | 82.00% +- 1.00 |" in text
    assert "| re-encoded at quality 30 | 28.00 / 28.00 dB | 450 | 0.125 | CPU (2 cores) fp32 | 2 | 76.50% +- 0.71 | " \
           "-5.50 points |" in text
    [(a, b, v)] = jpeg_slope(levels, rows)[(0.125, "CPU (2 cores) fp32")]
    assert (a, b) == ("q30", "q50") and v == __import__("pytest").approx(2.0)


def test_tricks_table_reads_each_extra_against_the_default_of_the_same_seeds(tmp_path):
    from benchmarks import figures as study
    from benchmarks.render import TRICKS, tricks_table

    def run(arm, seed, plain, ema_tta):
        r = _row(arm, seed, ema_tta, 0.125)
        r["curves"] = {"test_acc": [0.5, plain], "test_acc_tta": [0.5, plain + 0.01],
                       "test_acc_ema": [0.5, plain + 0.02], "test_acc_ema_tta": [0.5, ema_tta]}
        return r
    rows = [run("tta-ema", s, p, p + 0.03) for s, p in enumerate([0.80, 0.82, 0.81])]
    rows += [run("ls-tta-ema", s, p, p + 0.04 + s / 100) for s, p in enumerate([0.805, 0.825, 0.815])]
    text = tricks_table(rows + [run("tta-ema", 0, 0.86, 0.88) | {"width": 0.25}])
    assert "| 0.25 | CPU (2 cores) fp32 | + EMA + TTA | 0 | 88.00% (one run) | - | - | - | +2.00 (one seed) |" in text
    assert "| 0.125 | CPU (2 cores) fp32 | the default (the assignment's recipe) | 0, 1, 2 | 81.00% +- 1.00 | - |" in text
    assert "| + flip TTA | 0, 1, 2 | 82.00% +- 1.00 | +1.00 points | 1.2 | no | +1.00 +- 0.00 (t inf) |" in text
    assert "| + label smoothing 0.2 | 0, 1, 2 | 81.50% +- 1.00 | +0.50 points | 0.6 | no | +0.50 +- 0.00 (t " in text
    # Welch's t counts the seeds' spread; the paired t (same seeds) does not
    assert "| + all three | 0, 1, 2 | 86.50% +- 1.73 | +5.50 points | 4.8 | yes | +5.50 +- 1.00 (t 9.5) |" in text
    assert study.plot_tricks(rows, TRICKS, tmp_path / "t.png").stat().st_size > 5000


def test_sweep_table_names_the_speed_up_and_the_equality():
    from benchmarks.render import sweep_table

    m = {"cpu_cores": 2, "width": 0.125, "arm": "one_cycle:3", "seeds": [0, 1], "ray_equals_1_thread": False,
         "rows": [{"variant": "sequential", "wall_seconds": 100.0, "options": "(none)"},
                  {"variant": "ray", "wall_seconds": 80.0, "options": "--ray --cpus-per-job 1"}], "command": "c"}
    text = sweep_table(m)
    assert "| sequential | `(none)` | 100 s | 1.25x |" in text and "| ray | `--ray --cpus-per-job 1` | 80 s | - |" in text
    assert "NOT the same" in text


def test_smoothing_range_table_reads_each_seeds_test_with_and_without_smoothing(tmp_path):
    from benchmarks import figures as study
    from benchmarks.render import smoothing_range_table

    def run(ls, floor, valley):
        r = _row("ls-tta-ema" if ls else "tta-ema", 0, 0.8, 0.125)
        r.update(label_smoothing=ls, rule="first_min_capped",
                 range_test={"lrs": [0.01, 0.1, 1.0, 10.0], "losses": [2.3, 2.1, floor, 2.4], "lr_max": 1.0,
                             "lr_min": 0.02, "suggestions": {"first_min": valley}, "rule": "x"})
        return r
    text = smoothing_range_table([run(0.2, 2.05, 11.0), run(0.0, 1.92, 7.78), _row("tta-ema", 1, 0.8)])
    lines = [l for l in text.splitlines() if l.startswith("| 0.125")]
    assert lines == ["| 0.125 | CPU (2 cores) fp32 | 0 | 0 | 1.920 | 7.78 | 1 (first_min_capped) | 0.02 |",
                     "| 0.125 | CPU (2 cores) fp32 | 0 | 0.2 | 2.050 | 11 | 1 (first_min_capped) | 0.02 |"]
    assert study.plot_smoothing_range_tests([run(0.2, 2.05, 11.0)], tmp_path / "r.png").stat().st_size > 5000


def test_the_glance_names_the_notebook_runs_machine_where_it_is_not_the_seeds_one():
    from benchmarks.render import glance_table

    full = {"device_name": "GPU X", "precision": "bf16", "torch": "2.11", "train_images": 50000, "test_images": 10000,
            "seeds": [{"seed": 0, "final_test_acc": 0.91, "lr_max": 0.3}, {"seed": 1, "final_test_acc": 0.92, "lr_max": 0.4}],
            "final_test_acc": {"n": 2, "mean": 0.915, "std": 0.007, "min": 0.91, "max": 0.92},
            "seconds_per_epoch": {"mean": 0.64}}
    history = {"lr": [0.1, 0.4, 0.2, 0.01], "steps_per_epoch": 2, "final_test_acc": 0.9111,
               "epochs": [{"train_seconds": 210.0}, {"train_seconds": 216.0}]}

    def cfg(device, precision="bf16", torch="2.11"):
        return {"seed": 0, "batch_size": 512, "lr_min": 0.01, "lr_max": 0.4,
                "resolved": {"parameters": 6573120, "device_name": device, "precision": precision, "torch": torch}}

    times = [{"wall_seconds": 6000.0, "label": "CPU (2 cores), bf16, torch 2.14.1, 2026-12-03, python -m helpers notebook"},
             {"wall_seconds": 101.0, "label": "GPU X, bf16, torch 2.11, 2026-11-24, python -m helpers notebook"}]
    here = glance_table(full, cfg("GPU X"), history, times[1:])
    assert here.startswith("Measured on GPU X, bf16, torch 2.11, full width, the JPEG copy of CIFAR-10 (50,000 / 10,000 images).")
    assert "the notebook's own run of seed 0: 91.11% (two GPU runs of one seed differ" in here
    assert "| 0.64 s of training in the seeds' runs; 213 s (median) in the notebook's run (in a" in here
    assert "| 1.7 min for Run all on GPU X, bf16, torch 2.11: data loading" in here
    there = glance_table(full, cfg("CPU (2 cores)", torch="2.14.1"), history, times)
    assert "images); the notebook's own run on CPU (2 cores), bf16, torch 2.14.1.\n" in there
    assert ("the notebook's own run of seed 0 on CPU (2 cores), bf16, torch 2.14.1: 91.11% (the same seed on another "
            "machine ends within the seed noise") in there
    assert "213 s (median) in the notebook's run on CPU (2 cores), bf16, torch 2.14.1 (in a Jupyter" in there
    assert "| 1.7 h for Run all on CPU (2 cores), bf16, torch 2.14.1; 1.7 min for Run all on GPU X" in there
    assert "other machine" in glance_table(full, cfg("GPU X", precision="fp16"), history)  # precision counts too
    assert "the whole notebook" not in glance_table(full, cfg("GPU X"), history)


def test_the_notebooks_times_come_from_its_cells_timestamps(tmp_path):
    from benchmarks.notebook_times import notebook_times
    from benchmarks.render import notebook_time
    from helpers.errors import UserError

    def cell(source, start, end):
        return {"cell_type": "code", "source": [source], "metadata": {"execution": {
            "iopub.status.busy": f"2026-11-24T11:47:{start:02d}.000000Z",
            "iopub.status.idle": f"2026-11-24T11:47:{end:02d}.500000Z"}}}

    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [cell("import x", 0, 1), {"cell_type": "markdown", "source": ["# a"]},
                                        cell("data = run.data  # loads", 2, 9), cell("run.range_test()", 10, 12),
                                        cell("history = run.fit()", 13, 40)]}))
    t = notebook_times(nb)
    assert [c["seconds"] for c in t["cells"]] == [1.5, 7.5, 2.5, 27.5] and t["wall_seconds"] == 40.5
    assert notebook_time({"label": "GPU X", **t}) == (
        "The whole notebook ran in 0.7 min (GPU X; Run all, from its cells' saved timestamps): 8 s to load the "
        "data, 2 s for the range test, 28 s to train.\n")
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["x"], "metadata": {}}]}))
    with pytest.raises(UserError, match="holds no cell timestamps"):
        notebook_times(nb)


def test_precision_table_pairs_each_precision_with_fp32_per_width_and_lists_a_repeat_without_pooling_it():
    from benchmarks.render import precision_table

    def run(width, precision, seed, acc, arm="ours", device="CPU (2 cores)", **more):
        return {"arm": arm, "width": width, "precision": precision, "seed": seed, "final_test_acc": acc,
                "device_name": device, **more}

    rows = [run(0.125, "fp32", s, a) for s, a in ((0, 0.80), (1, 0.82), (2, 0.84))]
    rows += [run(0.125, "bf16", s, a) for s, a in ((0, 0.81), (1, 0.83), (2, 0.85))]
    rows += [run(0.125, "fp32", 0, 0.90),  # a repeat of seed 0: listed, never pooled
             run(0.125, "bf16", 0, 0.10, arm="ref"), run(0.125, "bf16", 1, 0.10, device="NVIDIA H100"),
             run(0.125, "fp16", 0, 0.815, loss_scale=[32768.0, 8192.0, 16384.0]), run(0.25, "bf16", 0, 0.86)]
    lines = precision_table(rows).splitlines()
    assert lines[2:6] == ["| 0.25 | bf16 | 1 (0) | 86.00% | - | - | - |",
                          "| 0.125 | fp32 | 3 (0, 1, 2) | 82.00% +- 2.00 | - | - | - |",
                          "| 0.125 | bf16 | 3 (0, 1, 2) | 83.00% +- 2.00 | +1.00 points | 0.6 | no |",
                          "| 0.125 | fp16 | 1 (0) | 81.50% | -0.50 points | - | - |"]  # one seed: no t
    assert "Seeds run twice (the first run counts above): width 0.125, fp32, seed 0: 80.00%, 90.00%." in lines
    assert lines[-1] == ("fp16's loss scale at the epochs' ends: width 0.125, seed 0: 32,768 after epoch 1, "
                         "lowest 8,192 after epoch 2, 16,384 at the end.")


def test_a_range_test_in_another_precision_sits_under_the_fp32_test_of_its_width_and_seed():
    from benchmarks.render import precision_range_table

    def test(losses, precision="fp32", seed=0):
        values = {"first_min": 2.0, "first_min_capped": 1.0, "smith_min": 0.02}
        return {"width": 0.125, "seed": seed, "precision": precision, "lrs": [0.1, 1, 10, 100][:len(losses)],
                "losses": losses, "suggestions": values, "stopped_early": "diverged", "seconds": 1.0}

    fp32 = [test([2.3, 2.0, 1.9, 5.0]), test([2.3, 2.2], seed=1)]
    # up to fp32's lowest point (step 3, included) the largest difference is 0.15; the divergence after it is not read
    table = precision_range_table([test([2.3, 2.05, 1.75, 9.0], "fp16")], fp32)
    rows = table.splitlines()[2:]
    assert [r.split(" | ")[2] for r in rows] == ["fp32", "fp16"] and len(rows) == 2
    assert rows[1].split(" | ")[7] == "0.150" and rows[0].split(" | ")[7] == "-"
    alone = precision_range_table([test([2.3, 2.0], "fp16", seed=7)], fp32).splitlines()[2:]  # no fp32 twin
    wide = {**test([2.3, 2.0, 1.9, 5.0], "fp16"), "variant": "widened"}  # a second test of the same seed
    both = precision_range_table([test([2.3, 2.05, 1.75, 9.0], "fp16"), wide], fp32).splitlines()[2:]
    assert [r.split(" | ")[2] for r in both] == ["fp32", "fp16", "fp16 (widened)"]  # fp32 once
    assert both[2].split(" | ")[7] == "0.000"
    assert len(alone) == 1 and alone[0].split(" | ")[2] == "fp16" and alone[0].split(" | ")[7] == "-"
