"""The GPU's paths on a CPU-only machine: every step of a run under :class:`StrictDevice`, where
torch's meta device stands in for the GPU and refuses operands on the CPU as CUDA does."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.loaders import AlbumentationsTrainLoader, BatchedTrainLoader, EvalLoader
from helpers.model import ResNet9
from helpers.train import Precision, evaluate, make_ema, make_optimizer, train_epoch
from strict_device import GPU, DeviceMismatch, StrictDevice

PRECISIONS = {"fp32": None, "fp16": torch.float16}  # fp16: the loss scaler's tensors too


def gpu_model():
    torch.manual_seed(0)
    return ResNet9(width=0.0625).to(GPU).to(memory_format=torch.channels_last)


# the stand-in's own rules ---------------------------------------------------------------------
@pytest.mark.parametrize("what,call", [
    ("a running sum on the CPU", lambda g: torch.zeros(()).add_(g.sum())),
    ("an in-place sum by +=", lambda g: torch.zeros(()).__iadd__(g.sum())),
    ("an index on the CPU", lambda g: g.index_select(0, torch.tensor([0, 1]))),
    ("labels on the CPU", lambda g: g == torch.zeros(3)),
    ("a batch on the CPU", lambda g: torch.nn.functional.linear(torch.zeros(2, 3), g.expand(4, 3)))])
def test_the_stand_in_refuses_what_cuda_refuses(what, call):
    with StrictDevice(), pytest.raises(DeviceMismatch, match="same device"):
        call(torch.ones(3, device=GPU))
    call(torch.ones(3))  # on one device it is fine


def test_the_stand_in_allows_what_cuda_allows_and_reads_back_placeholders():
    with StrictDevice():
        g = torch.ones(3, device=GPU)
        assert (g + torch.tensor(2.0)).device == GPU  # a 0-dim CPU tensor is a scalar
        assert g[torch.tensor([0, 2])].device == GPU  # advanced indexing moves a CPU index
        assert torch.zeros(3).copy_(g).device.type == "cpu" and g.to("cpu").device.type == "cpu"
        assert float(g.sum()) == 0.0 and int(g.sum()) == 0 and g.sum().item() == 0.0 and not bool(g.any())
        assert g.tolist() == [0.0, 0.0, 0.0] and g.cpu().shape == (3,)


# the product under it ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS)
def test_an_epoch_of_each_loader_trains_and_evaluates_on_the_gpu(split, precision):
    """Batches, labels and order on the GPU; the epoch's sums and the loss scaler there too; the
    weight average and flip TTA evaluated there."""
    with StrictDevice():
        prec = Precision("meta", PRECISIONS[precision])
        for loader in (BatchedTrainLoader(split, 32, GPU), AlbumentationsTrainLoader(split, 32, GPU, num_workers=0)):
            model = gpu_model()
            ema = make_ema(model, 0.9)
            stats = train_epoch(model, loader.epoch(0), make_optimizer(model, 0.1), None, prec, 1, ema=ema)
            assert len(stats.lrs) == len(split) // 32  # one LR a step
            for m in (model, ema.module):
                evaluate(m, EvalLoader(split, GPU, 64), prec, "flip")


def test_the_range_test_runs_on_the_gpu(split):
    from helpers.config import TrainConfig
    from helpers.errors import UserError
    from helpers.lr_finder import range_test

    cfg = TrainConfig(width=0.0625, batch_size=32, lr_find_iters=8, progress=False)
    with StrictDevice():
        model = gpu_model()
        try:  # its losses read back as placeholders (all 0): a flat curve may have no suggestion
            range_test(model, BatchedTrainLoader(split, 32, GPU), GPU, Precision("meta", None), cfg,
                       log=lambda s: None)
        except UserError:
            pass
        assert all(p.device == GPU for p in model.parameters())


@pytest.mark.slow
def test_the_cpu_estimate_times_its_steps_on_the_gpu():
    """The start line's estimate: its random images and labels go to the run's device too."""
    from helpers.train import estimate_epoch_seconds

    with StrictDevice():
        assert estimate_epoch_seconds(gpu_model(), 8, 10, Precision("meta", None), steps=1) >= 0


def test_the_references_epoch_and_evaluation_run_on_the_gpu():
    from benchmarks import reference as R

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1024, 32, 32, 3), dtype=np.uint8)
    with StrictDevice():
        padded, labels = R.preprocess(images, 4).to(GPU), torch.as_tensor(rng.integers(0, 10, 1024)).to(GPU)
        torch.manual_seed(0)
        model = R.Net(0.0625, "page").to(GPU).to(memory_format=torch.channels_last)
        for dtype in (None, torch.float16):
            opt, scaler = R.make_optimizer(model, dtype)
            batches = R.train_batches(padded, labels, 0, 0)
            total, correct, seen = R.train_epoch(model, opt, scaler, batches, [0.1] * 2048, dtype)
            assert seen == 1024 and total.device == GPU and correct.device == GPU
        R.evaluate(model, R.preprocess(images[:100]).to(GPU), labels[:100], None)


@pytest.mark.slow
def test_the_references_whole_run_and_its_resume_run_on_the_gpu(tmp_path, monkeypatch):
    """Its data, network, sums and checkpoint on the run's device, from the first line to a resume."""
    from benchmarks import reference as R
    from test_reference import _in_memory

    _in_memory(monkeypatch, n_train=256, n_test=64, batch=64)
    monkeypatch.setattr(R, "autocast_dtype", lambda dev, precision: None)  # the stand-in has no autocast
    with StrictDevice():
        for epochs in (1, 2):  # the second call continues the first's checkpoint
            history = R.run("data", str(tmp_path / "r"), width=0.0625, device=str(GPU), epochs=epochs, log=lambda s: None)
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]


# a checkpoint written on a GPU, continued on a machine without one ------------------------------
def as_cuda_checkpoint(path) -> None:
    """Rewrite a CPU checkpoint as a GPU machine writes it: every tensor's storage tagged cuda:0,
    which torch.load refuses on a machine without CUDA unless given a map_location. torch tags a
    storage with the first of its registered taggers that answers; this one answers first."""
    import torch.serialization as ser

    state = torch.load(path, map_location="cpu", weights_only=False)
    ser.register_package(-100, lambda storage: "cuda:0" if storage.device.type == "cpu" else None,
                         lambda storage, location: None)
    try:
        torch.save(state, path)
    finally:
        del ser._package_registry[0]  # the tagger registered above (the registry is kept sorted)


def test_the_cuda_stand_in_checkpoint_needs_a_map_location(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "c.pt")
    as_cuda_checkpoint(tmp_path / "c.pt")
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(tmp_path / "c.pt", weights_only=False)
    assert torch.load(tmp_path / "c.pt", map_location="cpu", weights_only=False)["w"].tolist() == [1.0, 1.0]


@pytest.mark.slow
def test_a_gpu_runs_checkpoint_continues_on_a_cpu_only_machine(class_tree, tmp_path, monkeypatch):
    from conftest import fail_in_epoch
    from helpers.cli import main

    run = tmp_path / "r"
    with monkeypatch.context() as m:
        fail_in_epoch(m, 2, KeyboardInterrupt())
        assert main(["train", "--data-dir", str(class_tree), "--out", str(run), "--epochs", "2", "--max-at-epoch",
                     "1", "--lr-min", "0.05", "--lr-max", "0.4", "--width", "0.0625", "--batch-size", "32",
                     "--no-progress", "--no-report", "--device", "cpu", "--precision", "fp32"]) == 130
    for path in run.glob("*.pt"):
        as_cuda_checkpoint(path)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0


@pytest.mark.slow
def test_the_references_gpu_checkpoint_continues_on_a_cpu_only_machine(tmp_path):
    from benchmarks import reference as R
    from conftest import write_class_folders

    tree = write_class_folders(tmp_path / "c", n_train=1024, n_test=100)

    class Stop(Exception):
        pass

    def stop_after_one(line):  # epoch 2's line comes before its checkpoint: epoch 1's is the last
        if line.startswith("epoch  2/"):
            raise Stop

    with pytest.raises(Stop):
        R.run(str(tree), str(tmp_path / "ref"), width=0.0625, device="cpu", precision="fp32", epochs=2,
              log=stop_after_one)
    as_cuda_checkpoint(tmp_path / "ref" / "checkpoint.pt")
    h = R.run(str(tree), str(tmp_path / "ref"), width=0.0625, device="cpu", precision="fp32", epochs=2,
              log=lambda s: None)
    assert len(h["epochs"]) == 2
