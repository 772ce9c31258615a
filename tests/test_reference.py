"""benchmarks/reference.py: Page's update, his schedule and augmentation, and a short run that learns."""
import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).parents[1]
from benchmarks import reference as R  # noqa: E402
from conftest import KnownPredictions, pretend_cpu, pretend_cuda_gpu, write_class_folders  # noqa: E402
from helpers.train import auto_precision  # noqa: E402
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


def test_a_draw_of_exactly_one_half_does_not_flip():
    """flip = draw < 0.5, as his FlipLR and albumentations decide: a draw of 0.5 keeps the image."""
    class Draws:  # a Generator whose every draw is the edge case
        def integers(self, low, high, n):
            return np.zeros(n, dtype=np.int64)

        def random(self, n):
            return np.full(n, 0.5)

    assert not R.draw_choices(3, Draws())["flip"].any()


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
    assert [m.out_channels for m in R.Net(0.25).modules() if isinstance(m, torch.nn.Conv2d)] == \
        [16, 32, 32, 32, 64, 128, 128, 128]  # a quarter of 64, 128, 256, 512
    assert isinstance(assignment.body[1][1], torch.nn.MaxPool2d)
    assert isinstance(page.body[1][3], torch.nn.MaxPool2d)


@pytest.mark.e2e
def test_it_imports_nothing_of_the_project_but_the_data_arrays():
    tree = ast.parse((ROOT / "benchmarks" / "reference.py").read_text())
    project = {(n.module, tuple(a.name for a in n.names)) for n in ast.walk(tree)
               if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("helpers")}
    assert project == {("helpers.data", ("load_cifar10",)), ("helpers.errors", ("UserError",)),
                       ("helpers.provenance", ("machine",)),
                       ("helpers.train", ("DTYPES", "auto_precision"))}  # the device's precision rule, no recipe


@pytest.mark.slow
@pytest.mark.e2e
def test_a_short_run_lowers_the_loss_and_writes_what_train_writes(tree, tmp_path):
    out = tmp_path / "ref"
    h = R.run(str(tree), str(out), width=0.125, seed=0, device="cpu", epochs=4, log=lambda s: None)
    losses = [e["train_loss"] for e in h["epochs"]]
    assert losses[-1] < losses[0]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["arm"] == "ref" and cfg["width"] == 0.125
    assert cfg["resolved"]["precision"] == auto_precision(torch.device("cpu"))  # the product's rule, recorded
    saved = json.loads((out / "history.json").read_text())
    assert saved["final_test_acc"] == h["epochs"][-1]["test_acc"]
    assert len(saved["lr"]) == 4 * saved["steps_per_epoch"]


@pytest.mark.slow
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
@pytest.mark.slow
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


# the run's wiring, on arrays in memory (fast: no files decoded) ---------------------------------
def _in_memory(monkeypatch, n_train: int = 1100, n_test: int = 100, batch: int = 512):
    """The run reads these arrays instead of a folder, at ``batch`` images a step (his 512 by default)."""
    from types import SimpleNamespace

    from conftest import synthetic_images
    from helpers.data import Split

    data = SimpleNamespace(train=Split(*synthetic_images(n_train, 0)), test=Split(*synthetic_images(n_test, 1)),
                           source="synthetic")
    monkeypatch.setattr(R, "load_cifar10", lambda *a, **k: data)
    monkeypatch.setitem(R.HYP, "batch_size", batch)
    return data


def _replay(data, width: float, seed: int, limit_train: int, epochs: int, order: str):
    """What the recipe does, step by step from its pieces: the run must come out the same."""
    keep = np.sort(np.random.default_rng(seed).permutation(len(data.train))[:limit_train])
    x, y = data.train.x[keep], torch.as_tensor(data.train.y[keep])
    padded = R.preprocess(x, 4)
    torch.manual_seed(seed)
    model = R.Net(width, order).to(memory_format=torch.channels_last)
    opt, scaler = R.make_optimizer(model, None)
    steps, rows = len(y) // R.HYP["batch_size"], []
    for e in range(epochs):
        total, correct, seen = R.train_epoch(model, opt, scaler, R.train_batches(padded, y, seed, e),
                                             R.epoch_lrs(e, steps, epochs, epochs / 2), None)
        xte = R.preprocess(data.test.x).contiguous(memory_format=torch.channels_last)
        rows.append((float(total) / seen, float(correct) / seen,
                     *R.evaluate(model, xte, torch.as_tensor(data.test.y), None)))
    return model, rows, steps


@pytest.mark.slow
def test_a_run_is_its_pieces_in_order_and_a_stopped_one_continues_to_the_same_history(tmp_path, monkeypatch):
    import itertools
    from types import SimpleNamespace

    data = _in_memory(monkeypatch, batch=64)  # fast; the recipe's 512 is pinned by the tests above
    ticks = itertools.count()  # a clock that reads 0.137 s later at each look: the epochs' times are known
    monkeypatch.setattr(R, "time", SimpleNamespace(perf_counter=lambda: next(ticks) * 0.137))
    h = R.run("unused", str(tmp_path / "runs" / "a"), width=0.0625, seed=3, order="assignment", device="cpu",
              precision="fp32", limit_train=80, epochs=2, log=lambda s: None)
    model, rows, steps = _replay(data, 0.0625, 3, 80, 2, "assignment")
    assert steps == 1 and h["steps_per_epoch"] == 1  # one step an epoch: each run here trains 2 steps
    assert [(e["epoch"], e["train_loss"], e["train_acc"], e["test_loss"], e["test_acc"]) for e in h["epochs"]] \
        == [(k + 1, *r) for k, r in enumerate(rows)]
    assert h["lr"] == R.epoch_lrs(0, 1, 2, 1.0) + R.epoch_lrs(1, 1, 2, 1.0) == [0.4, 0.0]  # the peak: epochs / 2
    assert h["momentum"] == [0.9] * 2 and [e["lr_last"] for e in h["epochs"]] == h["lr"]
    assert h["final_test_acc"] == rows[-1][3]
    assert [(e["train_seconds"], e["seconds"]) for e in h["epochs"]] == [(0.14, 0.27)] * 2
    assert h["total_seconds"] == 0.5  # 0.54, to a tenth
    assert all(0 <= e["train_seconds"] <= e["seconds"] < 60 for e in h["epochs"])
    assert all(isinstance(e[k], float) and e[k] == round(e[k], 2) for e in h["epochs"] for k in ("seconds",
                                                                                             "train_seconds"))
    saved = torch.load(tmp_path / "runs" / "a" / "checkpoint.pt", weights_only=False)
    assert saved["epoch"] == 2 and not (tmp_path / "runs" / "a" / "checkpoint.pt.tmp").exists()
    for k, v in model.state_dict().items():
        assert torch.equal(saved["model"][k], v), k
    assert json.loads((tmp_path / "runs" / "a" / "history.json").read_text()) == json.loads(json.dumps(h))
    config = json.loads((tmp_path / "runs" / "a" / "config.json").read_text())
    assert (config["arm"], config["seed"], config["max_at_epoch"], config["resolved"]["train_images"]) \
        == ("ref-assignment-order", 3, 1.0, 80)

    real, calls = R.evaluate, []

    def stop_in_epoch_2(*a):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a)
    monkeypatch.setattr(R, "evaluate", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        R.run("unused", str(tmp_path / "b"), width=0.0625, seed=3, order="assignment", device="cpu",
              precision="fp32", limit_train=80, epochs=2, log=lambda s: None)
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["epoch"] == 1
    assert len(json.loads((tmp_path / "b" / "history.json").read_text())["epochs"]) == 1  # written every epoch
    monkeypatch.setattr(R, "evaluate", real)
    said = []
    resumed = R.run("unused", str(tmp_path / "b"), width=0.0625, seed=3, order="assignment", device="cpu",
                    precision="fp32", limit_train=80, epochs=2, log=said.append)
    assert said[0] == f"resuming {tmp_path / 'b'} after epoch 1" and len(said) == 2
    strip = lambda hist: [{k: v for k, v in e.items() if "seconds" not in k} for e in hist["epochs"]]  # noqa: E731
    assert strip(resumed) == strip(h) and resumed["lr"] == h["lr"] and resumed["momentum"] == h["momentum"]


def test_a_run_without_epochs_is_the_recipes_24_with_the_peak_at_5(tmp_path, monkeypatch):
    _in_memory(monkeypatch, 512, 10)
    monkeypatch.setattr(R, "train_epoch", lambda *a: (torch.tensor(1.0), torch.tensor(1), 1))
    monkeypatch.setattr(R, "evaluate", lambda *a: (0.0, 0.0))
    h = R.run("unused", str(tmp_path), width=0.0625, device="cpu", log=lambda s: None)
    assert len(h["epochs"]) == 24 and h["lr"] == [lr for e in range(24) for lr in R.epoch_lrs(e, 1)]
    assert max(h["lr"]) == h["lr"][4] == 0.4


def test_fewer_images_than_a_batch_after_the_limit_is_one_line(tmp_path, monkeypatch):
    _in_memory(monkeypatch, batch=64)
    with pytest.raises(ValueError, match=r"fewer training images \(63\) than one batch \(64\)"):
        R.run("unused", str(tmp_path), width=0.0625, device="cpu", limit_train=63, log=lambda s: None)
    R.run("unused", str(tmp_path), width=0.0625, device="cpu", limit_train=64, epochs=1, log=lambda s: None)


def test_an_epochs_batches_are_reproducible_whole_and_keep_images_with_their_labels():
    n = 1100
    padded = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 40, 40).contiguous() + 1
    labels = torch.arange(n)
    batches = list(R.train_batches(padded, labels, 0, 0))
    assert [tuple(x.shape) for x, _ in batches] == [(512, 3, 32, 32)] * 2  # the partial last batch dropped
    seen = torch.cat([y for _, y in batches])
    assert len(set(seen.tolist())) == 1024
    for x, y in batches:  # each image is its index + 1 everywhere but its cutout (zeros)
        assert torch.equal(x.amax((1, 2, 3)), y.float() + 1)
        assert ((x == 0).sum((1, 2, 3)) == 3 * 64).all()
    order = np.random.default_rng([0, 0]).permutation(n)[:1024]
    assert seen.tolist() == order.tolist()
    again = torch.cat([y for _, y in R.train_batches(padded, labels, 0, 0)])
    assert torch.equal(seen, again)
    for other in ((0, 1), (1, 0)):
        assert not torch.equal(seen, torch.cat([y for _, y in R.train_batches(padded, labels, *other)]))
    # on a GPU every index of a batch must live with the images; torch's meta device stands in (it
    # refuses CPU tensors alike)
    on_meta = list(R.train_batches(padded.to("meta"), labels.to("meta"), 0, 0))
    assert [(x.device.type, y.device.type, tuple(x.shape)) for x, y in on_meta] == [("meta", "meta", (512, 3, 32, 32))] * 2


def test_evaluation_counts_by_hand_in_eval_mode_and_restores_training_mode():
    class Known(torch.nn.Module):
        def forward(self, x):
            assert not self.training
            return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 10).float() * 50

    x = torch.zeros(1500, 3, 2, 2)
    x[:, 0, 0, 0] = torch.arange(1500) % 10
    y = torch.arange(1500) % 10
    y[:300] = (y[:300] + 1) % 10  # 300 of 1,500 wrong, spread over the evaluation batches
    model = Known().train()
    loss, acc = R.evaluate(model, x, y, None)
    assert acc == 1200 / 1500 and model.training
    assert loss == pytest.approx(300 * 50 / 1500, rel=1e-5)  # a wrong one costs 50, a right one ~0


@pytest.mark.parametrize("device,hardware,auto", [("cpu", False, None), ("cpu", True, torch.bfloat16),
                                                   ("cuda", False, torch.float16), ("cuda", True, torch.bfloat16)])
def test_precision_follows_the_products_rule_on_every_device(monkeypatch, device, hardware, auto):
    """bf16 where the device computes it (a GPU from compute capability 8, a CPU with AVX-512 BF16),
    fp16 on other GPUs, fp32 elsewhere; an explicit choice is taken as it is."""
    pretend_cpu(monkeypatch, hardware)
    pretend_cuda_gpu(monkeypatch, (8, 0) if hardware else (7, 5))
    dev = torch.device(device)
    assert R.autocast_dtype(dev, "auto") is auto
    assert R.autocast_dtype(dev, "fp32") is None
    assert R.autocast_dtype(dev, "bf16") is torch.bfloat16 and R.autocast_dtype(dev, "fp16") is torch.float16


def test_preprocess_normalises_with_his_mean_and_std_then_reflects():
    x = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    x[0, 0, 0] = [255, 0, 10]
    x[1, :, :, 1] = 7
    t = R.preprocess(x)
    assert t.shape == (2, 3, 32, 32) and t.dtype == torch.float32
    mean, std = torch.tensor(R.MEAN), torch.tensor(R.STD)
    torch.testing.assert_close(t[0, :, 0, 0], (torch.tensor([255.0, 0, 10]) - mean) / std)
    torch.testing.assert_close(t[1, 1, 5, 5], (7 - mean[1]) / std[1])
    p = R.preprocess(x, 4)
    assert p.shape == (2, 3, 40, 40)
    torch.testing.assert_close(p[:, :, 4:36, 4:36], t)
    torch.testing.assert_close(p[0, :, 4, 0], t[0, :, 0, 4])  # reflect (no edge repeat): column 4 <- 4 away


def test_an_epochs_lrs_are_his_schedule_read_one_step_on():
    for e in (0, 4, 10, 23):
        assert R.epoch_lrs(e, 2) == [R.lr_at(2 * e + 1, 2), R.lr_at(2 * e + 2, 2)]
    assert R.epoch_lrs(23, 2)[-1] == 0.0 and R.epoch_lrs(4, 2)[-1] == pytest.approx(0.4)
    assert R.epoch_lrs(0, 2, 4, 1.0) == [0.2, 0.4] and R.epoch_lrs(2, 2, 4, 1.0) == pytest.approx([0.2, 0.4 / 3])
    assert R.epoch_lrs(3, 2, 4, 1.0) == pytest.approx([0.4 / 6, 0.0], abs=1e-12)


def test_a_step_counts_its_images_and_right_answers_by_hand():
    x = torch.zeros(24, 3, 2, 2)
    x[:, 0, 0, 0] = torch.arange(24) % 10
    y = torch.arange(24) % 10
    y[[0, 9, 17]] = (y[[0, 9, 17]] + 1) % 10  # 3 wrong: one in each batch of 8
    model = KnownPredictions()
    opt, scaler = R.make_optimizer(model, None)
    total, correct, seen = R.train_epoch(model, opt, scaler, [(x[i:i + 8], y[i:i + 8]) for i in (0, 8, 16)],
                                         [0.0] * 3, None)
    assert (int(correct), seen) == (21, 24) and float(total) == pytest.approx(3 * 50, rel=1e-4)


@pytest.mark.parametrize("dtype", [None, torch.bfloat16, torch.float16])
def test_a_step_runs_the_network_under_autocast_and_the_loss_in_fp32(dtype, monkeypatch):
    model = R.Net(0.0625, "page")
    seen = []
    model.body[0][0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    real = R.F.cross_entropy
    monkeypatch.setattr(R.F, "cross_entropy", lambda out, *a, **k: seen.append(out.dtype) or real(out, *a, **k))
    opt, scaler = R.make_optimizer(model, dtype)
    R.train_epoch(model, opt, scaler, [(torch.randn(4, 3, 32, 32), torch.arange(4))], [0.1], dtype)
    assert seen == [dtype or torch.float32, torch.float32]


def test_the_grad_scaler_is_on_for_fp16_only():
    model = R.Net(0.0625, "page")
    for dtype, on in ((None, False), (torch.bfloat16, False), (torch.float16, True)):
        opt, scaler = R.make_optimizer(model, dtype)
        assert scaler.is_enabled() is on
        assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["weight_decay"] == 5e-4 * 512


def test_the_command_line_passes_each_option_to_the_run(tmp_path, monkeypatch, capsys):
    got = []
    monkeypatch.setattr(R, "run", lambda *a: got.append(a) or {"final_test_acc": 0.9123})
    assert R.main(["--data-dir", "d", "--out", "o", "--width", "0.5", "--seed", "3", "--block-order", "assignment",
                   "--device", "cpu", "--precision", "bf16", "--limit-train", "80", "--epochs", "2"]) == 0
    assert got == [("d", "o", 0.5, 3, "assignment", "cpu", "bf16", 80, 2)]
    assert "final test accuracy: 91.23%" in capsys.readouterr().out
    assert R.main(["--data-dir", "d", "--out", "o"]) == 0
    assert got[-1] == ("d", "o", 1.0, 0, "page", "auto", "auto", 0, None)
    for width in ("0", "-1"):
        with pytest.raises(SystemExit) as e:
            R.main(["--data-dir", "d", "--out", "o", "--width", width])
        assert e.value.code == 2 and "--width must be a positive number" in capsys.readouterr().err
    assert len(got) == 2


class Stop(Exception):
    """Ends a run at the call a test is asking about."""


@pytest.mark.slow
def test_a_run_picks_its_device_and_precision_and_loads_its_folder_without_downloading(tmp_path, monkeypatch):
    data = _in_memory(monkeypatch, batch=64)
    loads, asked = [], []
    monkeypatch.setattr(R, "load_cifar10", lambda *a, **k: loads.append((a, k)) or data)

    def choice(dev, precision):
        asked.append((dev, precision))
        raise Stop
    with monkeypatch.context() as m:
        m.setattr(R, "autocast_dtype", choice)
        m.setattr(R, "make_optimizer", choice)  # a run that did not ask stops here, before it trains
        m.setattr(torch.cuda, "is_available", lambda: False)
        with pytest.raises(Stop):
            R.run("somewhere", str(tmp_path / "x"))
        m.setattr(torch.cuda, "is_available", lambda: True)
        for kw in ({}, {"device": "cpu", "precision": "fp16"}):
            with pytest.raises(Stop):
                R.run("somewhere", str(tmp_path / "x"), **kw)
    assert asked == [(torch.device("cpu"), "auto"), (torch.device("cuda"), "auto"), (torch.device("cpu"), "fp16")]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(R, "autocast_dtype", lambda dev, precision: torch.float16)  # as a T4 would
    passed, train_epoch, evaluate = [], R.train_epoch, R.evaluate
    nhwc = lambda model: all(w.is_contiguous(memory_format=torch.channels_last) for w in model.parameters() if w.dim() == 4)
    monkeypatch.setattr(R, "train_epoch", lambda *a: passed.append(("train", a[-1], nhwc(a[0]))) or train_epoch(*a))
    monkeypatch.setattr(R, "evaluate", lambda *a: passed.append(("test", a[-1])) or evaluate(*a))
    log = []
    R.run("somewhere", str(tmp_path / "fp16"), width=0.0625, limit_train=64, epochs=1, log=log.append)
    assert loads[-1] == (("somewhere",), {"download": False, "log": log.append})
    config = json.loads((tmp_path / "fp16" / "config.json").read_text())
    assert config["resolved"]["precision"] == "fp16 + GradScaler"
    saved = torch.load(tmp_path / "fp16" / "checkpoint.pt", weights_only=False)
    assert "scale" in saved["scaler"]  # it scaled
    # trained (in channels_last, as his network ran) and evaluated in half precision
    assert passed == [("train", torch.float16, True), ("test", torch.float16)]
    saved["scaler"]["scale"] = 1024.0  # a scale the run could not reach on its own in one more epoch
    torch.save(saved, tmp_path / "fp16" / "checkpoint.pt")
    R.run("somewhere", str(tmp_path / "fp16"), width=0.0625, limit_train=64, epochs=2, log=log.append)
    assert log[-2].startswith("resuming") and passed[-2:] == [("train", torch.float16, True), ("test", torch.float16)]
    assert torch.load(tmp_path / "fp16" / "checkpoint.pt", weights_only=False)["scaler"]["scale"] == 1024.0


def test_a_run_by_default_is_his_full_width_network_from_seed_0(tmp_path, monkeypatch):
    _in_memory(monkeypatch, batch=64)
    made, seeds = [], []

    def net(*a):
        made.append(a)
        raise Stop
    monkeypatch.setattr(R, "Net", net)
    monkeypatch.setattr(torch, "manual_seed", seeds.append)
    with pytest.raises(Stop):
        R.run("unused", str(tmp_path), device="cpu", log=lambda s: None)
    assert made == [(1.0, "page")] and seeds == [0]


def test_his_network_by_default_full_width_pooling_after_batchnorm_and_never_without_channels():
    full = R.Net()
    assert sum(p.numel() for p in full.parameters()) == 6_573_120
    assert [type(m).__name__ for m in full.body[1]] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert R.Net(0.01).body[0][0].out_channels == 1  # round(64 x 0.01) = 1: at least one, not more
