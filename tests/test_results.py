"""The README's measured sections are exactly what results/ renders to."""
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
