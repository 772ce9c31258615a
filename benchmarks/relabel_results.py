"""One-off: give the runs under ``results/`` labels a reader can check (device, precision, date,
the command that made them) and replace machine paths in recorded commands by ``DIR`` / ``RUNS``.

    python -m benchmarks.relabel_results [--results results]

Only strings change: every number, list and key stays as it was (checked before anything is
written; ``tests/test_relabel.py`` checks it on the committed files and on an old-style copy).
Running it again changes nothing.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

CPU = "2-core CPU, fp32"
LADDER = "python -m benchmarks.ladder"
LABELS = {
    "CPU session 5": f"{CPU}, 2026-11-24, {LADDER} rule-NAME:WIDTH:SEED",
    "CPU session 5 (benchmarks/rules_cpu.sh, the default rule)":
        f"{CPU}, 2026-11-24, {LADDER} rule-first_min_capped:WIDTH:SEED (the default, arm ours)",
    "CPU session 6 (benchmarks/ladder.sh)": f"{CPU}, 2026-11-25, {LADDER} ARM:WIDTH:SEED",
    "CPU session 7 (benchmarks/ladder.sh)": f"{CPU}, 2026-11-25, {LADDER} ARM:WIDTH:SEED",
    "CPU session 7 (benchmarks/ladder.py)": f"{CPU}, 2026-11-25, {LADDER} ARM:WIDTH:SEED",
    # two H100 machines, each started fresh: the same seed's range test differs between them (cuDNN)
    "H100 call 1": "NVIDIA H100, bf16, torch 2.11.0+cu130, 2026-11-24, first machine",
    "H100 call 3": "NVIDIA H100, bf16, torch 2.11.0+cu130, 2026-11-24, second machine",
}
# an absolute path of the machine that ran a command -> the placeholder the docs use
PATHS = [(re.compile(r"(?<![\w.])/(?:tmp|root|home/[^/\s]+)/(?:ev/|runs/)?"), "RUNS/")]


def relabel(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: relabel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [relabel(v) for v in value]
    if isinstance(value, str):
        value = LABELS.get(value, value)
        for pattern, placeholder in PATHS:
            value = pattern.sub(placeholder, value)
    return value


def numbers(value: Any) -> Any:
    """Everything but the strings: what the rewrite must leave exactly as it was."""
    if isinstance(value, dict):
        return {k: numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers(v) for v in value]
    return None if isinstance(value, str) else value


def relabel_file(path: Path) -> bool:
    """Rewrite ``path`` in place (same indentation); True when anything changed."""
    text = path.read_text()
    before = json.loads(text)
    after = relabel(before)
    if after == before:
        return False
    assert numbers(after) == numbers(before), f"{path}: a value changed"
    indent = len(re.match(r'[{\[]\n( *)', text).group(1)) if re.match(r'[{\[]\n( *)', text) else None
    path.write_text(json.dumps(after, indent=indent) + ("\n" if text.endswith("\n") else ""))
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=Path("results"))
    args = p.parse_args(argv)
    for path in sorted(args.results.rglob("*.json")):
        if relabel_file(path):
            print(f"relabelled {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
