"""What a Colab GPU run does differently, checked on the CPU by changing what torch reports."""
import json

import numpy as np
import pytest
import torch

from conftest import fail_in_epoch, pretend_cpu, pretend_cuda_gpu
from helpers.cli import main
from helpers.data import Split
from helpers.loaders import BatchedTrainLoader
from helpers.model import ResNet9
from helpers.schedule import one_cycle
from helpers.train import (CHECK_EVERY, Diverged, Precision, auto_precision, configure_backend, make_optimizer,
                           train_epoch)

CPU = torch.device("cpu")


@pytest.mark.parametrize("capability,dtype,scaler", [((7, 5), torch.float16, True),   # T4
                                                     ((8, 0), torch.bfloat16, False),  # A100
                                                     ((8, 9), torch.bfloat16, False)])  # L4
def test_precision_follows_the_hardware(monkeypatch, capability, dtype, scaler):
    pretend_cuda_gpu(monkeypatch, capability)
    assert auto_precision(torch.device("cuda")) == {torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]
    p = Precision.for_device(torch.device("cuda"))
    assert p.dtype == dtype and p.scaler.is_enabled() == scaler
    assert Precision.for_device(torch.device("cuda"), amp=False).dtype is None


def test_cudnn_benchmark_on_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    configure_backend(CPU)
    assert torch.backends.cudnn.benchmark is False
    configure_backend(torch.device("cuda"))
    assert torch.backends.cudnn.benchmark is True


def _tiny_run(tmp_path, class_tree, name, epochs="2"):
    return ["train", "--data-dir", str(class_tree), "--out", str(tmp_path / name), "--epochs", epochs,
            "--max-at-epoch", "1", "--lr-min", "0.05", "--lr-max", "0.4", "--width", "0.0625",
            "--batch-size", "32", "--no-progress", "--no-report", "--device", "cpu"]


@pytest.mark.slow
@pytest.mark.parametrize("first,then", [(None, torch.float16), (torch.float16, None),
                                        (torch.bfloat16, torch.float16)])
@pytest.mark.e2e
def test_resume_across_precisions(class_tree, tmp_path, monkeypatch, first, then):
    """CPU -> T4, T4 -> CPU, A100 -> T4: the scaler's state is restored only where it exists."""
    with monkeypatch.context() as m:
        m.setattr(Precision, "for_device", classmethod(lambda cls, d, *a: cls("cpu", first)))
        fail_in_epoch(m, 2, KeyboardInterrupt())
        assert main(_tiny_run(tmp_path, class_tree, "r")) == 130
    saved = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert saved["epoch"] == 1 and bool(saved["scaler"]) == (first == torch.float16)
    assert "cuda" not in saved["rng"]
    with monkeypatch.context() as m:
        m.setattr(Precision, "for_device", classmethod(lambda cls, d, *a: cls("cpu", then)))
        assert main(["train", "--resume", str(tmp_path / "r"), "--no-progress"]) == 0
    rows = json.loads((tmp_path / "r" / "history.json").read_text())["epochs"]
    assert len(rows) == 2
    # fp16's loss scale is recorded at each epoch's end, where a scaler ran
    assert [("loss_scale" in r) for r in rows] == [first == torch.float16, then == torch.float16]
    assert all(r["loss_scale"] > 0 for r in rows if "loss_scale" in r)


@pytest.mark.slow
def test_old_checkpoint_with_cuda_rng_states_resumes(class_tree, tmp_path, monkeypatch):
    """Checkpoints written on a GPU machine before this fix carry per-GPU RNG states."""
    with monkeypatch.context() as m:
        fail_in_epoch(m, 2, KeyboardInterrupt())
        main(_tiny_run(tmp_path, class_tree, "r"))
    path = tmp_path / "r" / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    state["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 8  # 8 GPUs' worth
    torch.save(state, path)
    assert main(["train", "--resume", str(tmp_path / "r"), "--no-progress"]) == 0


def _poisoned(batches, bad_step):
    for step, (x, y) in enumerate(batches, 1):
        if step == bad_step:
            x = x.clone()
            x[0, 0, 0, 0] = float("nan")
        yield x, y


@pytest.mark.slow
@pytest.mark.parametrize("bad_step", [1, 7, CHECK_EVERY, CHECK_EVERY + 3])
def test_divergence_names_the_exact_step_and_lr(split, bad_step):
    torch.manual_seed(0)
    model = ResNet9(width=0.0625)
    loader = BatchedTrainLoader(Split(np.concatenate([split.x] * 4), np.concatenate([split.y] * 4)), 64, CPU)
    opt = make_optimizer(model, 0.4)
    sched = one_cycle(opt, 0.01, 0.4, 1, len(loader), 0.5)
    lrs = [opt.param_groups[0]["lr"]]
    probe = make_optimizer(torch.nn.Linear(1, 1), 0.4)
    probe_sched = one_cycle(probe, 0.01, 0.4, 1, len(loader), 0.5)
    for _ in range(len(loader) - 1):
        probe.step()
        probe_sched.step()
        lrs.append(probe.param_groups[0]["lr"])
    with pytest.raises(Diverged) as e:
        train_epoch(model, _poisoned(loader.epoch(0), bad_step), opt, sched, Precision("cpu"), 3)
    assert f"diverged at epoch 3, step {bad_step}: loss is nan at lr {lrs[bad_step - 1]:.4g};" in str(e.value)


@pytest.mark.slow
def test_no_host_sync_between_checks(split, monkeypatch):
    """Loss, accuracy and the divergence flag stay on the device between two checks."""
    reads = []
    real_item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda t: reads.append("item") or real_item(t))
    for name in ("__float__", "__int__", "__bool__"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda t, _r=real: reads.append("read") or _r(t))
    torch.manual_seed(0)
    model = ResNet9(width=0.0625)
    loader = BatchedTrainLoader(Split(np.concatenate([split.x] * 3), np.concatenate([split.y] * 3)), 32, CPU)
    assert len(loader) == 48
    train_epoch(model, loader.epoch(0), make_optimizer(model, 0.1), None, Precision("cpu"), 1)
    # one read per check (2 in 48 steps at CHECK_EVERY=20, plus the end), plus the two totals
    assert len(reads) <= 48 // CHECK_EVERY + 1 + 2, reads


def test_one_transfer_per_epoch(split, monkeypatch):
    """Batches are slices of tensors moved to the device once an epoch, not per batch."""
    loader = BatchedTrainLoader(Split(split.x[:256], split.y[:256]), 32, CPU)
    moved = []
    real_to = torch.Tensor.to
    monkeypatch.setattr(torch.Tensor, "to", lambda t, *a, **k: moved.append(a) or real_to(t, *a, **k))
    batches = list(loader.epoch(0))
    assert len(batches) == 8 and len(moved) <= 2  # the epoch's order and offsets


@pytest.mark.slow
def test_evaluation_uses_the_eager_module_with_compile(class_tree, tmp_path, monkeypatch):
    """With --compile, only training batches (one fixed shape) go through the compiled module."""
    shapes = []

    class Compiled(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            shapes.append(tuple(x.shape))
            return self.m(x)
    monkeypatch.setattr(torch, "compile", lambda m, **k: Compiled(m))
    assert main(_tiny_run(tmp_path, class_tree, "c", epochs="2") + ["--compile"]) == 0
    assert shapes and set(shapes) == {(32, 3, 32, 32)}


@pytest.mark.parametrize("capability,choice,dtype", [
    ((9, 0), "auto", torch.bfloat16), ((9, 0), "fp16", torch.float16), ((9, 0), "bf16", torch.bfloat16),
    ((9, 0), "fp32", None), ((7, 5), "auto", torch.float16), ((7, 5), "fp16", torch.float16),
    ((7, 5), "fp32", None)])
def test_precision_switch_on_a_gpu(monkeypatch, capability, choice, dtype):
    pretend_cuda_gpu(monkeypatch, capability)
    p = Precision.for_device(torch.device("cuda"), True, choice)
    assert p.dtype == dtype and p.scaler.is_enabled() == (dtype == torch.float16) and p.device_type == "cuda"


def test_the_loss_scaler_is_made_for_the_precisions_device(monkeypatch):
    """torch turns off a CUDA scaler where CUDA cannot run: seen only if the scaler was made for "cuda"."""
    monkeypatch.setattr(torch.cuda.amp.common, "amp_definitely_not_available", lambda: True)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        assert not Precision("cuda", torch.float16).scaler.is_enabled()
    for p in (Precision("cpu", dtype) for dtype in (None, torch.bfloat16, torch.float16)):  # on for fp16 only
        assert p.scaler.is_enabled() is p.new_scaler().is_enabled() is (p.dtype == torch.float16)


@pytest.mark.parametrize("dtype", [None, torch.bfloat16, torch.float16])
def test_autocast_runs_a_half_precision_in_its_dtype_and_fp32_as_fp32(dtype):
    with Precision("cpu", dtype).autocast():
        out = torch.ones(2, 2) @ torch.ones(2, 2)
    assert out.dtype == (dtype or torch.float32)  # CPU autocast alone would pick bf16


def test_bf16_on_a_t4_is_refused_in_one_line(monkeypatch):
    from helpers.errors import UserError

    pretend_cuda_gpu(monkeypatch, (7, 5))
    with pytest.raises(UserError, match="--precision bf16 needs a GPU that computes bf16 in hardware"):
        Precision.for_device(torch.device("cuda"), True, "bf16")


@pytest.mark.parametrize("avx512_bf16,amx,dtype", [(False, False, None),  # AVX2 only, or AVX-512 without BF16
                                                    (True, False, torch.bfloat16),  # Zen 4/5, Cooper Lake
                                                    (False, True, torch.bfloat16),  # AMX (as on Sapphire Rapids)
                                                    (True, True, torch.bfloat16)])
def test_auto_on_a_cpu_is_bf16_where_the_cpu_computes_it(monkeypatch, avx512_bf16, amx, dtype):
    pretend_cpu(monkeypatch, avx512_bf16, amx)
    p = Precision.for_device(CPU)
    assert p.dtype == dtype and p.device_type == "cpu" and not p.scaler.is_enabled()
    assert Precision.for_device(CPU, False, "auto").dtype is None  # --no-amp
    assert Precision.for_device(torch.device("mps")).dtype is None  # unmeasured there: fp32


def test_precision_switch_on_the_cpu_and_no_amp(monkeypatch):
    pretend_cpu(monkeypatch, False)
    assert Precision.for_device(CPU, True, "auto").dtype is None and Precision.for_device(CPU).device_type == "cpu"
    assert Precision.for_device(CPU, True, "fp16").dtype == torch.float16
    assert Precision.for_device(CPU, True, "bf16").name == "bf16"
    assert Precision.for_device(CPU, False, "auto").dtype is None


def test_no_amp_with_a_half_precision_is_one_line(capsys):
    assert main(["train", "--no-amp", "--precision", "fp16", "--data-dir", "nowhere"]) == 2
    assert capsys.readouterr().err.strip() == "error: --no-amp (fp32) contradicts --precision fp16; drop one of them"


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("choice,name", [("fp16", "fp16 + GradScaler"), ("bf16", "bf16")])
def test_a_short_cpu_run_under_half_precision_autocast_trains_and_records_it(tmp_path, class_tree, choice, name):
    args = _tiny_run(tmp_path, class_tree, choice)
    args[args.index("--lr-min"):args.index("--lr-max") + 2] = []  # LRs auto: the range test runs too
    assert main(args + ["--precision", choice, "--lr-find-iters", "12"]) == 0
    cfg = json.loads((tmp_path / choice / "config.json").read_text())
    assert cfg["precision"] == choice and cfg["resolved"]["precision"] == name
    assert "lr_find" in cfg["resolved"]
    history = json.loads((tmp_path / choice / "history.json").read_text())
    assert all(np.isfinite(e["train_loss"]) for e in history["epochs"])


def test_every_tensor_the_training_loader_makes_lives_on_its_device(split):
    """On a GPU each tensor of an epoch must live there: one left on the CPU stops the run at its
    first use. torch's meta device stands in for the GPU here: it refuses CPU tensors alike."""
    meta = torch.device("meta")
    loader = BatchedTrainLoader(Split(split.x[:128], split.y[:128]), 32, meta)
    a = loader.augment
    made = (a.rows, a.row_steps, a.hole_steps, a.fill, a.scale, a.shift, loader.labels)
    assert all(t.device == meta for t in made)
    batches = list(loader.epoch(0))
    assert len(batches) == 4 and all(t.device == meta for batch in batches for t in batch)
    assert batches[0][0].shape == (32, 3, 32, 32) and batches[0][0].dtype == torch.float32
    assert a(torch.arange(4)).device == meta  # augmenting images picked on the CPU


def test_the_test_set_the_network_and_the_normalisation_live_on_the_runs_device(split):
    """As above, for what evaluation and the figures use (the meta device standing in for a GPU)."""
    from helpers.augment import denormalize, normalize
    from helpers.config import TrainConfig
    from helpers.loaders import EvalLoader
    from helpers.model import build_model

    meta = torch.device("meta")
    assert all(t.device == meta for batch in EvalLoader(Split(split.x[:100], split.y[:100]), meta, 64) for t in batch)
    assert all(p.device == meta for p in build_model(TrainConfig(width=0.0625), meta).parameters())
    images = torch.zeros(2, 32, 32, 3, device=meta)
    assert normalize(images).device == meta and denormalize(normalize(images)).device == meta
