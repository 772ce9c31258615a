import numpy as np
import pytest
import torch

from helpers.schedule import one_cycle, one_cycle_values, peak_step, step_within, triangular_lr


def test_one_cycle_first_peak_last():
    lrs = one_cycle_values(0.05, 0.4, epochs=24, steps_per_epoch=97, max_at_epoch=5)
    assert len(lrs) == 24 * 97
    assert lrs[0] == pytest.approx(0.05)
    p = peak_step(24, 97, 5)
    assert p == 5 * 97 - 1  # last step of epoch 5
    assert lrs[p] == pytest.approx(0.4) and lrs.max() == pytest.approx(0.4)
    assert lrs[-1] == pytest.approx(0.05)  # no annihilation: ends at LRMIN, not below
    assert lrs.min() >= 0.05 - 1e-12
    assert np.all(np.diff(lrs[: p + 1]) > 0) and np.all(np.diff(lrs[p:]) < 0)


def test_scheduler_never_steps_past_the_end():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    s = one_cycle(opt, 0.01, 0.1, 2, 5, 1)
    for _ in range(50):
        opt.step()
        step_within(s)
    assert s.last_epoch == s.total_steps - 1
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)


def test_triangle_formula_points():
    base, top, ss = 0.001, 0.006, 100
    lr = triangular_lr(np.array([0, 50, 100, 150, 200, 300, 400]), ss, base, top)
    assert lr == pytest.approx([base, (base + top) / 2, top, (base + top) / 2, base, top, base])
    full = triangular_lr(601, ss, base, top)
    assert len(full) == 601 and full.max() == pytest.approx(top) and full.min() == pytest.approx(base)
