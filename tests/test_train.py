import numpy as np
import pytest
import torch

from helpers.data import Split
from helpers.loaders import BatchedTrainLoader, EvalLoader, check_batch_size
from helpers.model import ResNet9
from helpers.schedule import one_cycle
from helpers.train import Diverged, Precision, choose_device, evaluate, make_optimizer, train_epoch
from helpers.errors import UserError
from conftest import KnownPredictions


def _fit(split: Split, epochs: int, lr_max: float = 0.4, seed: int = 0):
    torch.manual_seed(seed)
    cpu = torch.device("cpu")
    model = ResNet9(width=0.0625)
    loader = BatchedTrainLoader(split, 64, cpu, seed=seed)
    opt = make_optimizer(model, lr_max)
    sched = one_cycle(opt, lr_max / 8, lr_max, epochs, len(loader), max(1, epochs // 3))
    prec = Precision("cpu")
    stats = [train_epoch(model, loader.epoch(e), opt, sched, prec, e + 1) for e in range(epochs)]
    return model, stats, evaluate(model, EvalLoader(split, cpu), prec)


@pytest.mark.slow
def test_short_training_lowers_the_loss(split):
    _, stats, (loss, acc) = _fit(split, 4)
    assert stats[-1].loss < 0.8 * stats[0].loss
    assert acc > 0.3  # 10 classes: chance is 0.1


@pytest.mark.slow
def test_same_seed_same_history_on_cpu(split):
    small = Split(split.x[:256], split.y[:256])
    m1, s1, _ = _fit(small, 2)
    m2, s2, _ = _fit(small, 2)
    assert [s.loss for s in s1] == [s.loss for s in s2]
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


@pytest.mark.slow
def test_divergence_stops_with_epoch_step_and_lr(split):
    cpu = torch.device("cpu")
    model = ResNet9(width=0.0625)
    opt = make_optimizer(model, 1e6)
    loader = BatchedTrainLoader(Split(split.x[:256], split.y[:256]), 64, cpu)
    with pytest.raises(Diverged) as e:
        for ep in range(3):
            train_epoch(model, loader.epoch(ep), opt, None, Precision("cpu"), ep + 1)
    msg = str(e.value)
    assert "diverged at epoch" in msg and "step" in msg and "lr 1e+06" in msg


def test_device_choice_follows_what_torch_reports(monkeypatch):
    cuda, mps = [False], [False]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda[0])
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps[0])
    assert choose_device("auto") == torch.device("cpu") == choose_device("cpu") == choose_device()
    for name, line in (("cuda", "--device cuda asked for, but no CUDA GPU is visible"),
                       ("mps", "--device mps asked for, but MPS is not available"),
                       ("tpu", "unknown --device 'tpu'; use auto, cuda, mps or cpu")):
        with pytest.raises(UserError, match=line.replace("(", r"\(")):
            choose_device(name)
    mps[0] = True  # Apple's GPU
    assert choose_device("auto") == torch.device("mps") == choose_device("mps")
    cuda[0] = True
    assert choose_device("auto") == torch.device("cuda") == choose_device("cuda")


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
    unseeded = BatchedTrainLoader(Split(split.x[:128], split.y[:128]), 64, torch.device("cpu"))
    seed_0 = BatchedTrainLoader(Split(split.x[:128], split.y[:128]), 64, torch.device("cpu"), seed=0)
    assert all(torch.equal(u, v) for u, v in zip(unseeded.plan(0), seed_0.plan(0)))  # the default seed is 0


@pytest.mark.slow
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


def _clock(monkeypatch, durations: list[float]) -> None:
    """time.perf_counter as seen by helpers.train: each pair of reads spans the next duration;
    one read too many fails the test."""
    import helpers.train as T

    reads = iter([t for i, d in enumerate(durations) for t in (100.0 + 10 * i, 100.0 + 10 * i + d)])
    monkeypatch.setattr(T.time, "perf_counter", lambda: next(reads))


@pytest.mark.slow
def test_the_cpu_estimate_is_the_median_of_the_timed_steps_times_the_epoch_and_leaves_the_run_untouched(
        monkeypatch):
    from helpers.train import ESTIMATE_STEPS, estimate_epoch_seconds

    torch.manual_seed(0)
    model = ResNet9(width=0.0625).eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    _clock(monkeypatch, [100.0, 2.0, 5.0, 3.0])  # the first, untimed step warms the kernels
    assert ESTIMATE_STEPS == 3
    assert estimate_epoch_seconds(model, 4, 97, Precision.for_device(torch.device("cpu"), True, "fp32")) == 3.0 * 97
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items()) and not model.training
    assert torch.equal(torch.get_rng_state(), rng)


def test_the_timer_measures_its_block(monkeypatch):
    from helpers.train import Timer

    _clock(monkeypatch, [2.5])
    with Timer() as t:
        pass
    assert t.seconds == 2.5


def test_the_clock_waits_for_a_gpus_queued_work(monkeypatch):
    """On CUDA the epoch's seconds are read after the GPU has done its queued work, not when it was queued."""
    from helpers.train import synchronize

    waited = []
    monkeypatch.setattr(torch.cuda, "synchronize", waited.append)
    synchronize(torch.device("cpu"))
    assert waited == []
    synchronize(torch.device("cuda", 1))
    assert waited == [torch.device("cuda", 1)]


def test_out_of_memory_names_the_device_its_memory_the_settings_and_what_is_kept(monkeypatch):
    from types import SimpleNamespace

    from helpers.train import out_of_memory

    e = out_of_memory(torch.device("cpu"), 512, 0.25, "nothing was written")
    assert isinstance(e, UserError) and str(e).startswith(f"out of GPU memory on CPU ({__import__('os').cpu_count()} "
                                                          "cores) at batch size 512, width 0.25: lower --batch-size")
    assert str(e).endswith("; nothing was written")
    emptied = []
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda d: asked.append(d) or SimpleNamespace(total_memory=15 * 2**30))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d: asked.append(d) or "Tesla T4")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
    e = out_of_memory(torch.device("cuda"), 1024, 1.0, "kept")
    assert "out of GPU memory on Tesla T4 (15.0 GiB) at batch size 1024, width 1: lower" in str(e) and emptied
    assert asked == [torch.device("cuda")] * 2  # its name and its memory


def test_confusion_matrix_and_per_class_accuracy_by_hand():
    from helpers.train import confusion_matrix, per_class_accuracy

    c = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 4)
    assert c.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]  # row: true, column: predicted
    assert per_class_accuracy(c).tolist() == [0.5, 1.0, 2 / 3, 0.0]  # a class without images: 0
    assert confusion_matrix(np.array([9]), np.array([3])).shape == (10, 10)


def test_bf16_in_hardware_on_rocm_or_from_compute_capability_8_of_the_current_gpu(monkeypatch):
    from types import SimpleNamespace

    from helpers.train import bf16_in_hardware

    asked = []
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    for hip, major, expected in ((None, 7, False), (None, 8, True), ("6.2", 7, True), (None, 9, True)):
        monkeypatch.setattr(torch.version, "hip", hip)
        monkeypatch.setattr(torch.cuda, "get_device_properties",
                            lambda d, major=major: asked.append(d) or SimpleNamespace(major=major))
        assert bf16_in_hardware() is expected
    assert set(asked) == {3}  # the current GPU's properties


def test_the_ema_averages_batchnorms_running_statistics_with_the_weights():
    from helpers.train import make_ema

    model = ResNet9(width=0.0625)
    ema = make_ema(model, 0.5)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    ema_bn = next(m for m in ema.module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    w0 = bn.weight.detach().clone()
    with torch.no_grad():
        bn.running_mean.fill_(2.0)
        bn.weight.add_(1.0)
    ema.update_parameters(model)  # the first update copies
    with torch.no_grad():
        bn.running_mean.fill_(4.0)
        bn.weight.add_(1.0)
    ema.update_parameters(model)
    assert torch.allclose(ema_bn.running_mean, torch.full_like(bn.running_mean, 3.0))
    assert torch.allclose(ema_bn.weight, w0 + 1.5)


def test_an_epoch_counts_loss_and_accuracy_by_hand_and_records_each_steps_lr_and_momentum():
    x = torch.zeros(50, 3, 2, 2)
    x[:, 0, 0, 0] = torch.arange(50) % 10
    y = torch.arange(50) % 10
    y[[3, 20, 41]] = (y[[3, 20, 41]] + 1) % 10  # 3 of 50 wrong
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 48, 8)] + [(x[48:], y[48:])]  # 6 of 8, 1 of 2
    model = KnownPredictions().eval()
    fp32 = Precision.for_device(torch.device("cpu"), True, "fp32")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.85)  # w shifts every logit alike: no gradient
    stepped, averaged = [], []

    class Schedule:  # five steps long, like OneCycleLR(total_steps=5)
        last_epoch, total_steps = 0, 5

        def step(self):
            stepped.append(self.last_epoch)
            self.last_epoch += 1
            opt.param_groups[0]["lr"] = 0.1 * (self.last_epoch + 1)
    sched = Schedule()
    ema = type("Ema", (), {"update_parameters": lambda self, m: averaged.append(m)})()
    bars = []

    def progress(b):
        bars.append(b)
        return b
    stats = train_epoch(model, batches, opt, sched, fp32, 1, progress, 0.0, ema)
    assert model.training and bars == [batches]
    assert stats.acc == 47 / 50
    assert stats.loss == pytest.approx(3 * 50 / 50, rel=1e-4)  # a wrong image costs 50, a right one ~0
    assert stats.lrs == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5]) and stats.momenta == [0.85] * 7
    assert stepped == [0, 1, 2, 3] and averaged == [model] * 7  # never past the schedule's last step
    empty = train_epoch(model, [], opt, None, fp32, 2)
    assert (empty.loss, empty.acc, empty.lrs, empty.momenta) == (0.0, 0.0, [], [])
    # torch's label smoothing, s = 0.1: a right image costs 0.1 x 45 (the mean of -log p over the
    # ten classes: 50 for each of nine, 0 for the right one), a wrong one 0.9 x 50 + 0.1 x 45
    smoothed = train_epoch(model, batches, opt, None, fp32, 3, None, 0.1)
    assert smoothed.loss == pytest.approx((47 * 4.5 + 3 * 49.5) / 50, rel=1e-4)
    adam = train_epoch(model, batches[:2], torch.optim.Adam(model.parameters()), None, fp32, 4)
    assert adam.momenta == [0.0, 0.0]  # an optimizer without momentum records none


def test_the_progress_bar_shows_the_loss_and_lr_every_check():
    from helpers.train import CHECK_EVERY

    x = torch.zeros(2 * CHECK_EVERY + 1, 3, 2, 2)
    y = torch.zeros(len(x), dtype=torch.long)
    shown = []

    class Bar(list):
        def set_postfix(self, **kw):
            shown.append((kw, len(self.seen)))

    model = KnownPredictions()
    opt = torch.optim.SGD(model.parameters(), lr=0.25)

    class Rising:  # the LR of step k is k / 4: the bar must show the step's own
        last_epoch, total_steps = 0, len(x)

        def step(self):
            self.last_epoch += 1
            opt.param_groups[0]["lr"] = (self.last_epoch + 1) / 4
    bar = Bar([(x[i:i + 1], y[i:i + 1]) for i in range(len(x))])
    bar.seen = []
    real_iter = list.__iter__
    bar.__class__.__iter__ = lambda self: (self.seen.append(1) or b for b in real_iter(self))
    train_epoch(model, None, opt, Rising(), Precision.for_device(torch.device("cpu"), True, "fp32"), 1,
                lambda _: bar)
    assert [n for _, n in shown] == [CHECK_EVERY, 2 * CHECK_EVERY]
    assert [kw["lr"] for kw, _ in shown] == [f"{CHECK_EVERY / 4:.3g}", f"{2 * CHECK_EVERY / 4:.3g}"]
    assert all(kw["refresh"] is False and float(kw["loss"]) >= 0 for kw, _ in shown)


def test_a_scaler_state_is_restored_only_into_an_fp16_scaler_and_only_when_there_is_one():
    fp16 = Precision(torch.device("cpu"), torch.float16)
    assert fp16.scaler.is_enabled()
    state = torch.amp.GradScaler("cpu", init_scale=1024.0).state_dict()
    fp16.load_scaler_state(state)
    assert fp16.scaler.get_scale() == 1024.0
    fp16.load_scaler_state({})  # a checkpoint of a CPU or bf16 run: the initial scale stays
    assert fp16.scaler.get_scale() == 1024.0
    fp32 = Precision.for_device(torch.device("cpu"), True, "fp32")
    fp32.load_scaler_state(state)  # a disabled scaler ignores it
    assert not fp32.scaler.is_enabled()


@pytest.mark.parametrize("epochs,steps,peak,ok", [
    (3, 1, 2.0, True),    # one step up (the first to the peak), one down: the least there is
    (2, 1, 1.0, False),   # the peak on the first step: no step to rise
    (3, 1, 2.6, False),   # the peak on the last step: no step to fall
    (2, 2, 1.0, True),
])
def test_the_schedule_needs_a_step_to_rise_and_one_to_fall(epochs, steps, peak, ok):
    from helpers.schedule import check_schedule

    if ok:
        check_schedule(epochs, steps, peak)
    else:
        with pytest.raises(UserError, match="needs at least one step to rise and one to fall"):
            check_schedule(epochs, steps, peak)


def test_evaluation_counts_by_hand_in_eval_mode_and_restores_the_mode():
    from helpers.train import Precision, evaluate

    labels = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
    predicted = torch.tensor([3, 1, 4, 0, 5, 9, 2, 6, 0, 0])  # 7 of 10 right
    x = torch.zeros(10, 3, 4, 4)
    x[:, 0, 0, 0] = predicted.float()
    batches = [(x[:4], labels[:4]), (x[4:9], labels[4:9]), (x[9:], labels[9:])]  # uneven batches
    model = KnownLogits().train()
    loss, acc = evaluate(model, batches, Precision.for_device(torch.device("cpu"), True, "fp32"))
    assert acc == 0.7
    right = -torch.log_softmax(torch.tensor([4.0] + [0.0] * 9), 0)[0]
    wrong = -torch.log_softmax(torch.tensor([4.0] + [0.0] * 9), 0)[1]
    assert loss == pytest.approx(float(7 * right + 3 * wrong) / 10, rel=1e-6)
    assert model.training and float(model.bn.running_mean) == 0.0  # evaluated in eval mode, mode restored
    model.eval()
    evaluate(model, batches, Precision.for_device(torch.device("cpu"), True, "fp32"))
    assert not model.training


class KnownLogits(torch.nn.Module):
    """Predicts the class written in each image's first pixel; a BatchNorm records if it ran in
    training mode (its running mean moves only then)."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(1)

    def forward(self, x):
        self.bn(x[:, :1, 0, 0])
        return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 10).float() * 4.0
