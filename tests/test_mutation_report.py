"""benchmarks/mutation_report.py: mutmut's verdicts per module, equivalents counted apart."""
import json

from benchmarks import mutation_report


def test_verdicts_are_counted_per_module_and_judged_equivalents_apart(tmp_path):
    mutants = tmp_path / "mutants" / "helpers"
    mutants.mkdir(parents=True)
    codes = {"helpers.schedule.x_f__mutmut_1": 1, "helpers.schedule.x_f__mutmut_2": 0,
             "helpers.schedule.x_f__mutmut_3": 0, "helpers.schedule.x_f__mutmut_4": 33,
             "helpers.schedule.x_f__mutmut_5": None, "helpers.schedule.x_f__mutmut_6": 36,
             "helpers.schedule.x_f__mutmut_7": -9}
    (mutants / "schedule.py.meta").write_text(json.dumps({"exit_code_by_key": codes}))
    doc = tmp_path / "TESTING.md"
    doc.write_text("## Judged equivalent\n\n- `helpers.schedule.x_f__mutmut_3`: a reason.\n"
                   "- `helpers.schedule.x_f__mutmut_1`: listed, but killed: stays killed.\n")
    out = tmp_path / "mutation.json"
    assert mutation_report.main(["--mutants", str(tmp_path / "mutants"), "--doc", str(doc), "--out", str(out)]) == 0
    m = json.loads(out.read_text())["modules"]["helpers/schedule.py"]
    assert (m["generated"], m["killed"], m["timeout"], m["survived"], m["equivalent"], m["no tests"],
            m["not run yet"]) == (7, 1, 2, 1, 1, 1, 1)
    assert m["killed_share"] == 0.6  # (killed + timeout) / (killed + timeout + survived + no tests)
