"""Every file the package reads back goes through one reader: a missing or damaged file is one
line naming it, never a traceback, and nothing is overwritten. Also: out of GPU memory is one
line, and a run says what it is about to run before anything slow."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import pretend_cpu, write_class_folders
from helpers.cli import main
from helpers.config import TrainConfig
from helpers.files import DamagedFile, read_json

DAMAGES = {
    "truncated": lambda text: text[: len(text) // 2],
    "not JSON": lambda text: "<html>Drive: file not available</html>",
    "wrong structure": lambda text: "[1, 2, 3]",
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_the_reader_names_the_file_in_one_line(tmp_path, damage):
    path = tmp_path / "history.json"
    path.write_text(DAMAGES[damage](json.dumps({"epochs": [], "lr": [0.1] * 50})))
    with pytest.raises(DamagedFile) as e:
        read_json(path, "the run's history", keys=("epochs",))
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DamagedFile, match="lacks 'lr'"):
        read_json(tmp_path / "ok.json", keys=("lr",)) if (tmp_path / "ok.json").write_text('{"epochs": []}') else None
    with pytest.raises(DamagedFile, match="is missing"):
        read_json(tmp_path / "none.json")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """A finished tiny run with a range test (auto LRs), and its data."""
    root = tmp_path_factory.mktemp("finished")
    tree = write_class_folders(root / "c" / "cifar10", 96, 40)
    out = root / "run"
    assert main(["train", "--data-dir", str(tree), "--out", str(out), "--epochs", "2", "--max-at-epoch", "1",
                 "--width", "0.0625", "--batch-size", "32", "--lr-find-iters", "20", "--no-progress",
                 "--device", "cpu", "--no-report"]) == 0
    return tree, out


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("name", ["config.json", "history.json", "lr_find.json"])
def test_report_on_a_damaged_run_file_is_one_line_and_changes_nothing(finished, tmp_path, capsys, name, damage):
    tree, out = finished
    run = tmp_path / "run"
    shutil.copytree(out, run)
    path = run / name
    path.write_text(DAMAGES[damage](path.read_text()))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["report", str(run), "--data-dir", str(tree), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(path) in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_results_file_is_one_line_naming_it(tmp_path, capsys, damage):
    root = Path(__file__).parents[1]
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    readme = tmp_path / "README.md"
    shutil.copy(root / "README.md", readme)
    path = results / "ladder" / "cpu.json"
    path.write_text(DAMAGES[damage](path.read_text()))
    before = readme.read_bytes()
    from benchmarks.render import main as render

    assert render(["--results", str(results), "--doc", str(readme), "--assets", str(tmp_path / "assets")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    assert readme.read_bytes() == before and not (tmp_path / "assets").exists()  # no figure drawn either


@pytest.mark.parametrize("damage", DAMAGES)
def test_the_notebooks_run_object_names_a_damaged_range_test(finished, tmp_path, damage):
    from helpers.run import Run

    tree, out = finished
    folder = tmp_path / "nb"
    folder.mkdir()
    path = folder / "lr_find.json"
    path.write_text(DAMAGES[damage]((out / "lr_find.json").read_text()))
    run = Run.open(TrainConfig(data_dir=str(tree), out=str(folder), epochs=2, max_at_epoch=1, batch_size=32,
                               width=0.0625, lr_find_iters=20, device="cpu", progress=False), log=lambda _: None)
    with pytest.raises(DamagedFile, match=r"delete it and run again \(in the notebook: this cell\)") as e:
        run.range_test()
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert path.read_text() == DAMAGES[damage]((out / "lr_find.json").read_text())


def test_a_damaged_config_json_in_the_notebooks_banner_is_one_line(finished, tmp_path):
    from helpers.report import run_banner

    _, out = finished
    folder = tmp_path / "nb"
    shutil.copytree(out, folder)
    (folder / "config.json").write_text('{"epochs": "twenty-four"')
    with pytest.raises(DamagedFile, match="config.json"):
        run_banner(TrainConfig(), folder)


# out of GPU memory ---------------------------------------------------------------------------------
@pytest.mark.parametrize("epoch", [1, 2])
def test_out_of_memory_in_training_is_one_line_naming_what_lowers_it(finished, tmp_path, monkeypatch, capsys, epoch):
    from conftest import fail_in_epoch

    tree, _ = finished
    fail_in_epoch(monkeypatch, epoch, torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert main(["train", "--data-dir", str(tree), "--out", str(tmp_path / "r"), "--epochs", "2", "--max-at-epoch",
                 "1", "--width", "0.0625", "--batch-size", "32", "--lr-min", "0.05", "--lr-max", "0.4",
                 "--no-progress", "--device", "cpu", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: out of GPU memory on ")
    assert "batch size 32, width 0.0625" in err and "--batch-size" in err and "--width" in err
    assert err.rstrip().endswith("the GPU of other processes; no epoch had finished, so no checkpoint was written"
                                 if epoch == 1 else
                                 f"the GPU of other processes; the last good checkpoint (epoch 1) stays in "
                                 f"{tmp_path / 'r'} (a run continues only with its own settings: lower them in a "
                                 "new run folder)")


def test_out_of_memory_in_the_range_test_is_one_line(finished, tmp_path, monkeypatch, capsys):
    import helpers.lr_finder as lr_finder

    tree, _ = finished

    def oom(*a, **k):  # what the range test's first step does on a GPU too small for it
        raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
    monkeypatch.setattr(lr_finder, "range_test", oom)
    assert main(["lr-find", "--data-dir", str(tree), "--out", str(tmp_path / "f"), "--batch-size", "32",
                 "--width", "0.0625", "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out of GPU memory" in err and "BATCH_SIZE or WIDTH in the notebook" in err


# what runs, said first ----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_run_says_what_it_runs_before_the_range_test(finished, tmp_path, capsys, monkeypatch):
    pretend_cpu(monkeypatch, avx512_bf16=False)  # auto is fp32 there, and no faster choice is named
    tree, _ = finished
    out = tmp_path / "r"
    assert main(["train", "--data-dir", str(tree), "--out", str(out), "--epochs", "2", "--max-at-epoch", "1",
                 "--width", "0.5", "--batch-size", "32", "--lr-find-iters", "20", "--no-progress",
                 "--device", "cpu", "--no-report"]) == 0
    lines = capsys.readouterr().out.splitlines()
    first = lines[:lines.index(next(ln for ln in lines if ln.startswith("LR range test")))]
    text = "\n".join(first)
    assert "device: CPU (" in text and "precision fp32" in text
    assert "network: ResNet-9, width 0.5 (" in text and "parameters)" in text
    assert f"class folders in {tree}" in text and "96 training / 40 test images" in text, text
    assert f"run folder: {out}" in text
    assert "on this CPU an epoch takes about" in text and "--width 0.125" in text  # above the proxies
    assert "bf16" not in text and "emulates" not in text
    resolved = json.loads((out / "config.json").read_text())["resolved"]  # what its numbers depend on
    assert resolved["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and resolved["cpu_model"]
    assert resolved["cpu_threads"] == torch.get_num_threads() and resolved["versions"]["torch"]


