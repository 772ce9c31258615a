"""The GPU tier: the paths users run, on a real CUDA GPU, a few steps each. Skipped, with the
reason shown, where there is none; ``bash benchmarks/gpu_evidence.sh gpu-tests`` runs it first on
a GPU machine (``python -m pytest -m gpu -rs``), in well under a minute."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.loaders import AlbumentationsTrainLoader, BatchedTrainLoader, EvalLoader
from helpers.model import ResNet9
from helpers.train import Precision, bf16_in_hardware, evaluate, make_ema, make_optimizer, train_epoch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA GPU here: the GPU tier runs on a GPU machine")]
CUDA = torch.device("cuda")


def precisions() -> list[str]:
    return ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_available() and bf16_in_hardware() else [])


@pytest.mark.parametrize("choice", ["fp32", "fp16", "bf16"])
def test_an_epoch_of_each_loader_trains_and_evaluates(split, choice):
    if choice not in precisions():
        pytest.skip("this GPU has no bf16 in hardware")
    prec = Precision.for_device(CUDA, True, choice)
    for loader in (BatchedTrainLoader(split, 64, CUDA), AlbumentationsTrainLoader(split, 64, CUDA, num_workers=2)):
        torch.manual_seed(0)
        model = ResNet9(width=0.125).to(CUDA).to(memory_format=torch.channels_last)
        ema = make_ema(model, 0.9)
        stats = train_epoch(model, loader.epoch(0), make_optimizer(model, 0.1), None, prec, 1, ema=ema)
        assert np.isfinite(stats.loss) and len(stats.lrs) == len(split) // 64  # one LR a step
        assert prec.scaler.is_enabled() == (choice == "fp16")
        for m in (model, ema.module):
            loss, acc = evaluate(m, EvalLoader(split, CUDA, 128), prec, "flip")
            assert np.isfinite(loss) and 0 <= acc <= 1


def test_the_range_test_on_the_gpu(split):
    from helpers.config import TrainConfig
    from helpers.lr_finder import range_test

    cfg = TrainConfig(width=0.125, batch_size=64, lr_find_iters=12, progress=False)
    model = ResNet9(width=0.125).to(CUDA).to(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = range_test(model, BatchedTrainLoader(split, 64, CUDA), CUDA, Precision.for_device(CUDA), cfg,
                   log=lambda s: None)
    assert len(r.lrs) > 0 and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_references_epoch_on_the_gpu():
    from benchmarks import reference as R

    rng = np.random.default_rng(0)
    padded = R.preprocess(rng.integers(0, 256, (1024, 32, 32, 3), dtype=np.uint8), 4).to(CUDA)
    labels = torch.as_tensor(rng.integers(0, 10, 1024)).to(CUDA)
    model = R.Net(0.125, "page").to(CUDA).to(memory_format=torch.channels_last)
    dtype = R.autocast_dtype(CUDA, "auto")
    opt, scaler = R.make_optimizer(model, dtype)
    total, correct, seen = R.train_epoch(model, opt, scaler, R.train_batches(padded, labels, 0, 0), [0.1] * 2048, dtype)
    assert seen == 1024 and np.isfinite(float(total))


def test_a_run_interrupted_on_the_gpu_resumes_there_and_continues_on_the_cpu(class_tree, tmp_path, monkeypatch):
    """fp16 with its scaler: resumed on the GPU bit for bit in its settings; a checkpoint written
    on the GPU continued where torch sees no GPU."""
    from conftest import fail_in_epoch
    from helpers.cli import main

    args = ["--epochs", "3", "--max-at-epoch", "1", "--lr-min", "0.05", "--lr-max", "0.4", "--width", "0.0625",
            "--batch-size", "32", "--no-progress", "--no-report", "--precision", "fp16"]
    for name, stop in (("gpu", 2), ("cpu", 3)):
        run = tmp_path / name
        with monkeypatch.context() as m:
            fail_in_epoch(m, stop, KeyboardInterrupt())
            assert main(["train", "--data-dir", str(class_tree), "--out", str(run), *args]) == 130
        if name == "cpu":  # the same folder on a machine without a GPU
            monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        assert main(["train", "--resume", str(run), "--no-progress"]) == 0
        assert len(json.loads((run / "history.json").read_text())["epochs"]) == 3


def test_a_run_records_its_own_peak_gpu_memory_in_gib(class_tree, tmp_path):
    """The peak counts this run only (the counter is reset first), in GiB to the hundredth."""
    from helpers.cli import main

    block = torch.empty(2**30, dtype=torch.uint8, device=CUDA)  # 1 GiB held before the run, then let go
    del block
    args = ["--epochs", "1", "--max-at-epoch", "1", "--lr-min", "0.05", "--lr-max", "0.4", "--width", "0.0625",
            "--batch-size", "32", "--no-progress", "--no-report"]
    assert main(["train", "--data-dir", str(class_tree), "--out", str(tmp_path / "run"), *args]) == 0
    peak = json.loads((tmp_path / "run" / "history.json").read_text())["peak_gpu_memory_gib"]
    assert 0 < peak < 1 and peak == round(torch.cuda.max_memory_allocated(CUDA) / 2**30, 2)
