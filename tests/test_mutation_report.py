"""benchmarks/mutation_report.py: mutmut's verdicts per module; survivors only a GPU can tell counted
as survived, judged equivalents apart; every verdict written out."""
import json

import pytest

from benchmarks import mutation_report


def test_verdicts_are_counted_per_module_gpu_only_survivors_as_survived_and_equivalents_apart(tmp_path):
    mutants = tmp_path / "mutants" / "helpers"
    mutants.mkdir(parents=True)
    codes = {"helpers.schedule.x_f__mutmut_1": 1, "helpers.schedule.x_f__mutmut_2": 0,
             "helpers.schedule.x_f__mutmut_3": 0, "helpers.schedule.x_f__mutmut_4": 33,
             "helpers.schedule.x_f__mutmut_5": None, "helpers.schedule.x_f__mutmut_6": 36,
             "helpers.schedule.x_f__mutmut_7": -9, "helpers.schedule.x_f__mutmut_8": 0,
             "helpers.schedule.xǁAǁg__mutmut_1": 1}
    (mutants / "schedule.py.meta").write_text(json.dumps({"exit_code_by_key": codes}))
    doc = tmp_path / "TESTING.md"
    doc.write_text("# Testing\n\n## Survivors only a GPU can tell\n\n- `helpers.schedule.x_f__mutmut_8`: a tensor left "
                   "on the CPU.\n- `helpers.schedule.x_f__mutmut_6`: listed, but timed out: stays a timeout.\n\n"
                   "## Judged equivalent\n\n- `helpers.schedule.x_f__mutmut_3`: a reason.\n"
                   "- `helpers.schedule.x_f__mutmut_1`: listed, but killed: stays killed.\n"
                   "- `helpers.schedule.x_f__mutmut_5`: listed, not run yet: waits.\n"
                   "- `helpers.schedule.x_gone__mutmut_1`: absent from the code.\n\n## Next\n\n"
                   "- `helpers.schedule.x_f__mutmut_2`: not a list the report reads.\n")
    out, verdicts = tmp_path / "mutation.json", tmp_path / "verdicts.json"
    assert mutation_report.main(["--mutants", str(tmp_path / "mutants"), "--doc", str(doc), "--out", str(out),
                                 "--verdicts", str(verdicts)]) == 0
    result = json.loads(out.read_text())
    m = result["modules"]["helpers/schedule.py"]
    assert (m["generated"], m["killed"], m["timeout"], m["survived"], m["gpu only"], m["equivalent"], m["no tests"],
            m["not run yet"]) == (9, 2, 2, 2, 1, 1, 1, 1)
    assert m["killed_share"] == round(4 / 7, 4)  # (killed + timeout) / (killed + timeout + survived + no tests)
    assert result["listed_but_not_surviving"] == ["helpers.schedule.x_f__mutmut_1", "helpers.schedule.x_f__mutmut_6",
                                                  "helpers.schedule.x_gone__mutmut_1"]
    assert json.loads(verdicts.read_text()) == {"helpers/schedule.py": {
        "helpers.schedule.x_f": {"equivalent": "3", "gpu only": "8", "killed": "1", "no tests": "4",
                                 "not run yet": "5", "survived": "2", "timeout": "6-7"},
        "helpers.schedule.xǁAǁg": {"killed": "1"}}}


def test_ranges_are_written_short():
    assert mutation_report.ranges([9, 1, 2, 3, 7, 10]) == "1-3,7,9-10"
    assert mutation_report.ranges([4]) == "4" and mutation_report.ranges([]) == ""


def test_a_module_this_run_has_not_finished_keeps_the_row_of_the_last_run_that_did(tmp_path):
    from benchmarks.render import mutation_table

    mutants = tmp_path / "mutants" / "helpers"
    mutants.mkdir(parents=True)
    (mutants / "schedule.py.meta").write_text(json.dumps({"exit_code_by_key": {
        "helpers.schedule.x_f__mutmut_1": 1, "helpers.schedule.x_f__mutmut_2": None}}))
    (mutants / "stats.py.meta").write_text(json.dumps({"exit_code_by_key": {"helpers.stats.x_g__mutmut_1": 0}}))
    (mutants / "model.py.meta").write_text(json.dumps({"exit_code_by_key": {"helpers.model.x_h__mutmut_1": None}}))
    doc = tmp_path / "TESTING.md"
    doc.write_text("# Testing\n")
    row = {"generated": 2, "killed": 2, "timeout": 0, "survived": 0, "gpu only": 0, "equivalent": 0, "no tests": 0,
           "not run yet": 0, "suspicious": 0, "skipped": 0, "killed_share": 1.0}
    earlier = tmp_path / "old" / "mutation.json"
    earlier.parent.mkdir()
    earlier.write_text(json.dumps({"date": "2026-11-29", "note": "Tests at commit 1f2f2ef.", "modules": {
        "helpers/schedule.py": row, "helpers/stats.py": row, "helpers/model.py": {**row, "not run yet": 1}}}))
    (earlier.parent / "verdicts.json").write_text(json.dumps({
        "helpers/schedule.py": {"helpers.schedule.x_f": {"killed": "1-2"}},
        "helpers/stats.py": {"helpers.stats.x_g": {"killed": "1-2"}},
        "helpers/model.py": {"helpers.model.x_h": {"killed": "1", "not run yet": "2"}}}))
    out, verdicts = tmp_path / "mutation.json", tmp_path / "verdicts.json"
    assert mutation_report.main(["--mutants", str(tmp_path / "mutants"), "--doc", str(doc), "--out", str(out),
                                 "--verdicts", str(verdicts), "--earlier", str(earlier), "--note", "Now."]) == 0
    result = json.loads(out.read_text())
    assert result["modules"]["helpers/schedule.py"] == {**row, "earlier": True}  # finished before, not yet now
    assert result["modules"]["helpers/stats.py"]["survived"] == 1  # finished now: this run's row
    assert result["modules"]["helpers/model.py"] == {**row, "generated": 1, "killed": 0, "not run yet": 1,
                                                     "killed_share": None}  # finished by neither: this run's row
    assert result["earlier"] == {"date": "2026-11-29", "note": "Tests at commit 1f2f2ef.", "verdicts_kept": True}
    assert json.loads(verdicts.read_text())["helpers/schedule.py"] == {"helpers.schedule.x_f": {"killed": "1-2"}}
    table = mutation_table(result)
    assert "| `helpers/schedule.py` (a) | 2 |" in table and "| `helpers/stats.py` | 1 |" in table
    assert table.endswith("\n\n(a) This run has not finished the module yet: its row is the last run that did, "
                          "2026-11-29. Tests at commit 1f2f2ef.\n")
    args = ["--mutants", str(tmp_path / "mutants"), "--doc", str(doc), "--out", str(out), "--verdicts", str(verdicts),
            "--earlier", str(earlier)]
    (earlier.parent / "verdicts.json").unlink()  # a report from before verdicts were kept: its rows alone
    assert mutation_report.main(args) == 0
    result = json.loads(out.read_text())
    assert result["modules"]["helpers/schedule.py"] == {**row, "earlier": True}
    assert result["earlier"]["verdicts_kept"] is False
    assert json.loads(verdicts.read_text())["helpers/schedule.py"] == {  # this run's, as far as it got
        "helpers.schedule.x_f": {"killed": "1", "not run yet": "2"}}
    assert mutation_table(result).endswith("That run did not keep its verdicts mutant by mutant; "
                                           "results/mutation_verdicts.json holds this run's for those modules, as "
                                           "far as it got.\n")
    earlier.write_text("{not json")
    with pytest.raises(SystemExit, match="--earlier needs a readable report"):
        mutation_report.main(args)
