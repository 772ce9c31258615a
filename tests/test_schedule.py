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


def test_one_cycle_is_a_straight_line_up_and_one_down():
    lrs = one_cycle_values(0.05, 0.4, epochs=4, steps_per_epoch=10, max_at_epoch=1)
    np.testing.assert_allclose(np.diff(lrs[:10]), (0.4 - 0.05) / 9)   # 9 steps up to the peak at step 9
    np.testing.assert_allclose(np.diff(lrs[9:]), -(0.4 - 0.05) / 30)  # 30 steps down to LRMIN


@pytest.mark.parametrize("cycle", [False, True])
def test_momentum_moves_against_the_lr_only_when_asked(cycle):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    s = one_cycle(opt, 0.01, 0.1, 2, 5, 1, cycle_momentum=cycle)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["momentum"])
        opt.step()
        step_within(s)
    if cycle:  # torch's defaults: 0.95 at LRMIN, 0.85 at LRMAX
        assert seen[0] == pytest.approx(0.95) and seen[4] == pytest.approx(0.85) and seen[-1] == pytest.approx(0.95)
    else:
        assert seen == [0.9] * 10


def test_triangle_formula_beyond_the_first_cycle():
    from helpers.schedule import triangular_lr

    lr = triangular_lr(np.array([400, 500, 600, 650, 700]), 100, 0.001, 0.006)
    assert lr == pytest.approx([0.001, 0.006, 0.001, 0.0035, 0.006])
