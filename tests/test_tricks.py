"""The opt-in extras: label smoothing, flip TTA and a weight average (EMA), each off by default."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import fail_in_epoch
from helpers.cli import main
from helpers.config import TrainConfig
from helpers.errors import UserError
from helpers.model import ResNet9
from helpers.train import Precision, classification_loss, evaluate, logits, make_ema

CPU = torch.device("cpu")


def test_smoothed_loss_is_the_formula():
    torch.manual_seed(0)
    out, y = torch.randn(6, 10), torch.randint(0, 10, (6,))
    logp = F.log_softmax(out, 1)
    plain = -logp[torch.arange(6), y].mean()
    expect = 0.8 * plain + 0.2 * (-logp.mean(1)).mean()  # (1 - s) CE + s x mean over classes of -log p
    torch.testing.assert_close(classification_loss(out, y, 0.2), expect)
    torch.testing.assert_close(classification_loss(out, y), plain)
    assert not torch.allclose(classification_loss(out, y, 0.2), plain)


@pytest.mark.slow
def test_flip_tta_of_a_mirror_symmetric_input_is_plain_evaluation_and_averages_otherwise():
    torch.manual_seed(0)
    model = ResNet9(width=0.125).eval()
    half = torch.randn(4, 3, 32, 16)
    sym = torch.cat([half, half.flip(3)], 3)  # equal to its mirror image
    y = torch.randint(0, 10, (4,))
    prec = Precision("cpu")
    assert evaluate(model, [(sym, y)], prec, "flip") == evaluate(model, [(sym, y)], prec)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(logits(model, x, "flip"), (model(x) + model(x.flip(3))) / 2)
        assert not torch.allclose(logits(model, x, "flip"), model(x))
        assert torch.equal(logits(model, x), model(x))  # without tta: the plain logits


def test_the_average_of_a_constant_model_is_that_model():
    torch.manual_seed(0)
    model = ResNet9(width=0.125)
    ema = make_ema(model, 0.9)
    for _ in range(5):
        ema.update_parameters(model)
    for (k, a), b in zip(model.state_dict().items(), ema.module.state_dict().values()):
        assert torch.equal(a, b), k
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    ema.update_parameters(model)  # one step of a changed model moves the average by (1 - decay)
    torch.testing.assert_close(next(ema.module.parameters()), next(model.parameters()) - 0.9)


def test_options_are_validated_in_one_line():
    for kw, msg in (({"label_smoothing": 1.0}, "--label-smoothing must be a number in"),
                    ({"tta": "five-crop"}, "--tta must be one of none, flip"), ({"ema": -0.1}, "--ema must be")):
        with pytest.raises(UserError, match=msg):
            TrainConfig(**kw).validate()


def _args(tree, out, *extra):
    return ["train", "--data-dir", str(tree), "--out", str(out), "--epochs", "2", "--max-at-epoch", "1",
            "--width", "0.0625", "--batch-size", "32", "--lr-find-iters", "20", "--no-progress", "--no-report",
            "--device", "cpu", *extra]


@pytest.mark.slow
@pytest.mark.e2e
def test_a_run_with_all_three_records_each_figure_and_resumes_bitwise(class_tree, tmp_path, monkeypatch):
    tricks = ["--label-smoothing", "0.2", "--tta", "flip", "--ema", "0.9"]
    assert main(_args(class_tree, tmp_path / "whole", *tricks)) == 0
    h = json.loads((tmp_path / "whole" / "history.json").read_text())
    row = h["epochs"][-1]
    assert {"test_acc", "test_acc_tta", "test_acc_ema", "test_acc_ema_tta"} <= set(row)
    assert h["headline"] == "test_acc_ema_tta" and h["final_test_acc"] == row["test_acc_ema_tta"]
    assert json.loads((tmp_path / "whole" / "lr_find.json").read_text())["settings"]["label_smoothing"] == 0.2
    with monkeypatch.context() as m:
        fail_in_epoch(m, 2, KeyboardInterrupt())
        assert main(_args(class_tree, tmp_path / "cut", *tricks)) == 130
    assert main(["train", "--resume", str(tmp_path / "cut"), "--no-progress"]) == 0
    a, b = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=False) for d in ("whole", "cut"))
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys() and all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    drop = lambda e: {k: v for k, v in e.items() if "seconds" not in k}  # noqa: E731
    assert [drop(e) for e in h["epochs"]] == \
        [drop(e) for e in json.loads((tmp_path / "cut" / "history.json").read_text())["epochs"]]


@pytest.mark.slow
@pytest.mark.e2e
def test_default_run_records_the_plain_accuracy_only(class_tree, tmp_path):
    assert main(_args(class_tree, tmp_path / "plain")) == 0
    h = json.loads((tmp_path / "plain" / "history.json").read_text())
    assert h["headline"] == "test_acc" and not any(k.endswith(("_tta", "_ema")) for k in h["epochs"][-1])
    assert torch.load(tmp_path / "plain" / "checkpoint.pt", weights_only=False)["ema"] is None
    assert np.isclose(h["final_test_acc"], h["epochs"][-1]["test_acc"])
