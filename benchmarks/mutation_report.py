"""Mutation testing's evidence: mutmut's verdicts per module -> ``results/mutation.json``.

    mutmut run --max-children 2                # restartable: finished mutants keep their verdict
    python -m benchmarks.mutation_report       # reads mutants/*.meta, writes results/mutation.json
    python -m benchmarks.render                  # renders the table of docs/TESTING.md

A mutant judged equivalent (no test can tell it from the original) is listed, with the reason,
in docs/TESTING.md under "Judged equivalent" as a line ``- `NAME`: why``; it is counted apart.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date
from importlib import metadata
from pathlib import Path
from benchmarks import parser

ROOT = Path(__file__).resolve().parents[1]
# mutmut's exit codes (mutmut/stats.py): what each verdict is called here
# (mutmut calls -9 and -11 "segfault": the tests' process was killed past its time limit, or crashed; either
# way the tests did not pass, so the mutant was noticed)
VERDICT = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
           24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", -9: "timeout", -11: "killed",
           None: "not run yet", 2: "not run yet"}
JUDGED = re.compile(r"^- `(?P<name>[\w.ǁ]+)`: ", re.M)


def judged_equivalent(doc: Path) -> set[str]:
    text = doc.read_text() if doc.is_file() else ""
    section = text.split("## Judged equivalent", 1)[1] if "## Judged equivalent" in text else ""
    return {m.group("name") for m in JUDGED.finditer(section)}


def module_of(meta: Path, mutants: Path) -> str:
    return meta.relative_to(mutants).as_posix()[: -len(".meta")]


def report(mutants: Path, doc: Path, note: str = "") -> dict:
    equivalent = judged_equivalent(doc)
    modules = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        counts = Counter()
        for name, code in codes.items():
            verdict = VERDICT.get(code, "suspicious")
            if verdict == "survived" and name in equivalent:
                verdict = "equivalent"
            counts[verdict] += 1
        # a mutant no test reaches is a bug no test would catch: it counts against the share
        checked = counts["killed"] + counts["timeout"] + counts["survived"] + counts["no tests"]
        modules[module_of(meta, mutants)] = {
            "generated": len(codes), **{k: counts[k] for k in ("killed", "timeout", "survived", "equivalent",
                                                              "no tests", "not run yet", "suspicious", "skipped")},
            # of the mutants run and not judged equivalent: the share the tests killed
            "killed_share": round((counts["killed"] + counts["timeout"]) / checked, 4) if checked else None}
    try:
        tool = f"mutmut {metadata.version('mutmut')}"
    except metadata.PackageNotFoundError:  # the verdicts can be read without it
        tool = "mutmut"
    return {"tool": tool, "date": date.today().isoformat(),
            "command": "mutmut run --max-children 2; python -m benchmarks.mutation_report",
            "config": "pyproject.toml [tool.mutmut]", "note": note, "modules": modules}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "python -m benchmarks.mutation_report")
    p.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "TESTING.md")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "mutation.json")
    p.add_argument("--note", default="", help="what the verdicts were measured against, e.g. the tests' commit")
    args = p.parse_args(argv)
    if not any(args.mutants.rglob("*.meta")):
        raise SystemExit(f"error: no mutmut results under {args.mutants}; run 'mutmut run' first")
    args.out.write_text(json.dumps(report(args.mutants, args.doc, args.note), indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
