import numpy as np
import pytest
import torch

from helpers.data import Split
from helpers.loaders import BatchedTrainLoader, EvalLoader, check_batch_size
from helpers.model import ResNet9
from helpers.schedule import one_cycle
from helpers.train import Diverged, Precision, choose_device, evaluate, make_optimizer, train_epoch
from helpers.errors import UserError


def _fit(split: Split, epochs: int, lr_max: float = 0.4, seed: int = 0):
    torch.manual_seed(seed)
    cpu = torch.device("cpu")
    model = ResNet9(width=0.0625)
    loader = BatchedTrainLoader(split, 64, cpu, seed=seed)
    opt = make_optimizer(model, lr_max)
    sched = one_cycle(opt, lr_max / 8, lr_max, epochs, len(loader), max(1, epochs // 3))
    prec = Precision.for_device(cpu)
    stats = [train_epoch(model, loader.epoch(e), opt, sched, prec, e + 1) for e in range(epochs)]
    return model, stats, evaluate(model, EvalLoader(split, cpu), prec)


def test_short_training_lowers_the_loss(split):
    _, stats, (loss, acc) = _fit(split, 4)
    assert stats[-1].loss < 0.8 * stats[0].loss
    assert acc > 0.3  # 10 classes: chance is 0.1


def test_same_seed_same_history_on_cpu(split):
    small = Split(split.x[:256], split.y[:256])
    m1, s1, _ = _fit(small, 2)
    m2, s2, _ = _fit(small, 2)
    assert [s.loss for s in s1] == [s.loss for s in s2]
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_divergence_stops_with_epoch_step_and_lr(split):
    cpu = torch.device("cpu")
    model = ResNet9(width=0.0625)
    opt = make_optimizer(model, 1e6)
    loader = BatchedTrainLoader(Split(split.x[:256], split.y[:256]), 64, cpu)
    with pytest.raises(Diverged) as e:
        for ep in range(3):
            train_epoch(model, loader.epoch(ep), opt, None, Precision.for_device(cpu), ep + 1)
    msg = str(e.value)
    assert "diverged at epoch" in msg and "step" in msg and "lr 1e+06" in msg


def test_device_choice():
    assert choose_device("cpu").type == "cpu"
    assert choose_device("auto").type in ("cuda", "mps", "cpu")
    with pytest.raises(UserError, match="unknown --device"):
        choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            choose_device("cuda")


def test_batch_larger_than_data_is_refused():
    with pytest.raises(UserError, match="--batch-size 64 is larger than the training set \\(10 images\\)"):
        check_batch_size(64, 10)
    check_batch_size(10, 10)  # one batch of every image is a valid (if short) epoch


def test_epochs_are_reproducible_and_differ(split):
    loader = BatchedTrainLoader(Split(split.x[:128], split.y[:128]), 64, torch.device("cpu"), seed=5)
    a = [x for x, _ in loader.epoch(0)]
    b = [x for x, _ in loader.epoch(0)]
    c = [x for x, _ in loader.epoch(1)]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert np.isclose(float(torch.cat(a).mean()), float(torch.cat(c).mean()), atol=0.2)


@pytest.mark.e2e
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_mixed_precision_branches_train(split, dtype):
    """The CUDA code path (autocast; GradScaler for fp16), exercised on the CPU."""
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = ResNet9(width=0.0625)
    prec = Precision("cpu", dtype)
    assert prec.scaler.is_enabled() == (dtype == torch.float16)
    loader = BatchedTrainLoader(Split(split.x[:256], split.y[:256]), 64, cpu)
    opt = make_optimizer(model, 0.1)
    first = train_epoch(model, loader.epoch(0), opt, None, prec, 1)
    second = train_epoch(model, loader.epoch(1), opt, None, prec, 2)
    assert np.isfinite(second.loss) and second.loss < first.loss
