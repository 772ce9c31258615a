"""Collect finished run folders into one small JSON of (arm, width, LR rule, seed, LRs, final accuracy,
and each epoch's test accuracies: plain, and with TTA / the weight average where a run had them).

    python -m benchmarks.collect_runs --label "NVIDIA H100, bf16, 2026-11-24" RUN_DIR... \
        --out results/lr_rules/h100.json

Appends to --out when it exists, so runs made on several machines land in one file; each row
keeps its label (device, precision, date, command), so a repeat of the same seed on another
machine stays visible as a repeat. A run collected again (the same folder name, seed, LRs and
curves: no second sample of the seed noise) replaces its row instead of counting twice.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from benchmarks import parser
from helpers.sweep import finished_history


def row(run_dir: Path, label: str, range_test: bool = False) -> dict:
    cfg = json.loads((run_dir / "config.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    # the arm: a ladder queue's folder is named <arm>-w<width>-s<seed>; else the run's own record
    m = re.fullmatch(r"(.+)-w[\d.]+-s\d+", run_dir.name)
    arm = m.group(1) if m else cfg.get("arm", cfg["lr_max_rule"])
    out = {"run": run_dir.name, "label": label, "arm": arm, "width": cfg["width"], "rule": cfg["lr_max_rule"],
            "seed": cfg["seed"], "lr_max": cfg["lr_max"], "lr_min": cfg["lr_min"], "epochs": cfg["epochs"],
            "device_name": cfg["resolved"]["device_name"], "precision": cfg["resolved"]["precision"],
            "block_order": cfg.get("block_order", "assignment"), "final_test_acc": history["final_test_acc"],
            "label_smoothing": cfg.get("label_smoothing", 0.0), "tta": cfg.get("tta", "none"), "ema": cfg.get("ema", 0.0),
            # test_acc, test_acc_tta, test_acc_ema, test_acc_ema_tta (the reference's history has test_acc)
            "curves": {k: [e[k] for e in history["epochs"]] for k in (history["epochs"] or [{}])[-1]
                       if k.startswith("test_acc")}}
    if any("loss_scale" in e for e in history["epochs"]):  # fp16: the loss scale at each epoch's end
        out["loss_scale"] = [e.get("loss_scale") for e in history["epochs"]]
    # what a CPU run's numbers depend on (helpers.provenance), where the run recorded it
    out.update({k: cfg["resolved"][k] for k in ("torch", "cpu_model", "cpu_capability", "cpu_threads", "versions")
                if k in cfg["resolved"]})
    if range_test and (run_dir / "lr_find.json").is_file():  # the curve (~6 KB) for figures that compare tests
        found = json.loads((run_dir / "lr_find.json").read_text())
        out["range_test"] = {k: found[k] for k in ("lrs", "losses", "suggestions", "lr_max", "lr_min", "rule")}
    return out


# what makes two rows one run: a repeat elsewhere differs in its curves (CPU runs repeat bit for bit
# only on the same machine and libraries, and then add nothing to n)
SAME_RUN = ("run", "seed", "lr_max", "lr_min", "final_test_acc", "curves")


def merge(rows: list[dict], new: dict) -> list[dict]:
    """rows with new appended, or in place of the row that is the same run collected before."""
    same = [i for i, r in enumerate(rows) if all(r.get(k) == new.get(k) for k in SAME_RUN)]
    return [new if i in same else r for i, r in enumerate(rows)] if same else rows + [new]


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__, "python -m benchmarks.collect_runs")
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--label", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--range-test", action="store_true", help="keep each run's range-test curve (lr_find.json)")
    args = p.parse_args(argv)
    rows = json.loads(args.out.read_text())["runs"] if args.out.is_file() else []
    for d in args.runs:
        if finished_history(d):  # an interrupted run: left out
            rows = merge(rows, row(d, args.label, args.range_test))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": rows}, indent=1))
    print(f"{len(rows)} runs in {args.out}")


if __name__ == "__main__":
    main()
