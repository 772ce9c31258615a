"""LR range tests across network widths and seeds, for choosing the LR rules.

    python -m benchmarks.range_tests --data-dir DIR --widths 1 0.5 0.25 0.125 --seeds 0 1 2

Loads the data once and writes each test's curve and every rule's suggestion to
``results/range_tests/w<width>-s<seed>.json`` (a test already there is skipped, so an
interrupted sweep continues). ``python -m benchmarks.render`` renders the table and figure.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from benchmarks import parser
from helpers.config import TrainConfig
from helpers.lr_finder import find_lrs
from helpers.data import load_data


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__, "python -m benchmarks.range_tests")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.125])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="results/range_tests")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_data(TrainConfig(data_dir=args.data_dir, download=False))
    for width in args.widths:
        for seed in args.seeds:
            path = out / f"w{width:g}-s{seed}.json"
            if path.exists():
                continue
            cfg = TrainConfig(data_dir=args.data_dir, width=width, seed=seed, device=args.device,
                              progress=False)
            result = find_lrs(cfg, data)
            record = {"width": width, "seed": seed, "device": args.device, **asdict(result)}
            path.write_text(json.dumps(record, indent=1))
            print(f"wrote {path}: {result.suggestions}", flush=True)


if __name__ == "__main__":
    main()
