"""The published recipe, pinned: every setting of the default run against the recipe's table.

A silent change to any of these (a momentum, a decay, an order of layers) would train a worse
network without any other test noticing; each value is stated once here, beside where it comes
from (the assignment, or D. Page's "How to train your ResNet", cifar10-fast ``dawn.py``).
"""
from __future__ import annotations

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


