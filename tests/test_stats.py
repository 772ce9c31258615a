"""helpers/stats.py: the seed statistics behind every comparison in docs/RESULTS.md."""
import math

import pytest

from helpers.stats import summarize, welch_t


def test_a_summary_is_n_mean_sample_sd_min_and_max():
    assert summarize([0.9104, 0.9152, 0.9069]) == pytest.approx(
        {"n": 3, "mean": 0.9108333, "std": 0.0041669, "min": 0.9069, "max": 0.9152}, abs=1e-7)
    assert summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])["std"] == pytest.approx(math.sqrt(32 / 7))  # n - 1
    assert summarize([0.9, 0.92])["std"] == pytest.approx(0.02 / math.sqrt(2))  # two seeds have a spread
    assert summarize([0.5]) == {"n": 1, "mean": 0.5, "std": 0.0, "min": 0.5, "max": 0.5}
    with pytest.raises(ValueError, match="no values"):
        summarize([])


def test_welch_t_by_hand():
    # means 2 and 5, variances 1 and 20/3, n 3 and 4: t = -3 / sqrt(1/3 + 20/3/4) = -3 / sqrt(2)
    assert welch_t([1, 2, 3], [2, 4, 6, 8]) == pytest.approx(-3 / math.sqrt(2))
    assert welch_t([2, 4, 6, 8], [1, 2, 3]) == pytest.approx(3 / math.sqrt(2))
    assert welch_t([1, 2, 3], [1, 2, 3]) == 0.0


def test_welch_t_without_spread_is_infinite_with_the_differences_sign():
    assert welch_t([2, 2], [1, 1]) == math.inf and welch_t([1, 1], [2, 2]) == -math.inf
    assert welch_t([1, 1], [1, 1]) == 0.0
