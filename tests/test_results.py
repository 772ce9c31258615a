"""The README's measured sections are exactly what results/ renders to."""
import json
import shutil
from pathlib import Path

from helpers.results import MARK, fill, sections

ROOT = Path(__file__).parents[1]


def test_fill_replaces_only_marked_sections():
    text = "a\n<!-- results:x -->\nold\n<!-- /results:x -->\nb\n<!-- results:y -->\nkeep\n<!-- /results:y -->\n"
    assert fill(text, {"x": "new\n"}) == text.replace("old\n", "new\n")


def test_readme_sections_match_the_committed_results(tmp_path):
    rendered = sections(ROOT / "results", tmp_path / "assets")
    readme = (ROOT / "README.md").read_text()
    found = {m.group("name"): m.group("body") for m in MARK.finditer(readme)}
    assert rendered, "results/ renders nothing"
    for name, body in rendered.items():
        assert name in found, f"README has no section {name}"
        assert found[name] == body, f"README section {name} is stale: run python -m helpers results"
    for png in (tmp_path / "assets").glob("*.png"):
        assert (ROOT / "assets" / png.name).is_file(), f"assets/{png.name} missing: run python -m helpers results"


def test_results_command_renders_into_a_copy(tmp_path):
    from helpers.cli import main

    shutil.copytree(ROOT / "results", tmp_path / "results")
    (tmp_path / "README.md").write_text("x\n<!-- results:range-tests -->\nstale\n<!-- /results:range-tests -->\n")
    assert main(["results", "--results", str(tmp_path / "results"), "--readme", str(tmp_path / "README.md"),
                 "--assets", str(tmp_path / "assets")]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "stale" not in text and "| width | seeds |" in text and (tmp_path / "assets" / "range_tests.png").is_file()


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
