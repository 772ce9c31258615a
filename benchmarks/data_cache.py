"""Load time of the class-folder copy, cold (decode every JPEG, write the cache) and warm (read the cache).

    python -m benchmarks.data_cache --data-dir DIR --repeats 3 --out results/data_cache.json

Deletes DIR's decoded-data cache first, so the first load is cold; run it on a quiet machine.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from benchmarks import parser
from helpers.data import CACHE_DIR, find_class_folder_root, load_cifar10


def timed_load(data_dir: str) -> float:
    t0 = time.perf_counter()
    load_cifar10(data_dir, download=False, log=lambda s: None)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__, "python -m benchmarks.data_cache")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="results/data_cache.json")
    args = p.parse_args(argv)
    root = find_class_folder_root(Path(args.data_dir))
    if root is None:
        sys.exit(f"error: {args.data_dir} holds no class-folder copy (train/<class>/, test/<class>/)")
    cold, warm = [], []
    for _ in range(args.repeats):
        shutil.rmtree(root / CACHE_DIR, ignore_errors=True)
        cold.append(timed_load(args.data_dir))
        warm.append(timed_load(args.data_dir))
    record = {"command": f"python -m benchmarks.data_cache --data-dir DIR --repeats {args.repeats}",
              "images": 60000, "cpu_cores": os.cpu_count(), "cold_seconds": [round(t, 2) for t in cold],
              "warm_seconds": [round(t, 3) for t in warm],
              "cold_median": round(statistics.median(cold), 2), "warm_median": round(statistics.median(warm), 3)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(json.dumps(record))


if __name__ == "__main__":
    main()
