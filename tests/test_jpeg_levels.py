"""benchmarks/jpeg_levels.py: re-encoded class folders that load as CIFAR-10, and their PSNR."""
import json

import numpy as np
import pytest

from benchmarks import jpeg_levels
from helpers.data import load_cifar10


def test_psnr_of_known_errors():
    a = np.zeros((4, 4, 3), np.uint8)
    assert jpeg_levels.psnr(a, a) == 100.0
    assert abs(jpeg_levels.psnr(a, a + 1) - 10 * np.log10(255 ** 2)) < 1e-9


@pytest.mark.slow
def test_levels_load_as_cifar10_and_lower_quality_moves_further(class_tree, tmp_path):
    out, js = tmp_path / "jpeg", tmp_path / "psnr.json"
    jpeg_levels.main(["--data-dir", str(class_tree), "--out", str(out), "--qualities", "95", "30", "--json", str(js)])
    levels = json.loads(js.read_text())["levels"]
    assert levels["95"]["test"]["psnr_db_mean"] > levels["30"]["test"]["psnr_db_mean"] + 1
    assert levels["95"]["train"]["bytes_mean"] > levels["30"]["train"]["bytes_mean"]
    src, again = load_cifar10(class_tree, download=False), load_cifar10(out / "q30", download=False)
    assert again.train.x.shape == src.train.x.shape and (again.train.y == src.train.y).all()
    before = js.read_text()
    jpeg_levels.main(["--data-dir", str(class_tree), "--out", str(out), "--qualities", "30", "--json", str(js)])
    assert js.read_text() == before  # a level already written is not redone
