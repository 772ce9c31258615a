"""The published recipe, pinned: every setting of the default run against the recipe's table.

A silent change to any of these (a momentum, a decay, an order of layers) would train a worse
network without any other test noticing; each value is stated once here, beside where it comes
from (the assignment, or D. Page's "How to train your ResNet", cifar10-fast ``dawn.py``).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.config import TrainConfig
from helpers.model import ResNet9
from helpers.train import make_optimizer

# (setting, value, source)
RECIPE = [
    ("epochs", 24, "assignment"),
    ("max_at_epoch", 5.0, "assignment"),
    ("batch_size", 512, "assignment"),
    ("lr_min", "auto", "assignment: LRMIN from the range test"),
    ("lr_max", "auto", "assignment: LRMAX from the range test"),
    ("schedule", "one_cycle", "assignment: one cycle, no annihilation"),
    ("momentum", 0.9, "Page"),
    ("nesterov", True, "Page"),
    ("weight_decay", 5e-4, "Page (on a mean loss)"),
    ("logit_scale", 0.125, "Page's Mul(0.125)"),
    ("width", 1.0, "assignment: the full network"),
    ("block_order", "assignment", "assignment: conv -> pool -> BN -> ReLU"),
    ("label_smoothing", 0.0, "extras off"),
    ("tta", "none", "extras off"),
    ("ema", 0.0, "extras off"),
    ("precision", "auto", "bf16 / fp16 on a GPU, fp32 elsewhere"),
    ("lr_max_rule", "first_min_capped", "the rule measured across widths"),
    ("lr_min_rule", "smith", "Smith's lower bound"),
]


def test_defaults_are_the_recipe():
    cfg = TrainConfig()
    got = {name: getattr(cfg, name) for name, _, _ in RECIPE}
    assert got == {name: value for name, value, _ in RECIPE}


def test_optimizer_is_the_recipes_sgd():
    """The optimizer training builds from the defaults: SGD with Nesterov momentum 0.9 and
    weight decay 5e-4 on every parameter, in one group, no dampening."""
    cfg = TrainConfig()
    model = ResNet9(width=0.125)
    opt = make_optimizer(model, 0.4, cfg.momentum, cfg.weight_decay, cfg.nesterov)
    assert type(opt) is torch.optim.SGD
    (group,) = opt.param_groups
    assert (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"], group["dampening"]) == \
        (0.4, 0.9, 5e-4, True, 0)
    (default,) = make_optimizer(model, 0.4).param_groups  # its own defaults are the recipe's too
    assert {k: v for k, v in default.items() if k != "params"} == {k: v for k, v in group.items() if k != "params"}
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]


def test_momentum_stays_at_the_recipes_value_through_the_whole_schedule():
    """One cycle moves the LR only: momentum 0.9 and Nesterov at every one of the 24 x 97 steps."""
    from helpers.schedule import make_schedule, step_within

    cfg = TrainConfig()
    model = ResNet9(width=0.0625)
    opt = make_optimizer(model, 0.4, cfg.momentum, cfg.weight_decay, cfg.nesterov)
    sched = make_schedule(cfg.schedule, opt, 0.01, 0.4, cfg.epochs, 97, cfg.max_at_epoch)
    seen = set()
    for _ in range(cfg.epochs * 97):
        (group,) = opt.param_groups
        seen.add((group["momentum"], group["nesterov"], group["weight_decay"]))
        opt.step()
        step_within(sched)
    assert seen == {(0.9, True, 5e-4)}


class KnownLogits(torch.nn.Module):
    """Predicts the class written in each image's first pixel; a BatchNorm records if it ran in
    training mode (its running mean moves only then)."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(1)

    def forward(self, x):
        self.bn(x[:, :1, 0, 0])
        return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 10).float() * 4.0


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


@pytest.mark.parametrize("name,value,ok", [
    ("momentum", 0.99, True), ("momentum", 1.0, False), ("momentum", -0.01, False),
    ("label_smoothing", 0.99, True), ("label_smoothing", 1.0, False),
    ("ema", 0.999, True), ("ema", 1.0, False), ("ema", -0.1, False),
    ("width", 0.0546, False), ("width", 0.0547, True), ("width", 3.5 / 64, True),
    ("max_at_epoch", 23.5, True), ("max_at_epoch", 24, False), ("max_at_epoch", 0, False),
    ("lr_find_iters", 10, True), ("lr_find_iters", 9, False),
    ("weight_decay", 0.0, True), ("weight_decay", -1e-9, False),
    ("batch_size", 1, True), ("batch_size", 0, False),
    ("lr_find_start", 100.0, False), ("limit_train", -1, False), ("limit_train", 0, True),
])
def test_validation_bounds_sit_where_the_docs_say(name, value, ok):
    from helpers.errors import UserError

    cfg = TrainConfig(**{name: value})
    if ok:
        cfg.validate()
    else:
        with pytest.raises(UserError, match=name.replace("_", "-")):
            cfg.validate()


def test_triangle_formula_beyond_the_first_cycle():
    from helpers.schedule import triangular_lr

    lr = triangular_lr(np.array([400, 500, 600, 650, 700]), 100, 0.001, 0.006)
    assert lr == pytest.approx([0.001, 0.006, 0.001, 0.0035, 0.006])


def test_albumentations_workers_give_the_same_epoch_for_the_same_seed_and_a_new_one_for_the_next():
    """Worker k reseeds from (seed, epoch) and k: two runs draw the same batches; epochs differ."""
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader

    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 64))
    a = AlbumentationsTrainLoader(split, 16, torch.device("cpu"), seed=5, num_workers=2)
    b = AlbumentationsTrainLoader(split, 16, torch.device("cpu"), seed=5, num_workers=2)
    first = [x for x, _ in a.epoch(0)]
    assert all(torch.equal(x, y) for x, (y, _) in zip(first, b.epoch(0)))
    assert not all(torch.equal(x, y) for x, (y, _) in zip(first, a.epoch(1)))
    other_seed = AlbumentationsTrainLoader(split, 16, torch.device("cpu"), seed=6, num_workers=2)
    assert not all(torch.equal(x, y) for x, (y, _) in zip(first, other_seed.epoch(0)))


def test_each_worker_draws_its_own_augmentation():
    """Identical images: batch 0 (worker 0) and batch 1 (worker 1) differ only if the workers'
    transforms are seeded apart; a worker's two batches differ too."""
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader

    img = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    split = Split(np.repeat(img, 64, axis=0), np.zeros(64, dtype=np.int64))
    batches = [x for x, _ in AlbumentationsTrainLoader(split, 16, torch.device("cpu"), seed=5, num_workers=2).epoch(0)]
    assert not torch.equal(batches[0], batches[1]) and not torch.equal(batches[0], batches[2])


def test_inside_a_worker_each_image_keeps_its_label_and_worker_k_draws_from_seed_plus_1_plus_k():
    """What DataLoader workers run, called here in this process (mutation testing sees only this)."""
    from helpers.augment import albumentations_train, reseed
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader, EvalLoader, _AlbumentationsDataset, _ReseedWorker

    rng = np.random.default_rng(2)
    split = Split(rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8), np.arange(50) % 10)
    ds = _AlbumentationsDataset(split, albumentations_train())
    x, y = ds[13]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 3 and type(y) is int and len(ds) == 50
    worker, twin = albumentations_train(), albumentations_train()
    _ReseedWorker(worker, 5)(2)
    reseed(twin, 8)
    img = split.x[0]
    draws = [(worker(image=img)["image"], twin(image=img)["image"]) for _ in range(4)]
    assert all(np.array_equal(a, b) for a, b in draws)
    reseed(twin, 7)
    assert not all(np.array_equal(worker(image=img)["image"], twin(image=img)["image"]) for _ in range(4))
    assert len(AlbumentationsTrainLoader(split, 16, torch.device("cpu"))) == 3  # the partial batch dropped
    assert len(EvalLoader(split, torch.device("cpu"), batch_size=16)) == 4     # the partial batch kept
    assert len(EvalLoader(split, torch.device("cpu"), batch_size=25)) == 2


def test_a_runs_settings_read_back_and_a_damaged_one_is_one_line(tmp_path):
    from helpers.files import DamagedFile

    cfg = TrainConfig(width=0.25, lr_min=0.01, lr_max=0.4, seed=7)
    path = tmp_path / "config.json"
    path.write_text(__import__("json").dumps(cfg.to_dict()))
    assert TrainConfig.read(path) == cfg
    path.write_text(__import__("json").dumps({**cfg.to_dict(), "epochs": 0}))
    with pytest.raises(DamagedFile, match=r"config.json \(the run's settings\) is damaged: --epochs must be"):
        TrainConfig.read(path)
    path.write_text("{")
    with pytest.raises(DamagedFile, match=r"config.json \(the run's settings\) is damaged: not valid JSON"):
        TrainConfig.read(path)


@pytest.mark.parametrize("bad,line", [
    ({"epochs": 0}, "--epochs must be a positive integer, got 0"),
    ({"epochs": 24.0}, "--epochs must be a positive integer, got 24.0"),
    ({"max_at_epoch": 24}, "--max-at-epoch must lie strictly between 0 and --epochs (24), got 24"),
    ({"max_at_epoch": float("nan")}, "--max-at-epoch must lie strictly between 0 and --epochs (24), got nan"),
    ({"batch_size": 0}, "--batch-size must be a positive integer, got 0"),
    ({"batch_size": True}, "--batch-size must be a positive integer, got True"),
    ({"lr_min": 0}, "--lr-min must be a positive number or 'auto', got 0"),
    ({"lr_max": "fast"}, "--lr-max must be a positive number or 'auto', got 'fast'"),
    ({"lr_max": float("inf")}, "--lr-max must be a positive number or 'auto', got inf"),
    ({"lr_min": 0.4, "lr_max": 0.4}, "--lr-min (0.4) must be smaller than --lr-max (0.4); lower --lr-min "
                                     "(LR_MIN in the notebook) or set it to 'auto'"),
    ({"momentum": 1.0}, "--momentum must be a number in [0, 1), got 1.0"),
    ({"momentum": 0.0}, "--momentum must be above 0 with Nesterov momentum (the default); got 0.0"),
    ({"weight_decay": -1}, "--weight-decay must be a number >= 0, got -1"),
    ({"width": 0}, "--width must be a positive number (1.0 is the full network), got 0"),
    ({"logit_scale": 0}, "--logit-scale must be a positive number, got 0"),
    ({"num_workers": -1}, "--num-workers must be an integer >= 0, got -1"),
    ({"limit_train": 1.5}, "--limit-train must be an integer >= 0, got 1.5"),
    ({"limit_test": -2}, "--limit-test must be an integer >= 0, got -2"),
    ({"label_smoothing": -0.1}, "--label-smoothing must be a number in [0, 1), got -0.1"),
    ({"tta": "x"}, "--tta must be one of none, flip, got 'x'"),
    ({"ema": 1.0}, "--ema must be a decay in (0, 1), or 0 for none, got 1.0"),
    ({"schedule": "x"}, "--schedule must be one of one_cycle, one_cycle_annealed, step, got 'x'"),
    ({"block_order": "x"}, "--block-order must be one of assignment, page, got 'x'"),
    ({"augment": "x"}, "--augment must be one of batched, albumentations, got 'x'"),
    ({"precision": "fp8"}, "--precision must be one of auto, fp32, bf16, fp16, got 'fp8'"),
    ({"amp": False, "precision": "bf16"}, "--no-amp (fp32) contradicts --precision bf16; drop one of them"),
    ({"device": "tpu"}, "unknown --device 'tpu'; use one of auto, cuda, mps, cpu"),
    ({"lr_max_rule": "x"}, "--lr-max-rule must be one of first_min_capped, first_min, min10, steepest, valley, "
                           "got 'x'"),
    ({"lr_min_rule": "x"}, "--lr-min-rule must be one of smith, max/8, got 'x'"),
    ({"lr_find_start": 1.0, "lr_find_end": 1.0}, "--lr-find-start (1.0) must be a positive number below "
                                                 "--lr-find-end (1.0)"),
    ({"lr_find_iters": 9}, "--lr-find-iters must be an integer >= 10, got 9"),
    ({"lr_find_start": 0}, "--lr-find-start (0) must be a positive number below --lr-find-end (100.0)"),
])
def test_each_bad_setting_is_one_line_naming_the_option_what_it_must_be_and_the_value(bad, line):
    """What a user reads (the command line prints it after 'error: '; the notebook raises it)."""
    from helpers.errors import UserError

    with pytest.raises(UserError) as e:
        TrainConfig(**bad).validate()
    assert str(e.value) == line
    TrainConfig(**{"amp": False, "precision": "fp32", "nesterov": False, "momentum": 0.0}).validate()
    for ok in ({"amp": False}, {"epochs": 1, "max_at_epoch": 0.5}, {"lr_max": 0.4}, {"lr_min": 0.01},
               {"lr_find_start": 1e-9}):
        TrainConfig(**ok).validate()


@pytest.mark.filterwarnings("error")  # e.g. memory pinning asked for on a machine without a GPU
def test_an_albumentations_epoch_is_shuffled_whole_batches_each_from_its_workers_own_stream():
    """Batch k comes from worker k % 2, whose transform is reseeded with the epoch's seed + 1 + k % 2;
    with no workers, from the transform reseeded with the epoch's seed itself."""
    from helpers.augment import albumentations_train, reseed
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader, epoch_seed

    x = np.random.default_rng(3).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    split = Split(x, np.arange(50))  # a label is the image's index

    def expected(labels_in_batches, seeds):
        out = []
        for labels, seed in zip(labels_in_batches, seeds):
            t = albumentations_train()
            reseed(t, seed)
            out.append(torch.stack([t(image=x[int(i)])["image"] for i in labels]))
        return out

    s = epoch_seed(5, 1)
    for workers, seeds in ((2, [s + 1, s + 2]), (0, [s])):
        batches = list(AlbumentationsTrainLoader(split, 16, torch.device("cpu"), seed=5, num_workers=workers).epoch(1))
        labels = [y for _, y in batches]
        assert [tuple(b.shape) for b, _ in batches] == [(16, 3, 32, 32)] * 3  # the partial batch dropped
        order = torch.cat(labels)
        assert len(set(order.tolist())) == 48 and order.tolist() != sorted(order.tolist())
        got = [b for b, _ in batches][:len(seeds)]
        if workers:
            for g, e in zip(got, expected(labels[:2], seeds)):
                assert torch.equal(g, e)
        else:  # one stream for all three batches
            t = albumentations_train()
            reseed(t, s)
            assert torch.equal(torch.cat([b for b, _ in batches]),
                               torch.stack([t(image=x[int(i)])["image"] for i in order]))


def test_the_loader_kind_picks_the_loader_with_its_settings():
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader, BatchedTrainLoader, make_train_loader

    split = Split(np.zeros((40, 32, 32, 3), dtype=np.uint8), np.arange(40) % 10)
    cpu = torch.device("cpu")
    a = make_train_loader("albumentations", split, 8, cpu, 7)
    assert isinstance(a, AlbumentationsTrainLoader)
    assert (a.batch_size, a.seed, a.device, a.num_workers) == (8, 7, cpu, 2)
    assert len(a.dataset) == 40 and make_train_loader("albumentations", split, 8, cpu, 7, 0).num_workers == 0
    b = make_train_loader("batched", split, 8, cpu, 7)
    assert isinstance(b, BatchedTrainLoader) and (b.batch_size, b.seed, b.device) == (8, 7, cpu) and len(b) == 5


def test_evaluation_batches_hold_every_test_image_once_in_order():
    from helpers.augment import normalize
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader, EvalLoader

    n = 8200  # normalised 8,192 at a time: two chunks
    x = np.random.default_rng(4).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    split = Split(x, np.arange(n) % 10)
    loader = EvalLoader(split, torch.device("cpu"))
    assert loader.batch_size == 1024 and len(loader) == 9
    torch.testing.assert_close(loader.images, normalize(torch.as_tensor(x)), rtol=0, atol=0)
    small = EvalLoader(Split(x[:50], np.arange(50)), torch.device("cpu"), batch_size=16)
    batches = list(small)
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    assert torch.cat([y for _, y in batches]).tolist() == list(range(50))
    assert torch.equal(torch.cat([b for b, _ in batches]), small.images)
    a = AlbumentationsTrainLoader(Split(x[:50], np.arange(50)), 16, torch.device("cpu"))
    assert (a.seed, a.num_workers) == (0, 2)
