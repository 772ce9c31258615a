"""The lab's commands (``python -m benchmarks.NAME``) speak as the product's do: a whole sentence
for --help's description, one line and exit status 2 for a bad option or a missing file."""
from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest

import benchmarks

COMMANDS = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)
                  if hasattr(importlib.import_module(f"benchmarks.{m.name}"), "main"))


def test_every_lab_tool_with_a_main_is_checked():
    assert {"render", "ladder", "reference", "collect_runs", "full_size", "speed"} <= set(COMMANDS)


def exit_code(name: str, option: str, monkeypatch) -> int:
    """The status ``python -m benchmarks.NAME OPTION`` exits with, as its main() is called."""
    monkeypatch.setattr(sys, "argv", [name, option])
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(f"benchmarks.{name}").main()
    return stop.value.code


@pytest.mark.parametrize("name", COMMANDS)
def test_help_describes_the_tool_in_whole_sentences(name, monkeypatch, capsys):
    module = importlib.import_module(f"benchmarks.{name}")
    assert exit_code(name, "--help", monkeypatch) == 0
    out = " ".join(capsys.readouterr().out.split())
    first = " ".join(module.__doc__.strip().split("\n\n")[0].split())
    assert first.rstrip(":.") in out and f"usage: python -m benchmarks.{name}" in out
    description = out[out.index(first.rstrip(":.")):]
    assert description[len(first.rstrip(":."))] == "."  # the sentence ends: nothing cut mid-way


@pytest.mark.parametrize("name", COMMANDS)
def test_a_bad_option_is_one_line(name, monkeypatch, capsys):
    assert exit_code(name, "--no-such-option", monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_render_of_a_missing_document_is_one_line_and_draws_nothing(tmp_path, capsys):
    from benchmarks.render import main

    assert main(["--doc", str(tmp_path / "nothere.md"), "--assets", str(tmp_path / "assets")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no document" in err and "nothere.md" in err
    assert not (tmp_path / "assets").exists()


def test_every_file_under_results_has_its_row_in_the_labs_readme():
    """benchmarks/README.md says how each results file was made: a file without its row is evidence
    no reader can reproduce."""
    import fnmatch
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    rows = [line.split("|")[1] for line in (root / "benchmarks" / "README.md").read_text().splitlines()
            if line.startswith("| `")]
    patterns = [p for cell in rows for p in re.findall(r"`([^`]+)`", cell)]
    files = sorted(p.relative_to(root / "results").as_posix() for p in (root / "results").rglob("*") if p.is_file())
    assert files and patterns
    unlisted = [f for f in files if not any(fnmatch.fnmatchcase(f, p) for p in patterns)]
    assert not unlisted, f"results files with no row in benchmarks/README.md: {unlisted}"
