"""The project speaks of itself alone: what a reader reads names devices, precisions, dates and
commands, never how the project was made (sessions, lent machines, calls, issue numbers), and
never a path of the machine that made a run (the docs write DIR and RUNS)."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

WORDS = re.compile(r"\bsessions?\b|\blent\b|\bcalls? \d+\b|\bissues? #?\d+\b|\bsession-\d", re.IGNORECASE)
# Phrases that tell how the project was made rather than what it is: a reader cannot place them.
# A reviewer extends this list; each entry is a regular expression, matched without regard to case.
HOW_IT_WAS_MADE = [
    r"\bseed submission",                       # the project's starting point, not the reader's
    r"\bprevious (default|version|rule|code)",  # a history the reader never saw
    r"\bwhere the project is developed",
    r"\bthese machines\b",
    r"(?<![\w/])shared/|\.\./shared/",            # a folder beside the checkout, not in the repository
    r"\b(each )?started fresh\b",
    r"\b(first|old|earlier) version\b",
    r"\bthe issue'?s?\b",
    r"\bno longer\b",                          # says what the code was, not what it is
    r"\bthe old (code|default|rule)\b",
]
PHRASES = re.compile("|".join(HOW_IT_WAS_MADE), re.IGNORECASE)
# a home, temporary or work folder of a machine; Colab's /content is where every user's files are
MACHINE_PATH = re.compile(r"(?<![\w.~$])/(?:root|tmp|home|Users|work|var/folders)/")


def read_texts() -> dict[str, str]:
    """What a reader reads: the README, docs/, the notebook (sources and outputs), results/."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "results").rglob("*.json")),
             ROOT / "benchmarks" / "README.md", *sorted((ROOT / "notebooks").glob("*.ipynb"))]
    return {str(p.relative_to(ROOT)): p.read_text() for p in files if p.is_file()}


def code_texts() -> dict[str, str]:
    files = [*sorted((ROOT / "helpers").rglob("*.py")), *sorted((ROOT / "benchmarks").rglob("*.py")),
             *sorted((ROOT / "benchmarks").rglob("*.sh"))]
    return {str(p.relative_to(ROOT)): p.read_text() for p in files}


def hits(pattern: re.Pattern, texts: dict[str, str]) -> list[str]:
    return [f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
            for name, text in texts.items() for m in pattern.finditer(text)]


def test_the_patterns_catch_what_they_exist_for():
    bad = ["no GPU was lent in session 6", "H100 call 1", "(issue 21)", "session 5's runs", "Sessions"]
    assert all(WORDS.search(s) for s in bad)
    assert not any(WORDS.search(s) for s in ["the sessionless lock", "a lentil", "called 3 times", "issues"])
    assert MACHINE_PATH.search("--out /tmp/ev/compare") and MACHINE_PATH.search("python x.py /root/runs/a")
    assert not MACHINE_PATH.search("/content/drive/MyDrive") and not MACHINE_PATH.search("RUNS/compare")


def test_no_word_about_how_the_project_was_made():
    found = hits(WORDS, {**read_texts(), **code_texts()})
    assert not found, "\n".join(found)


@pytest.mark.slow
def test_no_phrase_about_how_the_project_was_made():
    found = hits(PHRASES, {**read_texts(), **code_texts()})
    assert not found, "\n".join(found)


def test_the_phrases_catch_their_kind_and_leave_plain_words():
    bad = ["near the seed submission's failed 0.0146", "the minimum's LR / 10, the previous default",
           "no lossless copy can be had where the project is developed", "the only copy these machines have",
           "as `shared/data`'s archive unpacks", "see ../shared/gpu-bundle/make.sh", "ran on two machines, each started fresh",
           "(this class's first version)", "# The issue's arms", "it no longer keeps a copy"]
    assert all(PHRASES.search(s) for s in bad), [s for s in bad if not PHRASES.search(s)]
    assert not any(PHRASES.search(s) for s in ["the seed's run", "a shared fixture", "the first valley",
                                                "issues in one line", "the longest stretch",
                                                "--data-dir /shared/cifar10"])


def test_no_path_of_a_machine_in_what_a_reader_reads():
    found = hits(MACHINE_PATH, read_texts())
    assert not found, "\n".join(found)


# The labels under results/ were rewritten once (benchmarks/relabel_results.py, since removed); these
# are the fingerprints of everything but the strings in those files as they were before the rewrite.
# For a file of runs, the runs it held then (later runs are appended after them).
BEFORE_RELABEL = {
    "compare/summary.json": (None, "59b72e597a3cef30"),
    "sweep/cpu.json": (None, "05f6f53c3a01540f"),
    "ladder/cpu.json": (15, "ae8800ddc73045dd"),
    "lr_rules/cpu.json": (13, "d0916426923586f0"),
    "lr_rules/h100.json": (21, "8b0f9c54e820b15c"),
    "tricks/cpu.json": (7, "9af1fdb6193a9be5"),
}


def numbers(value):
    """Everything but the strings."""
    if isinstance(value, dict):
        return {k: numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers(v) for v in value]
    return None if isinstance(value, str) else value


def fingerprint(value) -> str:
    return hashlib.sha256(json.dumps(numbers(value), sort_keys=True).encode()).hexdigest()[:16]


def test_the_relabelled_results_hold_every_value_they_held_before():
    for rel, (n, expected) in BEFORE_RELABEL.items():
        data = json.loads((ROOT / "results" / rel).read_text())
        assert fingerprint(data if n is None else data["runs"][:n]) == expected, f"results/{rel}: a value changed"


def test_the_fingerprint_sees_a_changed_value_and_ignores_a_label():
    runs = [{"label": "old", "final_test_acc": 0.818, "curves": {"test_acc": [0.1, 0.2]}}]
    relabelled = [{**runs[0], "label": "2-core CPU, fp32, 2026-11-24"}]
    changed = [{**runs[0], "curves": {"test_acc": [0.1, 0.21]}}]
    assert fingerprint(runs) == fingerprint(relabelled) != fingerprint(changed)
