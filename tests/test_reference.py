"""benchmarks/reference.py: Page's update, his schedule and augmentation, and a short run that learns."""
import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).parents[1]
from benchmarks import reference as R  # noqa: E402
from conftest import write_class_folders  # noqa: E402
from page_golden import GOLDEN, WIDTH, inputs, logits, raw_images, seeded  # noqa: E402


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """1,100 training images: two full batches of 512 an epoch."""
    return write_class_folders(tmp_path_factory.mktemp("ref") / "cifar10", 1100, 100)


def test_one_step_is_pages_update_formula():
    """dw = -lr (g + wd w); v = m v + dw; w = w + dw + m v, from a non-zero buffer."""
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = R.PageNesterov([w], lr=0.1, momentum=0.9, weight_decay=0.5)
    opt.state[w]["v"] = torch.tensor([0.2, 0.4])
    w.grad = torch.tensor([0.3, 0.1])
    opt.step()
    dw = -0.1 * (np.array([0.3, 0.1]) + 0.5 * np.array([1.0, -2.0]))   # [-0.08, 0.09]
    v = 0.9 * np.array([0.2, 0.4]) + dw                                # [0.10, 0.45]
    np.testing.assert_allclose(opt.state[w]["v"].numpy(), v, rtol=1e-6)
    np.testing.assert_allclose(w.detach().numpy(), np.array([1.0, -2.0]) + dw + 0.9 * v, rtol=1e-6)


def test_at_a_constant_lr_it_equals_torch_nesterov_sgd_and_differs_when_the_lr_moves():
    torch.manual_seed(0)
    w0, grads = torch.randn(5), [torch.randn(5) for _ in range(4)]

    def run(make, lrs):
        w = torch.nn.Parameter(w0.clone())
        opt = make(w)
        for g, lr in zip(grads, lrs):
            opt.param_groups[0]["lr"] = lr
            w.grad = g.clone()
            opt.step()
        return w.detach()

    page = lambda w: R.PageNesterov([w], lr=0.1, momentum=0.9, weight_decay=0.01)  # noqa: E731
    sgd = lambda w: torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)  # noqa: E731
    torch.testing.assert_close(run(page, [0.1] * 4), run(sgd, [0.1] * 4))
    assert not torch.allclose(run(page, [0.1, 0.2, 0.3, 0.4]), run(sgd, [0.1, 0.2, 0.3, 0.4]))


def test_schedule_is_pages_piecewise_linear():
    steps = 10
    assert R.lr_at(0, steps) == 0.0
    assert R.lr_at(5 * steps, steps) == pytest.approx(0.4)
    assert R.lr_at(24 * steps, steps) == pytest.approx(0.0)
    assert R.lr_at(25, steps) == pytest.approx(0.4 * 2.5 / 5)
    assert R.lr_at(5 * steps + 19 * 5, steps) == pytest.approx(0.2)


def test_augmentation_parameter_ranges():
    c = R.draw_choices(20000, np.random.default_rng(0))
    for k in ("x0", "y0"):
        assert c[k].min() == 0 and c[k].max() == 8          # a crop anywhere in the 40x40 padded image
    for k in ("cx", "cy"):
        assert c[k].min() == 0 and c[k].max() == 24         # an 8x8 hole wholly inside the 32x32 crop
    assert 0.48 < c["flip"].mean() < 0.52


def test_augment_crops_flips_and_cuts_an_8x8_hole_of_zeros():
    img = torch.arange(3 * 40 * 40, dtype=torch.float32).view(1, 3, 40, 40) + 1  # no zero anywhere
    c = {"x0": torch.tensor([3]), "y0": torch.tensor([5]), "flip": torch.tensor([True]),
         "cx": torch.tensor([2]), "cy": torch.tensor([20])}
    out = R.augment(img, c)[0]
    expect = img[0, :, 5:37, 3:35].flip(-1).clone()
    expect[:, 20:28, 2:10] = 0
    torch.testing.assert_close(out, expect)
    assert int((out == 0).sum()) == 3 * 64


def test_block_orders_have_the_same_parameters_and_the_assignment_pools_first():
    page, assignment = R.Net(0.125, "page"), R.Net(0.125, "assignment")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(page) == count(assignment)
    assert count(R.Net(1.0)) == 6_573_120
    assert isinstance(assignment.body[1][1], torch.nn.MaxPool2d)
    assert isinstance(page.body[1][3], torch.nn.MaxPool2d)


@pytest.mark.e2e
def test_it_imports_nothing_of_the_project_but_the_data_arrays():
    tree = ast.parse((ROOT / "benchmarks" / "reference.py").read_text())
    project = {(n.module, tuple(a.name for a in n.names)) for n in ast.walk(tree)
               if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("helpers")}
    assert project == {("helpers.data", ("load_cifar10",)), ("helpers.errors", ("UserError",)),
                       ("helpers.provenance", ("machine",))}


@pytest.mark.e2e
def test_a_short_run_lowers_the_loss_and_writes_what_train_writes(tree, tmp_path):
    out = tmp_path / "ref"
    h = R.run(str(tree), str(out), width=0.125, seed=0, device="cpu", epochs=4, log=lambda s: None)
    losses = [e["train_loss"] for e in h["epochs"]]
    assert losses[-1] < losses[0]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["arm"] == "ref" and cfg["resolved"]["precision"] == "fp32" and cfg["width"] == 0.125
    saved = json.loads((out / "history.json").read_text())
    assert saved["final_test_acc"] == h["epochs"][-1]["test_acc"]
    assert len(saved["lr"]) == 4 * saved["steps_per_epoch"]


@pytest.mark.e2e
def test_an_interrupted_run_continues_to_the_same_history(tree, tmp_path, monkeypatch):
    whole = R.run(str(tree), str(tmp_path / "a"), width=0.125, device="cpu", epochs=2, log=lambda s: None)
    real = R.evaluate
    calls = {"n": 0}

    def stop_after_first(*a):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a)
    monkeypatch.setattr(R, "evaluate", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        R.run(str(tree), str(tmp_path / "b"), width=0.125, device="cpu", epochs=2, log=lambda s: None)
    monkeypatch.setattr(R, "evaluate", real)
    resumed = R.run(str(tree), str(tmp_path / "b"), width=0.125, device="cpu", epochs=2, log=lambda s: None)
    assert resumed["epochs"] == [{**e, "seconds": r["seconds"], "train_seconds": r["train_seconds"]}
                                 for e, r in zip(whole["epochs"], resumed["epochs"])]


def test_fewer_images_than_a_batch_is_one_line(class_tree, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        R.main(["--data-dir", str(class_tree), "--out", str(tmp_path / "r"), "--device", "cpu"])
    assert e.value.code == 2
    assert "fewer training images (200) than one batch (512)" in capsys.readouterr().err


# golden numbers from D. Page's own code (tests/page_golden.py) -------------------------------------
@pytest.mark.parametrize("order", ["page", "assignment"])
def test_the_reference_network_gives_his_logits(order):
    model = seeded(R.Net(WIDTH, order), order)
    for training, mode in ((True, "train"), (False, "eval")):
        np.testing.assert_allclose(logits(model, training), GOLDEN[f"logits_{order}_{mode}_mode"], rtol=0, atol=1e-12)


def test_three_of_his_training_steps():
    """His dawn.py optimiser (Nesterov with the LR inside the buffer, weight decay 5e-4 x 512, the
    LR schedule / 512, momentum 0.9) on a summed loss, three steps of 8 images at 2 steps an epoch."""
    model = seeded(R.Net(WIDTH, "page"), "page")
    opt, scaler = R.make_optimizer(model, None)
    lrs = R.epoch_lrs(0, 2)[:2] + R.epoch_lrs(1, 2)[:1]  # the first three steps of a 2-step epoch
    np.testing.assert_allclose([lr / R.HYP["batch_size"] for lr in lrs], GOLDEN["train_lrs_per_step"], rtol=1e-15)
    batches = [inputs(8, 20 + k) for k in range(3)]
    # the reference divides by the batch it sees (always 512 in a run); these batches hold 8
    total, _, seen = R.train_epoch(model, opt, scaler, batches, [lr * 8 / R.HYP["batch_size"] for lr in lrs], None)
    assert seen == 24
    assert float(total) == pytest.approx(sum(GOLDEN["train_summed_losses"]), rel=1e-6)  # summed in float32
    sums = [float(p.detach().sum()) for p in model.parameters()]
    np.testing.assert_allclose(sums, GOLDEN["weights_after_3_steps_sum"], rtol=0, atol=1e-10)
    named = dict(zip(GOLDEN["weights_after_3_steps"], [model.body[0][0].weight, model.body[5].res[1][1].weight,
                                                        model.body[8].weight]))
    for name, p in named.items():
        np.testing.assert_allclose(p.detach().numpy(), GOLDEN["weights_after_3_steps"][name], rtol=0, atol=1e-12)
    running = [float(m.running_mean.sum()) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    np.testing.assert_allclose(running, GOLDEN["bn_running_mean_after_3_steps_sum"], rtol=0, atol=1e-10)


def test_the_reference_augments_as_he_does():
    c = GOLDEN["augment_choices"]
    padded = R.preprocess(raw_images(), R.HYP["pad"]).double()
    out = R.augment(padded, {k: torch.tensor(v) for k, v in c.items()})
    np.testing.assert_allclose(out.numpy(), GOLDEN["augment_output"], rtol=0, atol=2e-6)


def test_a_new_network_starts_from_his_batchnorm_init():
    """His BatchNorm (torch_backend.py): eps 1e-5, momentum 0.1, weight_init 1.0, bias_init 0.0; the
    golden logits above overwrite the weights, so the initial values are pinned here."""
    for order in ("page", "assignment"):
        bns = [m for m in R.Net(WIDTH, order).modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert len(bns) == 8
        for bn in bns:
            assert (bn.eps, bn.momentum) == (1e-5, 0.1)
            assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(bn.bias, torch.zeros_like(bn.bias))
