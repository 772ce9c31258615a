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


def test_pages_annealed_cycle_corners_and_line():
    """LRMIN at the first step, LRMAX at the last step of epoch 5, 0 at the last step, linear between."""
    from helpers.schedule import make_schedule_values

    lrs = make_schedule_values("one_cycle_annealed", 0.02, 0.4, epochs=24, steps_per_epoch=10, max_at_epoch=5)
    assert len(lrs) == 240
    assert lrs[0] == pytest.approx(0.02) and lrs[49] == pytest.approx(0.4) and lrs[-1] == pytest.approx(0.0)
    assert lrs[49 + 95] == pytest.approx(0.2)  # half way down: 95 of the 190 steps after the peak
    assert lrs.argmax() == 49 and np.all(np.diff(lrs[:50]) > 0) and np.all(np.diff(lrs[49:]) < 0)
    np.testing.assert_allclose(np.diff(lrs[:50]), (0.4 - 0.02) / 49)


def test_step_schedule_drops_tenfold_at_half_and_three_quarters():
    from helpers.schedule import make_schedule_values

    lrs = make_schedule_values("step", 0.01, 0.1, epochs=8, steps_per_epoch=10, max_at_epoch=2)
    assert len(lrs) == 80
    np.testing.assert_allclose(lrs[:40], 0.1)
    np.testing.assert_allclose(lrs[40:60], 0.01)
    np.testing.assert_allclose(lrs[60:], 0.001)
