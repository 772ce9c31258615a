import json

import numpy as np
import pytest
import torch

from helpers.cli import main
from helpers.config import LR_MAX_RULES, TrainConfig
from helpers.data import Split
from helpers.errors import UserError
from helpers.loaders import BatchedTrainLoader
from helpers.lr_finder import (LR_MAX_CAP, MAX_RULES, range_test, suggest, suggest_first_min, suggest_first_min_capped,
                               suggest_min10, suggest_smith_min, suggest_steepest, suggest_valley)
from helpers.model import ResNet9
from helpers.train import Precision, make_optimizer

CPU = torch.device("cpu")
# a smooth curve on which the rules disagree (a fall, then a rise)
SINE_LRS, SINE_LOSSES = np.geomspace(1e-3, 10, 30), 2.3 - np.sin(np.linspace(0, 3, 30))


def after_start_up(curve: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """LRs 0, 1, 2, ... and ``curve`` behind five start-up points (loss 9), which the rules skip."""
    return np.arange(5.0 + len(curve)), np.array([9.0] * 5 + curve)


def setup(split, iters=30, start=1e-4, end=10.0):
    torch.manual_seed(0)
    model = ResNet9(width=0.0625)
    loader = BatchedTrainLoader(Split(split.x[:256], split.y[:256]), 64, CPU)
    cfg = TrainConfig(lr_find_iters=iters, lr_find_start=start, lr_find_end=end)
    return model, loader, cfg


@pytest.mark.slow
def test_model_and_optimizer_unchanged(split):
    model, loader, cfg = setup(split)
    opt = make_optimizer(model, 0.123)
    # give the optimizer momentum buffers so there is state to corrupt
    model(torch.randn(8, 3, 32, 32)).sum().backward()
    opt.step()
    before_m = {k: v.clone() for k, v in model.state_dict().items()}
    before_o = opt.state_dict()
    before_bufs = [opt.state[p]["momentum_buffer"].clone() for p in model.parameters()]
    model.train()
    range_test(model, loader, CPU, Precision("cpu"), cfg, optimizer=opt, log=lambda s: None)
    assert all(torch.equal(before_m[k], v) for k, v in model.state_dict().items())
    assert opt.param_groups[0]["lr"] == 0.123 and "initial_lr" not in opt.param_groups[0]
    assert opt.state_dict()["param_groups"] == before_o["param_groups"]
    assert all(torch.equal(b, opt.state[p]["momentum_buffer"]) for b, p in zip(before_bufs, model.parameters()))
    assert model.training


@pytest.mark.slow
def test_suggestions_inside_range_and_consistent_with_curve(split):
    model, loader, cfg = setup(split, iters=40)
    r = range_test(model, loader, CPU, Precision("cpu"), cfg, log=lambda s: None)
    lrs, losses = np.array(r.lrs), np.array(r.losses)
    assert np.all(np.diff(lrs) > 0) and lrs[0] >= cfg.lr_find_start * 0.99
    for v in r.suggestions.values():
        assert lrs[0] / 10 - 1e-12 <= v <= lrs[-1]
    i_min = int(np.argmin(losses[5:])) + 5
    assert r.suggestions["min10"] == pytest.approx(lrs[i_min] / 10)
    assert r.lr_min < r.lr_max
    assert r.lr_max == r.suggestions["first_min_capped"] == min(r.suggestions["first_min"], 1.0)
    assert r.rule.startswith("lr_max=first_min_capped")


def test_rules_on_a_known_curve():
    lrs = np.logspace(-4, 1, 101)
    x = np.log10(lrs)
    # flat until 1e-3, falls to a minimum at 1e0, then blows up
    losses = np.where(x < -3, 2.3, 2.3 - 1.5 * np.clip((x + 3) / 3, 0, 1) ** 2) + np.where(x > 0, 10 * x, 0)
    assert suggest_min10(lrs, losses) == pytest.approx(0.1, rel=0.05)
    assert 1e-3 < suggest_smith_min(lrs, losses) < 1e-1
    assert 1e-2 < suggest_steepest(lrs, losses) <= 1.0
    assert 1e-3 < suggest_valley(lrs, losses) < 1.0
    assert suggest_first_min(lrs, losses) == pytest.approx(1.0, rel=0.05)
    lr_max, lr_min, values = suggest(lrs, losses)
    assert lr_max == values["first_min"] and lr_min == values["smith_min"] < lr_max


@pytest.mark.slow
def test_stops_early_on_divergence(split):
    model, loader, cfg = setup(split, iters=60, start=1e-2, end=1e5)
    r = range_test(model, loader, CPU, Precision("cpu"), cfg, log=lambda s: None)
    assert r.stopped_early in ("diverged", "non-finite loss")
    assert len(r.lrs) < 60 and all(np.isfinite(r.losses))


@pytest.mark.slow
@pytest.mark.e2e
def test_lr_find_command_writes_png_and_json(class_tree, tmp_path, capsys):
    out = tmp_path / "lf"
    assert main(["lr-find", "--data-dir", str(class_tree), "--out", str(out), "--width", "0.0625",
                 "--batch-size", "32", "--lr-find-iters", "20", "--no-progress", "--device", "cpu"]) == 0
    js = json.loads((out / "lr_find.json").read_text())
    assert len(js["lrs"]) == len(js["losses"]) > 5 and js["lr_min"] < js["lr_max"]
    assert {"steepest", "min10", "valley", "smith_min"} <= set(js["suggestions"])
    assert (out / "lr_find.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.e2e
def test_train_with_auto_records_the_range_test(class_tree, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(class_tree), "--out", str(out), "--epochs", "2", "--max-at-epoch", "1",
                 "--width", "0.0625", "--batch-size", "32", "--lr-find-iters", "20", "--no-progress",
                 "--no-report", "--device", "cpu"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    found = cfg["resolved"]["lr_find"]
    assert cfg["lr_max"] == found["lr_max"] and cfg["lr_min"] == found["lr_min"] < cfg["lr_max"]
    assert "first_min" in found["rule"] and (out / "lr_find.png").exists()


@pytest.mark.slow
def test_mixed_precision_path_runs(split):
    """The autocast branch Colab takes on CUDA, exercised on the CPU with bfloat16."""
    model, loader, cfg = setup(split, iters=12)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = range_test(model, loader, CPU, Precision("cpu", torch.bfloat16), cfg, log=lambda s: None)
    assert len(r.lrs) == 12 and all(np.isfinite(r.losses))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_first_min_takes_the_first_valley_not_the_deepest():
    """Two valleys (as this network's curve has at full width): the first one is read, unless
    it is shallow; a bump that is not a valley does not stop the search."""
    lrs = np.logspace(-4, 2, 121)
    x = np.log10(lrs)
    first = 2.3 - 0.5 * np.exp(-((x + 0.5) / 0.5) ** 2)   # a valley near 0.3
    second = -0.55 * np.exp(-((x - 0.9) / 0.3) ** 2)       # a deeper one near 8
    assert suggest_first_min(lrs, first + second) == pytest.approx(0.3, rel=0.15)
    assert suggest_min10(lrs, first + second) == pytest.approx(0.8, rel=0.2)  # min/10 reads the deeper one
    shallow = 2.3 - 0.1 * np.exp(-((x + 0.5) / 0.5) ** 2) - 0.5 * np.exp(-((x - 0.9) / 0.3) ** 2)
    assert suggest_first_min(lrs, shallow) == pytest.approx(8, rel=0.2)


def test_the_default_rule_caps_the_first_valley():
    """first_min_capped = first_min below LR_MAX_CAP, the cap above it (narrow networks' curves
    fall until ~7, where a 24-epoch cycle collapses)."""
    lrs = np.logspace(-4, 2, 121)
    x = np.log10(lrs)
    low = 2.3 - 0.5 * np.exp(-((x + 0.5) / 0.5) ** 2)   # one valley near 0.3
    high = 2.3 - 0.5 * np.exp(-((x - 0.9) / 0.5) ** 2)  # one valley near 8
    assert suggest_first_min_capped(lrs, low) == suggest_first_min(lrs, low) == pytest.approx(0.3, rel=0.15)
    assert suggest_first_min(lrs, high) == pytest.approx(8, rel=0.2)
    assert suggest_first_min_capped(lrs, high) == LR_MAX_CAP == 1.0
    lr_max, lr_min, values = suggest(list(lrs), list(high))  # the default rule
    assert lr_max == values["first_min_capped"] == 1.0 and lr_min < lr_max


def test_the_config_names_every_rule_the_finder_implements():
    """config.LR_MAX_RULES (what --lr-max-rule accepts) and lr_finder.MAX_RULES must not drift apart."""
    assert tuple(MAX_RULES) == LR_MAX_RULES


@pytest.mark.slow
@pytest.mark.e2e
def test_a_fixed_lr_min_above_the_found_lr_max_is_one_line_in_the_job_and_the_notebook(class_tree, tmp_path):
    """The one check of LR order after the range test (lrs_in_force), met by train and by the
    notebook's run object alike."""
    from helpers.run import Run
    from helpers.lr_finder import RangeTestResult, lrs_in_force

    found = RangeTestResult([0.1, 1.0], [2.0, 1.5], lr_max=0.3, lr_min=0.01, rule="r",
                            suggestions={"smith_min": 0.01})
    with pytest.raises(UserError, match="must be smaller than --lr-max"):
        lrs_in_force(0.5, "auto", found)
    cfg = TrainConfig(data_dir=str(class_tree), out=str(tmp_path / "nb"), epochs=2, max_at_epoch=1, batch_size=32,
                      width=0.0625, lr_find_iters=20, device="cpu", progress=False, lr_min=5.0)
    run = Run.open(cfg, log=lambda _: None)
    with pytest.raises(UserError, match="must be smaller than --lr-max"):
        run.lrs()
    assert main(["train", "--data-dir", str(class_tree), "--out", str(tmp_path / "cli"), "--epochs", "2",
                 "--max-at-epoch", "1", "--width", "0.0625", "--batch-size", "32", "--lr-find-iters", "20",
                 "--lr-min", "5", "--no-progress", "--device", "cpu"]) == 2


@pytest.mark.slow
def test_the_range_tests_progress_bar_says_what_it_is(split, capsys):
    """A bare progress bar before training says nothing; this one is labelled."""
    model, loader, cfg = setup(split)
    range_test(model, loader, CPU, Precision("cpu"), cfg.replace(progress=True), log=lambda s: None)
    assert "LR range test:" in capsys.readouterr().err


def test_lrs_in_force_read_auto_off_the_range_test_and_keep_fixed_numbers():
    from helpers.lr_finder import RangeTestResult, lr_min_for, lrs_in_force

    found = RangeTestResult([0.1, 1.0], [2.0, 1.5], lr_max=0.3, lr_min=0.01, rule="r",
                            suggestions={"smith_min": 0.02})
    assert lrs_in_force("auto", "auto", found) == (0.02, 0.3)
    assert lrs_in_force("auto", "auto", found, "max/8") == (0.3 / 8, 0.3)
    assert lrs_in_force(0.05, "auto", found) == (0.05, 0.3)
    assert lrs_in_force("auto", 0.032, found) == (0.016, 0.032)  # smith_min above LRMAX / 2: LRMAX / 2
    assert lrs_in_force(0.1, 0.2, found) == (0.1, 0.2)
    with pytest.raises(UserError, match=r"--lr-min \(0.5\) must be smaller than --lr-max \(0.3, from the range "
                                        r"test\); lower --lr-min"):
        lrs_in_force(0.5, "auto", found)
    with pytest.raises(UserError, match=r"--lr-min \(0.3\) must be smaller"):
        lrs_in_force(0.3, "auto", found)  # equal is not smaller
    assert lr_min_for(0.4, 0.01) == 0.01 and lr_min_for(0.4, 0.01, "max/8") == 0.05
    assert lr_min_for(0.4, 0.3) == 0.2 and lr_min_for(0.4, 0.2) == 0.2


def test_smooth_is_torch_lr_finders_moving_average():
    from helpers.lr_finder import smooth

    np.testing.assert_allclose(smooth(np.array([4.0, 2.0, 1.0]), beta=0.5), [4.0, 3.0, 2.0])
    np.testing.assert_allclose(smooth(np.array([1.0, 0.0, 0.0])), [1.0, 0.95, 0.9025])


def test_a_range_test_saved_reads_back_equal_and_a_mismatched_one_is_one_line(tmp_path):
    from helpers.files import DamagedFile
    from helpers.lr_finder import RangeTestResult

    r = RangeTestResult([0.1, 1.0, 10.0], [2.0, 1.5, 9.0], lr_max=1.0, lr_min=0.1, rule="first_min_capped",
                        suggestions={"smith_min": 0.1}, stopped_early="diverged", seconds=3.5, batch_size=512,
                        settings={"width": 0.25})
    path = r.save(tmp_path / "new" / "deeper")
    assert path == tmp_path / "new" / "deeper" / "lr_find.json" and RangeTestResult.load(path) == r
    assert path.read_text().startswith('{\n  "lrs": [\n    0.1,')  # indented: a file people read
    assert r.save(tmp_path, "other.json").name == "other.json"
    d = json.loads(path.read_text())
    path.write_text(json.dumps({**d, "a_later_field": 1}))
    assert RangeTestResult.load(path) == r  # fields this version does not know are ignored
    for bad in ({**d, "losses": [1.0]}, {**d, "lrs": "0.1"}, {**d, "lr_max": "1"}, {**d, "lrs": [0.1, "x", 1.0]}):
        path.write_text(json.dumps(bad))
        with pytest.raises(DamagedFile, match="lr_find.json \\(the LR range test\\) is damaged: its LRs"):
            RangeTestResult.load(path)
    path.write_text(json.dumps({k: v for k, v in d.items() if k != "rule"}))
    with pytest.raises(DamagedFile, match="rule"):
        RangeTestResult.load(path)


def test_an_older_range_test_without_the_later_fields_reads_back_with_their_defaults(tmp_path):
    from helpers.files import DamagedFile
    from helpers.lr_finder import RangeTestResult

    path = tmp_path / "lr_find.json"
    path.write_text(json.dumps({"lrs": [0.1, 1.0], "losses": [2.0, 1.0], "lr_max": 1.0, "lr_min": 0.1, "rule": "r"}))
    r = RangeTestResult.load(path)
    assert (r.suggestions, r.stopped_early, r.seconds, r.batch_size, r.settings) == ({}, "", 0.0, 0, {})
    with pytest.raises(DamagedFile, match=r"other.json \(the LR range test\) is missing"):
        RangeTestResult.load(tmp_path / "other.json")


@pytest.mark.slow
def test_its_bar_is_a_labelled_text_bar_that_goes_away(split):
    import torch_lr_finder.lr_finder as tlf

    model, loader, cfg = setup(split, iters=10)
    for progress in (True, False):
        range_test(model, loader, CPU, Precision("cpu"), cfg.replace(progress=progress), log=lambda s: None)
        assert tlf.tqdm.keywords == {"desc": "LR range test", "disable": not progress, "leave": False,
                                     "mininterval": 1.0}


def test_its_loss_is_trainings_and_its_batches_come_from_epochs_apart_from_trainings():
    from helpers.lr_finder import _EpochIter, _finite_loss, _StopRangeTest
    from helpers.train import classification_loss

    out, y = torch.randn(6, 10), torch.arange(6)
    assert torch.equal(_finite_loss(out, y), classification_loss(out, y))
    assert torch.equal(_finite_loss(out, y, 0.2), classification_loss(out, y, 0.2))
    with pytest.raises(_StopRangeTest):
        _finite_loss(torch.full((6, 10), float("nan")), y)
    asked = []

    class Loader:
        def epoch(self, k):
            asked.append(k)
            return [k]

        def __len__(self):
            return 7
    it = _EpochIter(Loader())
    assert len(it) == 7 and list(it) == [10**6 + 1] and list(it) == [10**6 + 2] and asked == [10**6 + 1, 10**6 + 2]


@pytest.mark.parametrize("dtype,ending", [(None, ""), (torch.bfloat16, "diverged"), (torch.float16, "non-finite loss")])
def test_the_range_test_asks_torch_lr_finder_for_the_recipes_sweep_and_records_what_it_found(monkeypatch, capsys,
                                                                                             dtype, ending):
    import functools
    from types import SimpleNamespace

    import torch_lr_finder.lr_finder as tlf

    from helpers.lr_finder import _EpochIter, _finite_loss, _StopRangeTest, settings_of

    lrs, losses = list(SINE_LRS), list(SINE_LOSSES)
    made = []

    class Finder:
        def __init__(self, model, optimizer, criterion, device=None, **amp):
            made.append({"optimizer": optimizer, "criterion": criterion, "device": device, "amp": amp})
            self.model, self.optimizer, self.history = model, optimizer, {"lr": [], "loss": []}

        def range_test(self, batches, **kw):
            made[-1].update(batches=batches, kw=kw)
            self.model.train()
            self.optimizer.param_groups[0].update(lr=99.0, initial_lr=1.0)
            print("Learning rate search finished")
            n = 30 if ending == "" else 20
            self.history = {"lr": lrs[:n], "loss": losses[:n]}
            if ending == "non-finite loss":
                raise _StopRangeTest

        def reset(self):
            made[-1]["reset"] = True

    monkeypatch.setattr(tlf, "LRFinder", Finder)
    monkeypatch.setattr(tlf, "TrainDataLoaderIter", lambda it: it)
    model = ResNet9(width=0.0625).eval()
    rule = "smith" if dtype is None else "max/8"
    cfg = TrainConfig(lr_find_iters=30, lr_find_start=1e-3, lr_find_end=10.0, label_smoothing=0.1, momentum=0.8,
                      nesterov=False, lr_max_rule="steepest", lr_min_rule=rule, progress=False)
    loader = SimpleNamespace(batch_size=64)
    passed = torch.optim.SGD(model.parameters(), lr=0.123) if dtype is None else None
    r = range_test(model, loader, CPU, Precision(CPU, dtype), cfg, optimizer=passed, log=lambda s: None)
    m = made[0]
    assert m["kw"] == {"start_lr": 1e-3, "end_lr": 10.0, "num_iter": 30, "step_mode": "exp", "smooth_f": 0.05,
                       "diverge_th": 5}
    assert m["device"] == CPU and m["reset"] and isinstance(m["batches"], _EpochIter) and m["batches"].loader is loader
    assert isinstance(m["criterion"], functools.partial) and m["criterion"].func is _finite_loss
    assert m["criterion"].keywords == {"label_smoothing": 0.1}
    if dtype is None:
        assert m["amp"] == {} and m["optimizer"] is passed
        assert passed.param_groups[0]["lr"] == 0.123 and "initial_lr" not in passed.param_groups[0]
    else:
        scaler = m["amp"].pop("grad_scaler")
        assert m["amp"] == {"amp_backend": "torch", "amp_config": {"device_type": "cpu", "dtype": dtype}}
        assert scaler.is_enabled() is (dtype == torch.float16)
        group = m["optimizer"].param_groups[0]
        assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.8, False, 5e-4)
    assert not model.training and capsys.readouterr().out == ""
    n = len(r.lrs)
    assert (n, r.stopped_early) == ((30, "") if ending == "" else (20, ending))
    lr_max, lr_min, values = suggest(lrs[:n], losses[:n], "steepest", rule)
    assert (r.lr_max, r.lr_min, r.suggestions, r.rule) == (lr_max, lr_min, values, f"lr_max=steepest, lr_min={rule}")
    assert r.lrs == lrs[:n] and r.losses == losses[:n] and all(type(v) is float for v in r.lrs + r.losses)
    assert 0 <= r.seconds < 60 and r.batch_size == 64 and r.settings == settings_of(cfg)


@pytest.mark.parametrize("curve,expected", [
    ([2.0, 3.0, 1.75, 0.0], 2),   # the first point 10% of the way down to the minimum
    ([2.0, 1.9, 1.0], 1),         # exactly 10% of the way down counts
    ([2.0, 1.9, 1.6, 1.5], 1),    # a small drop (below 1) is a drop
    ([1.0, 2.0, 3.0], 0),         # no drop: the first LR
])
def test_smiths_lrmin_by_hand(curve, expected):
    lrs, losses = after_start_up(curve)
    assert suggest_smith_min(lrs, losses) == lrs[5 + expected]


def test_the_settings_a_range_test_depends_on():
    from helpers.lr_finder import SETTINGS, settings_of

    cfg = TrainConfig(width=0.25, seed=3)
    assert settings_of(cfg) == {k: getattr(cfg, k) for k in SETTINGS} and settings_of(cfg)["width"] == 0.25
    assert {"width", "seed", "batch_size", "lr_find_iters", "lr_max_rule"} <= set(SETTINGS)


@pytest.mark.parametrize("curve,expected", [
    ([9.0, 8, 7, 6, 5, 4, 3, 2, 1, 0], 3),  # one valley of 10: fast.ai's start is one before it, -1; -1 + 3 + 1
    ([6.0, 5, 4, 3, 2, 1, 0], 2),           # of 7: -1 + 2 + 1
    ([2.0] * 7, 0),                         # flat: no valley, the first LR
    ([1.0, 2, 3, 4, 5], 0),                 # rising: no valley
    ([5.0, 4, 3, 10, 9, 8], 0),             # two valleys of 3: the first one found wins
])
def test_valley_by_hand(curve, expected):
    """fast.ai's rule: the longest falling run of the curve, 1/3 + 1/6 of the way along it."""
    lrs = np.arange(len(curve), dtype=float)
    assert suggest_valley(lrs, np.array(curve)) == expected


@pytest.mark.parametrize("curve,rise,expected", [
    # half-way down (start 1, lowest 0) counts as deep enough; a tie is not a new minimum;
    # 0.625 is more than 10% of the depth above 0.5: the first valley, not the lowest point
    ([1.0, 0.75, 0.5, 0.5, 0.625, 0.25, 0.0, 0.5], 0.10, 2),
    # 0.625 is exactly 25% of the depth (0.5) above 0.5: not a rise yet, so on to the lowest point
    ([1.0, 0.5, 0.625, 0.25, 0.0, 0.5], 0.25, 4),
])
def test_first_min_by_hand(curve, rise, expected):
    lrs, losses = after_start_up(curve)
    assert suggest_first_min(lrs, losses, rise=rise) == lrs[5 + expected]


def test_the_start_up_points_skipped_leave_at_least_three():
    from helpers.lr_finder import _trim

    for n, first in ((9, 5), (8, 5), (6, 3), (3, 0), (2, 0)):
        a = np.arange(float(n))
        kept, same = _trim(a, a)
        assert kept[0] == first and len(kept) == n - first and np.array_equal(kept, same), n


def test_suggest_records_the_lr_min_it_gives_by_the_rule_asked_and_needs_eight_points():
    lrs, losses = SINE_LRS, SINE_LOSSES
    for rule, want in (("smith", lambda v: min(v["smith_min"], v["steepest"] / 2)),
                       ("max/8", lambda v: v["steepest"] / 8)):
        lr_max, lr_min, values = suggest(lrs, losses, "steepest", rule)
        assert lr_max == values["steepest"] and lr_min == values["lr_min"] == want(values)
    lr_max, lr_min, values = suggest(lrs, losses)  # the defaults: the capped first valley, Smith's LRMIN
    assert (lr_max, lr_min) == (values["first_min_capped"], values["smith_min"]) and lr_min < lr_max / 2
    assert lr_max != values["steepest"] and values["smith_min"] != values["steepest"] / 8
    suggest(lrs[:8], losses[:8])
    with pytest.raises(UserError, match="the range test recorded only 7 points; raise --lr-find-iters"):
        suggest(lrs[:7], losses[:7])


def test_the_range_test_is_run_with_the_settings_device_precision_data_and_log_it_is_handed(tmp_path, monkeypatch):
    """``find_lrs``'s wiring, seen from the parts it builds; alone, it chooses them from the settings."""
    import helpers.lr_finder as L
    from conftest import write_class_folders
    from helpers.data import load_cifar10
    from helpers.train import Precision

    got = {}
    monkeypatch.setattr(L, "make_train_loader", lambda *a: got.setdefault("loader", a) and "loader")
    monkeypatch.setattr(L, "build_model", lambda cfg, device: got.setdefault("model", device) and "model")
    monkeypatch.setattr(L, "range_test", lambda *a, **k: got.setdefault("test", (a, k)) and "result")
    tree = write_class_folders(tmp_path / "c", 64, 32)
    cfg = TrainConfig(data_dir=str(tree), augment="albumentations", batch_size=32, seed=4, num_workers=0,
                      device="cpu", precision="bf16")
    said = []
    assert L.find_lrs(cfg, log=said.append) == "result"  # alone: the settings' device, precision and data
    cpu = torch.device("cpu")
    (augment, split, batch, device, seed, workers) = got["loader"]
    assert (augment, len(split), batch, device, seed, workers) == ("albumentations", 64, 32, cpu, 4, 0)
    (model, loader, device, precision, cfg_seen), kw = got["test"]
    assert (model, loader, device, cfg_seen, kw) == ("model", "loader", cpu, cfg, {"log": said.append})
    assert precision.dtype == torch.bfloat16 and got["model"] == cpu

    got.clear()
    data, mine = load_cifar10(tree, download=False), Precision("cpu")
    meta = torch.device("meta")  # not what the settings would choose
    L.find_lrs(cfg.replace(data_dir=str(tmp_path / "not read")), data, said.append, meta, mine)
    assert got["loader"][1] is data.train and got["loader"][3] == meta == got["model"]  # what the run handed over
    assert got["test"][0][2] == meta and got["test"][0][3] is mine


def test_out_of_memory_in_the_range_test_names_the_batch_size_and_that_nothing_was_saved(monkeypatch):
    import helpers.lr_finder as L
    from conftest import numbered_split
    from helpers.data import Cifar10

    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")
    monkeypatch.setattr(L, "range_test", oom)
    data = Cifar10(numbered_split(64), numbered_split(8))
    with pytest.raises(UserError) as e:
        L.find_lrs(TrainConfig(batch_size=32, width=0.25, device="cpu"), data)
    assert " at batch size 32, width 0.25: " in str(e.value) and str(e.value).endswith("; no range test was saved")
