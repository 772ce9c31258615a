import numpy as np
import pytest
import torch

from helpers.cli import main
from helpers.model import ResNet9, count_parameters, summary_text
from page_golden import GOLDEN, WIDTH, logits, seeded


def test_parameter_count_matches_assignment():
    assert count_parameters(ResNet9()) == 6_573_120


def test_stage_shapes_32_16_8_4_1():
    m = ResNet9().eval()
    x = torch.randn(2, 3, 32, 32)
    shapes = []
    for stage in (m.prep, m.layer1, m.layer2, m.layer3, m.pool):
        x = stage(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 1, 1)]
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_width_scales_channels_and_keeps_maps():
    m = ResNet9(width=0.125).eval()
    assert m.layer3(m.layer2(m.layer1(m.prep(torch.randn(1, 3, 32, 32))))).shape == (1, 64, 4, 4)
    assert count_parameters(m) < count_parameters(ResNet9()) / 50


@pytest.mark.slow
def test_logits_scaled_and_softmax_in_prediction():
    torch.manual_seed(0)
    m = ResNet9(width=0.125, logit_scale=0.125).eval()
    ref = ResNet9(width=0.125, logit_scale=1.0).eval()
    ref.load_state_dict(m.state_dict())
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(m(x), ref(x) * 0.125, atol=1e-6)
    p = m.predict_proba(x)
    assert torch.allclose(p.sum(1), torch.ones(4), atol=1e-5) and (p >= 0).all()


def test_summary_shows_params_and_leaves_batchnorm_stats_alone():
    m = ResNet9()
    before = m.prep[1].running_mean.clone()
    text = summary_text(m)
    assert "6,573,120" in text and "[-1, 256, 16, 16]" in text
    assert torch.equal(before, m.prep[1].running_mean) and all(x.training for x in m.modules())


def test_the_summary_runs_on_the_cpu_even_where_a_gpu_is_visible(monkeypatch):
    """torchsummary makes its input on CUDA unless told "cpu"; the summarised copy is on the CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    model = ResNet9(width=0.0625)
    assert f"Total params: {count_parameters(model):,}" in summary_text(model)


def test_page_block_order_pools_after_bn_relu_with_the_same_parameters_and_shapes():
    page, ours = ResNet9(block_order="page").eval(), ResNet9().eval()
    assert count_parameters(page) == count_parameters(ours) == 6_573_120
    assert [type(m).__name__ for m in ours.layer1[0]] == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    assert [type(m).__name__ for m in page.layer1[0]] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert [type(m).__name__ for m in page.prep] == ["Conv2d", "BatchNorm2d", "ReLU"]  # no pool: unchanged
    assert page.layer3(page.layer2(page.layer1(page.prep(torch.randn(1, 3, 32, 32))))).shape == (1, 512, 4, 4)


def test_block_order_reaches_the_model_from_the_config_and_the_command_line():
    import pytest

    from helpers.cli import _config, build_parser
    from helpers.config import TrainConfig
    from helpers.errors import UserError
    from helpers.model import build_model

    cfg = _config(build_parser().parse_args(["train", "--block-order", "page", "--width", "0.125"]))
    assert cfg.block_order == "page"
    assert type(build_model(cfg, torch.device("cpu")).layer2[3]).__name__ == "MaxPool2d"
    with pytest.raises(UserError, match="--block-order must be one of assignment, page"):
        TrainConfig(block_order="pool-last").validate()


# golden numbers from D. Page's own code (tests/page_golden.py) -------------------------------------
@pytest.mark.parametrize("order", ["page", "assignment"])
def test_our_network_is_his_network(order):
    """helpers.model.ResNet9 in either block order computes what his net() computes: the layers,
    their order, the residual additions, BN's defaults and the logit scale 0.125."""
    model = seeded(ResNet9(width=WIDTH, block_order=order), order)
    for training, mode in ((True, "train"), (False, "eval")):
        np.testing.assert_allclose(logits(model, training), GOLDEN[f"logits_{order}_{mode}_mode"], rtol=0, atol=1e-12)


def test_the_runs_model_takes_its_settings_and_seed_and_every_generator_is_seeded():
    import random

    from helpers.config import TrainConfig
    from helpers.model import build_model, seed_everything

    cfg = TrainConfig(width=0.0625, logit_scale=0.5, block_order="page", seed=4)
    a, b = build_model(cfg, torch.device("cpu")), build_model(cfg, torch.device("cpu"))
    assert (a.width, a.logit_scale, a.prep[0].weight.is_contiguous(memory_format=torch.channels_last)) == \
        (0.0625, 0.5, True)
    assert isinstance(a.layer2[1], torch.nn.BatchNorm2d) and isinstance(a.layer2[3], torch.nn.MaxPool2d)  # page order
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    draws = []
    for _ in range(2):
        seed_everything(7)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]


def test_a_block_pools_only_when_asked_and_before_bn_relu_unless_in_pages_order():
    from helpers.model import conv_bn

    names = lambda block: [type(m).__name__ for m in block]  # noqa: E731
    assert names(conv_bn(3, 8)) == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert names(conv_bn(3, 8, True)) == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    assert names(conv_bn(3, 8, True, "page")) == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]


def test_every_stage_keeps_at_least_one_channel():
    from helpers.model import channels

    assert channels(1 / 64) == (1, 2, 4, 8) and channels(1 / 256) == (1, 1, 1, 2) and channels(1) == (64, 128, 256, 512)


def test_a_width_with_too_few_channels_is_refused(capsys):
    assert main(["train", "--width", "0.001", "--data-dir", "nowhere"]) == 2
    assert "leaves the first layer fewer than 4 channels" in capsys.readouterr().err
    from helpers.config import MIN_WIDTH
    from helpers.model import channels

    assert min(channels(MIN_WIDTH)) >= 4 and min(channels(MIN_WIDTH * 0.99)) < 4


def test_summary_is_of_a_cpu_copy(monkeypatch):
    import torchsummary

    from helpers.model import ResNet9, summary_text

    seen = {}
    monkeypatch.setattr(torchsummary, "summary", lambda m, size, device: seen.update(m=m, device=device))
    model = ResNet9(width=0.125)
    summary_text(model)
    assert seen["device"] == "cpu" and seen["m"] is not model and not seen["m"].training and model.training
