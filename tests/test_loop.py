"""helpers.loop: the epoch loop, its rows and the order in which it calls its callbacks."""
import pytest
import torch

from conftest import Stop
from helpers.data import Split
from helpers.loaders import BatchedTrainLoader, EvalLoader
from helpers.loop import Callback, Parts, headline_key, new_history, train_loop
from helpers.model import ResNet9
from helpers.schedule import one_cycle
from helpers.train import Precision, make_ema, make_optimizer

CPU = torch.device("cpu")


def parts(split: Split, epochs: int = 2, ema: float = 0.0, tta: str = "none") -> Parts:
    torch.manual_seed(0)
    model = ResNet9(width=0.0625)
    loader = BatchedTrainLoader(Split(split.x[:256], split.y[:256]), 64, CPU)
    opt = make_optimizer(model, 0.4)
    return Parts(model, opt, one_cycle(opt, 0.05, 0.4, epochs, len(loader), 1), Precision("cpu"), loader,
                 EvalLoader(Split(split.x[:64], split.y[:64]), CPU), make_ema(model, ema) if ema else None,
                 tta=tta)


class Log(Callback):
    def __init__(self, name: str, said: list) -> None:
        self.name, self.said = name, said

    def on_epoch_start(self, epoch):
        self.said.append((self.name, "start", epoch))

    def on_step(self, epoch, step):
        self.said.append((self.name, "step", epoch, step))

    def on_epoch_end(self, end):
        self.said.append((self.name, "end", end.epoch, len(end.history["epochs"]), end.row is end.history["epochs"][-1]))


def test_callbacks_are_called_in_order_start_each_step_end_with_the_row_appended(split):
    said = []
    history = train_loop(parts(split), range(2), new_history(4, "test_acc"), [Log("a", said), Log("b", said)])
    epoch1 = ([("a", "start", 1), ("b", "start", 1)]
              + [(n, "step", 1, s) for s in range(1, 5) for n in "ab"]
              + [("a", "end", 1, 1, True), ("b", "end", 1, 1, True)])
    assert said[:len(epoch1)] == epoch1 and said[-1] == ("b", "end", 2, 2, True)
    assert [r["epoch"] for r in history["epochs"]] == [1, 2] and len(history["lr"]) == 8 == len(history["momentum"])
    assert {"train_loss", "train_acc", "test_loss", "test_acc", "lr_last", "train_seconds", "seconds"} <= \
        set(history["epochs"][0]) and "loss_scale" not in history["epochs"][0]  # no scaler in fp32


def test_a_range_of_later_epochs_continues_the_numbering_and_a_callback_stops_the_loop(split):
    said = []
    with pytest.raises(KeyboardInterrupt):
        train_loop(parts(split, epochs=3), range(1, 3), new_history(4, "test_acc"),
                   [Log("a", said), Stop(3, KeyboardInterrupt())])
    assert said[0] == ("a", "start", 2) and ("a", "end", 2, 1, True) in said and said[-1] == ("a", "start", 3)


def test_the_weight_average_and_tta_are_evaluated_beside_the_weights(split):
    history = train_loop(parts(split, ema=0.9, tta="flip"), range(1), new_history(4, headline_key(0.9, "flip")))
    row = history["epochs"][0]
    assert {"test_acc", "test_acc_tta", "test_acc_ema", "test_acc_ema_tta"} <= set(row)
    assert history["headline"] == "test_acc_ema_tta" and headline_key(0, "none") == "test_acc"


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # the skipped first step
def test_an_fp16_row_records_the_loss_scale_at_its_epochs_end(split):
    from benchmarks.fp16_cpu import WideConvBackward  # fp16's convolution backward at fp32's speed

    p = parts(split)
    p.precision = Precision("cpu", torch.float16)
    p.precision.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 40, growth_interval=1)  # overflows at first

    class Scales(Callback):
        seen: list = []

        def on_epoch_end(self, end):
            self.seen.append(end.parts.precision.scaler.get_scale())

    with WideConvBackward():
        history = train_loop(p, range(2), new_history(4, "test_acc"), [Scales()])
    assert [r["loss_scale"] for r in history["epochs"]] == Scales.seen and Scales.seen[0] < 2.0 ** 40


def test_progress_bars_count_each_epochs_steps_and_leave_no_line_behind():
    from helpers.loop import progress_bars

    bar = progress_bars(4, 24)(2)(iter(range(4)))  # an epoch's batches come from a generator: no len()
    assert list(bar) == [0, 1, 2, 3] and bar.total == 4 and bar.desc == "epoch 3/24"
    assert bar.leave is False and bar.mininterval == 1.0  # a saved notebook keeps no 24 finished bars


@pytest.mark.parametrize("ema,tta,keys", [
    (0.0, "none", {"test_loss", "test_acc"}),
    (0.5, "none", {"test_loss", "test_acc", "test_loss_ema", "test_acc_ema"}),
    (0.5, "flip", {"test_loss", "test_acc", "test_loss_ema", "test_acc_ema", "test_loss_tta", "test_acc_tta",
                   "test_loss_ema_tta", "test_acc_ema_tta"})])
def test_evaluation_measures_the_weights_and_only_the_extras_switched_on(split, ema, tta, keys):
    from helpers.loop import evaluate_all
    from helpers.train import evaluate

    p = parts(split, ema=ema, tta=tta)
    out = evaluate_all(p.model, p.ema, p.test_loader, p.precision, tta)
    assert set(out) == keys
    assert (out["test_loss"], out["test_acc"]) == evaluate(p.model, p.test_loader, p.precision)
    if tta != "none":  # the mirrored images count: not the plain evaluation under another name
        assert (out["test_loss_tta"], out["test_acc_tta"]) == evaluate(p.model, p.test_loader, p.precision, tta)
        assert out["test_loss_tta"] != out["test_loss"]


def test_each_epoch_gets_the_loops_scheduler_progress_bar_and_weight_average(split):
    p, wrapped = parts(split, ema=0.5), []

    def progress(epoch):
        return lambda batches: wrapped.append(epoch) or batches

    history = train_loop(p, range(2), new_history(4, "test_acc"), progress=progress)
    assert wrapped == [0, 1]  # each epoch's batches go through the bar made for that epoch
    assert len(set(history["lr"])) == 8  # the one cycle stepped after every step, not held at its start
    assert int(p.ema.n_averaged) == 8  # the average followed every optimizer step
    row = history["epochs"][-1]
    assert "test_acc_ema" in row and not any(k.endswith("_tta") for k in row)  # no flip asked, none measured
    assert 0 < row["train_seconds"] <= row["seconds"] < 600  # seconds elapsed, training's within the epoch's


def test_a_row_holds_the_epochs_last_lr_and_its_times_to_the_hundredth_and_callbacks_get_its_statistics(
        split, monkeypatch):
    import time

    ticks = iter(range(100))
    monkeypatch.setattr(time, "perf_counter", lambda: 1.23456 * next(ticks))  # a clock: 1.23456 s a reading
    seen = []

    class Stats(Callback):
        def on_epoch_end(self, end):
            seen.append(end.stats.lrs)

    history = train_loop(parts(split), range(2), new_history(4, "test_acc"), [Stats()])
    assert [(r["train_seconds"], r["seconds"]) for r in history["epochs"]] == [(1.23, 2.47)] * 2  # 3 readings each
    assert [r["lr_last"] for r in history["epochs"]] == [history["lr"][3], history["lr"][7]]
    assert seen == [history["lr"][:4], history["lr"][4:]]


def test_a_diverged_epoch_is_named_by_its_number_from_1(split):
    from helpers.train import Diverged

    class NaNs(torch.nn.Module):  # the module the steps call: its every loss is NaN
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x) * float("nan")

    p = parts(split, epochs=3)
    p.step_fn = NaNs(p.model)
    with pytest.raises(Diverged, match="at epoch 2, step 1:"):
        train_loop(p, range(1, 2), new_history(4, "test_acc"))
