"""Collect finished run folders into one small JSON of (width, LR rule, seed, LRs, final accuracy).

    python benchmarks/collect_runs.py --label "H100 call 1" RUN_DIR... --out results/lr_rules/h100.json

Appends to --out when it exists, so runs fetched from several GPU calls land in one file; each
row keeps its label, so a repeat of the same seed on another call stays visible as a repeat.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def row(run_dir: Path, label: str) -> dict:
    cfg = json.loads((run_dir / "config.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    return {"run": run_dir.name, "label": label, "width": cfg["width"], "rule": cfg["lr_max_rule"],
            "seed": cfg["seed"], "lr_max": cfg["lr_max"], "lr_min": cfg["lr_min"], "epochs": cfg["epochs"],
            "device_name": cfg["resolved"]["device_name"], "precision": cfg["resolved"]["precision"],
            "final_test_acc": history["final_test_acc"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--label", required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    rows = json.loads(args.out.read_text())["runs"] if args.out.is_file() else []
    rows += [row(d, args.label) for d in args.runs if (d / "history.json").is_file()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": rows}, indent=1))
    print(f"{len(rows)} runs in {args.out}")


if __name__ == "__main__":
    main()
