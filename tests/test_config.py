"""helpers.config: the settings, their validation (one line naming the option, what it must be and
the value) and a run's settings read back."""
import pytest

from helpers.config import TrainConfig, read_record


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


def test_a_runs_settings_read_back_and_a_damaged_one_is_one_line(tmp_path):
    from helpers.files import DamagedFile

    cfg = TrainConfig(width=0.25, lr_min=0.01, lr_max=0.4, seed=7)
    path = tmp_path / "config.json"
    path.write_text(__import__("json").dumps(cfg.to_dict()))
    assert TrainConfig.read(path) == cfg
    assert read_record(path) == (cfg, {})  # a record written before the run resolved anything
    resolved = {"device": "cuda", "precision": "fp16", "train_images": 50000}
    path.write_text(__import__("json").dumps({**cfg.to_dict(), "resolved": resolved}))
    assert read_record(path) == (cfg, resolved)
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
