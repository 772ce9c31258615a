"""Seed statistics: what a figure over several seeds reports, and whether two settings differ."""
from __future__ import annotations

import math
from typing import Sequence


def summarize(values: Sequence[float]) -> dict[str, float]:
    """n, mean, sample standard deviation (0 for one value), min and max."""
    n = len(values)
    if not n:
        raise ValueError("no values to summarize")
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"n": n, "mean": mean, "std": sd, "min": min(values), "max": max(values)}


def welch_t(a: Sequence[float], b: Sequence[float]) -> float:
    """Welch's t statistic of mean(a) - mean(b); |t| above ~2.8 (4 degrees of freedom, 5%) is
    a difference larger than the seed noise at 3 seeds a side. When both spreads are 0: +-inf with
    the difference's sign, 0 without a difference."""
    sa, sb = summarize(a), summarize(b)
    se = math.sqrt(sa["std"] ** 2 / sa["n"] + sb["std"] ** 2 / sb["n"])
    diff = sa["mean"] - sb["mean"]
    if se:
        return diff / se
    return math.copysign(math.inf, diff) if diff else 0.0
