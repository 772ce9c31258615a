"""The wall time of an executed notebook, from the timestamps Jupyter saves with each cell's output.

    python -m benchmarks.notebook_times notebooks/superconvergence_resnet9.ipynb --label "NVIDIA H100, bf16, ..." \
        --out results/runs/gpu-h100-w1/notebook.json

Writes the seconds of every code cell (busy to idle, as the kernel reported them) and of the whole
run (the first cell's start to the last cell's end), so a student reads what "Run all" costs.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from benchmarks import parser
from helpers.errors import UserError


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def notebook_times(path: Path) -> dict:
    """{"cells": [{"cell", "first_line", "seconds"}], "wall_seconds", "started"} of an executed notebook."""
    try:
        cells = json.loads(Path(path).read_text())["cells"]
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read the notebook {path}: {e.__class__.__name__}; name an executed .ipynb file") from None
    timed = []
    for i, c in enumerate(cells):
        stamps = c.get("metadata", {}).get("execution", {})
        if c.get("cell_type") == "code" and "iopub.status.busy" in stamps and "iopub.status.idle" in stamps:
            start, end = _time(stamps["iopub.status.busy"]), _time(stamps["iopub.status.idle"])
            source = "".join(c["source"]).strip().splitlines()
            timed.append((i, source[0] if source else "", start, end))
    if not timed:
        raise UserError(f"{path} holds no cell timestamps: execute it with Jupyter, nbclient or "
                        "`python -m helpers notebook` first")
    return {"cells": [{"cell": i, "first_line": line, "seconds": round((end - start).total_seconds(), 1)}
                      for i, line, start, end in timed],
            "wall_seconds": round((timed[-1][3] - timed[0][2]).total_seconds(), 1),
            "started": timed[0][2].isoformat()}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "python -m benchmarks.notebook_times")
    p.add_argument("notebook", type=Path)
    p.add_argument("--label", required=True, help="the machine and precision that executed it")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        times = {"label": args.label, **notebook_times(args.notebook)}
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(times, indent=1) + "\n")
    print(f"wrote {args.out}: {times['wall_seconds']} s over {len(times['cells'])} cells")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
