"""Mutation testing's evidence: mutmut's verdicts per module -> ``results/mutation.json`` and,
mutant by mutant, ``results/mutation_verdicts.json`` (so that every figure can be checked).

    mutmut run --max-children 2                # restartable: finished mutants keep their verdict
    python -m benchmarks.mutation_report       # reads mutants/*.meta, writes both files
    python -m benchmarks.render                  # renders the table of docs/TESTING.md

docs/TESTING.md lists surviving mutants in two sections, each as lines ``- `NAME`: why``:

* "Survivors only a GPU can tell": the mutant changes what a run does on a GPU (a crash on tensors
  on two devices, a clock read before the GPU's work is done, a copy that stalls it) and no CPU
  test can see it. It counts as **survived**, and apart as "only a GPU can tell".
* "Judged equivalent": no device, precision or input can tell it from the original. Counted apart
  from the share.

A listed mutant that a test kills keeps its verdict (killed), and the report names it (and any
listed mutant absent from the code) under ``listed_but_not_surviving`` so that its line can go.

A whole run takes hours on 2 cores. ``--earlier results/mutation.json`` keeps, for each module this
run has not finished, the row and verdicts of the earlier report where that module was finished,
marked as such (with its date and note), instead of a row of mutants not run yet. An earlier report
written before verdicts were kept (no verdicts file beside it) gives its rows alone, and says so; the
verdicts file then holds this run's verdicts for those modules, as far as it got.
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
LISTED = re.compile(r"^- `(?P<name>[\w.ǁ]+)`: ", re.M)
GPU_ONLY, EQUIVALENT = "Survivors only a GPU can tell", "Judged equivalent"
COUNTS = ("killed", "timeout", "survived", "gpu only", "equivalent", "no tests", "not run yet", "suspicious",
          "skipped")


def listed(doc: Path, heading: str) -> set[str]:
    """The names listed under ``## heading`` of ``doc`` (up to the next ``## ``)."""
    text = doc.read_text() if doc.is_file() else ""
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0] if f"\n## {heading}\n" in text else ""
    return {m.group("name") for m in LISTED.finditer(section)}


def module_of(meta: Path, mutants: Path) -> str:
    return meta.relative_to(mutants).as_posix()[: -len(".meta")]


def verdict_of(name: str, code, gpu_only: set[str], equivalent: set[str]) -> str:
    verdict = VERDICT.get(code, "suspicious")
    if verdict == "survived" and name in equivalent:
        return "equivalent"
    return "gpu only" if verdict == "survived" and name in gpu_only else verdict


def ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7, 9, 10] -> "1-3,7,9-10"."""
    out, numbers = [], sorted(numbers)
    for i, n in enumerate(numbers):
        if i and n == numbers[i - 1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)


def read_verdicts(mutants: Path, doc: Path) -> dict[str, dict[str, str]]:
    """{module: {mutant name: verdict}} from mutmut's meta files and the doc's two lists."""
    gpu_only, equivalent = listed(doc, GPU_ONLY), listed(doc, EQUIVALENT)
    return {module_of(meta, mutants): {name: verdict_of(name, code, gpu_only, equivalent)
                                       for name, code in json.loads(meta.read_text()).get("exit_code_by_key", {}).items()}
            for meta in sorted(mutants.rglob("*.py.meta"))}


def compact(verdicts: dict[str, dict[str, str]]) -> dict[str, dict[str, dict[str, str]]]:
    """{module: {function: {verdict: mutant numbers as ranges}}}: every verdict in a few kilobytes."""
    out: dict[str, dict[str, dict[str, list[int]]]] = {}
    for module, names in verdicts.items():
        for name, verdict in names.items():
            function, _, number = name.rpartition("__mutmut_")
            out.setdefault(module, {}).setdefault(function, {}).setdefault(verdict, []).append(int(number))
    return {m: {f: {v: ranges(n) for v, n in sorted(vs.items())} for f, vs in sorted(fs.items())}
            for m, fs in out.items()}


def report(verdicts: dict[str, dict[str, str]], doc: Path, note: str = "") -> dict:
    modules = {}
    for module, names in verdicts.items():
        counts = Counter(names.values())
        counts["survived"] += counts["gpu only"]  # survivors all, those only a GPU can tell among them
        # a mutant no test reaches is a bug no test would catch: it counts against the share
        checked = counts["killed"] + counts["timeout"] + counts["survived"] + counts["no tests"]
        modules[module] = {
            "generated": len(names), **{k: counts[k] for k in COUNTS},
            # of the mutants run and not judged equivalent: the share the tests killed
            "killed_share": round((counts["killed"] + counts["timeout"]) / checked, 4) if checked else None}
    # a listed mutant that ran and did not survive, or one absent from the code (one not run yet waits)
    kept = {name for names in verdicts.values() for name, v in names.items()
            if v in ("gpu only", "equivalent", "not run yet")}
    stale = sorted((listed(doc, GPU_ONLY) | listed(doc, EQUIVALENT)) - kept)
    try:
        tool = f"mutmut {metadata.version('mutmut')}"
    except metadata.PackageNotFoundError:  # the verdicts can be read without it
        tool = "mutmut"
    return {"tool": tool, "date": date.today().isoformat(),
            "command": "mutmut run --max-children 2; python -m benchmarks.mutation_report",
            "config": "pyproject.toml [tool.mutmut]", "note": note, "modules": modules,
            "listed_but_not_surviving": stale}


def keep_earlier(result: dict, compacted: dict, earlier: dict, earlier_verdicts: dict | None) -> None:
    """Each module this run has not finished takes the earlier report's row and verdicts where that
    report finished it (in place); the rows so kept are marked ``"earlier": true``.
    ``earlier_verdicts`` None: that report kept none; only its rows are kept."""
    for module, row in result["modules"].items():
        before = earlier["modules"].get(module)
        if row["not run yet"] and before is not None and not before["not run yet"] and (
                earlier_verdicts is None or module in earlier_verdicts):
            result["modules"][module] = {**before, "earlier": True}
            if earlier_verdicts is not None:
                compacted[module] = earlier_verdicts[module]
    if any(row.get("earlier") for row in result["modules"].values()):
        result["earlier"] = {"date": earlier["date"], "note": earlier.get("note", ""),
                             "verdicts_kept": earlier_verdicts is not None}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "python -m benchmarks.mutation_report")
    p.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "TESTING.md")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "mutation.json")
    p.add_argument("--verdicts", type=Path, default=ROOT / "results" / "mutation_verdicts.json",
                   help="each mutant's verdict, by module and function")
    p.add_argument("--note", default="", help="what the verdicts were measured against, e.g. the tests' commit")
    p.add_argument("--earlier", type=Path, help="an earlier report (its verdicts file beside it, named as --verdicts "
                   "names this one's): modules this run has not finished keep their rows from it")
    args = p.parse_args(argv)
    if not any(args.mutants.rglob("*.meta")):
        raise SystemExit(f"error: no mutmut results under {args.mutants}; run 'mutmut run' first")
    verdicts = read_verdicts(args.mutants, args.doc)
    result, compacted = report(verdicts, args.doc, args.note), compact(verdicts)
    if args.earlier is not None:
        earlier_verdicts = args.earlier.with_name(args.verdicts.name)
        try:
            kept = json.loads(earlier_verdicts.read_text()) if earlier_verdicts.exists() else None
            keep_earlier(result, compacted, json.loads(args.earlier.read_text()), kept)
        except (OSError, ValueError, KeyError) as e:
            raise SystemExit(f"error: --earlier needs a readable report (and its verdicts where it kept them: "
                             f"{args.earlier}, {earlier_verdicts}): {e.__class__.__name__}: {e}") from None
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.verdicts.write_text(json.dumps(compacted, indent=1) + "\n")
    print(f"wrote {args.out} and {args.verdicts}")
    for name in result["listed_but_not_surviving"]:
        print(f"listed in {args.doc.name} but not surviving (remove its line): {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
