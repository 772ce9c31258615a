"""The notebook: its saved source holds the assignment's settings, and it runs headless."""
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers.cli import main
from helpers.config import TrainConfig
from helpers.errors import UserError
from conftest import write_class_folders
from helpers.notebook import NOTEBOOK, error_line, inject, parameters_cell, strip_injected


def execute(nb):
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # raises on a failing cell
    return nb


ROOT = Path(__file__).parents[1]


def test_saved_parameters_are_the_assignments():
    """Run all cells as saved and you train the assignment's network, not a proxy."""
    scope = {}
    exec(parameters_cell(nbformat.read(NOTEBOOK, as_version=4)).source, scope)
    d = TrainConfig()
    assert (scope["WIDTH"], scope["EPOCHS"], scope["MAX_AT_EPOCH"], scope["BATCH_SIZE"]) == (1.0, 24, 5, 512)
    assert (scope["WIDTH"], scope["EPOCHS"], scope["MAX_AT_EPOCH"], scope["BATCH_SIZE"]) == (
        d.width, d.epochs, d.max_at_epoch, d.batch_size)
    assert scope["LR_MIN"] == scope["LR_MAX"] == d.lr_min == d.lr_max == "auto"
    assert (scope["LIMIT_TRAIN"], scope["LIMIT_TEST"], scope["QUICK"], scope["SEED"]) == (0, 0, False, d.seed)
    assert scope["LR_FIND_ITERS"] == d.lr_find_iters and scope["AUGMENT"] == d.augment
    assert scope["PRECISION"] == d.precision == "auto" and scope["DEVICE"] == d.device
    assert (scope["LABEL_SMOOTHING"], scope["TTA"], scope["EMA"]) == (d.label_smoothing, d.tta, d.ema) == (0, "none", 0)


def test_injected_parameters_are_never_saved(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    before = [c.source for c in nb.cells]
    inject(nb, {"WIDTH": 0.125, "OUT": "runs/x"})
    assert len(nb.cells) == len(before) + 1
    assert [c.source for c in strip_injected(nb).cells] == before
    with pytest.raises(UserError, match="not a notebook parameter: WIDHT"):
        inject(nb, {"WIDHT": 0.125})


def test_an_executed_notebook_is_a_new_file_unless_asked_to_write_in_place(tmp_path, monkeypatch, capsys):
    import nbclient

    from helpers import notebook

    ran = []
    monkeypatch.setattr(nbclient, "NotebookClient", lambda nb, **k: type("C", (), {
        "execute": lambda self, **kw: ran.append(nb)})())
    original = tmp_path / "nb.ipynb"
    original.write_bytes(NOTEBOOK.read_bytes())
    written = notebook.execute({"WIDTH": 0.125}, notebook=original)
    assert written == tmp_path / "nb.executed.ipynb" and written.is_file() and ran
    assert original.read_bytes() == NOTEBOOK.read_bytes()  # what the user has stays as it is
    assert notebook.execute({}, original, notebook=original) == original  # in place only when named

    asked = []
    monkeypatch.setattr(notebook, "execute", lambda params, output: asked.append(output) or Path("x"))
    assert main(["notebook"]) == 0 and main(["notebook", "--in-place"]) == 0 and asked == [None, NOTEBOOK]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["notebook", "--in-place", "--output", "o.ipynb"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--in-place" in err and "not allowed with" in err


def test_an_executed_notebook_keeps_each_progress_bar_in_its_last_state(tmp_path, monkeypatch):
    import nbclient

    from helpers import notebook

    def run(nb):  # what a kernel sends: every bar update a stream piece of its own
        pieces = [("stderr", "\repoch 1:   0%|"), ("stderr", "\repoch 1:  50%|#"), ("stderr", "\repoch 1: 100%|##\n"),
                  ("stdout", "epoch 1 acc 0.5\n"), ("stderr", "\repoch 2:   0%|"), ("stderr", "\repoch 2: 100%|##\n")]
        code = next(c for c in nb.cells if c.cell_type == "code")
        code.outputs = [nbformat.v4.new_output("stream", name=n, text=t) for n, t in pieces]

    monkeypatch.setattr(nbclient, "NotebookClient", lambda nb, **k: type("C", (), {
        "execute": lambda self, **kw: run(nb)})())
    written = notebook.execute({}, tmp_path / "out.ipynb")
    code = next(c for c in nbformat.read(written, as_version=4).cells if c.cell_type == "code")
    assert [(o.name, o.text) for o in code.outputs] == [
        ("stderr", "epoch 1: 100%|##\n"), ("stdout", "epoch 1 acc 0.5\n"), ("stderr", "epoch 2: 100%|##\n")]


def test_the_committed_notebooks_outputs_are_as_jupyter_shows_them():
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        streams = [o for o in cell.get("outputs", []) if o.output_type == "stream"]
        assert not [o for o in streams if re.search(r"\r[^\n]", o.text)], cell.source[:60]  # no overwritten text
        pairs = zip(cell.get("outputs", []), cell.get("outputs", [])[1:])
        assert not [a for a, b in pairs if a.output_type == b.output_type == "stream" and a.name == b.name]


@pytest.mark.slow
def test_notebook_runs_headless(class_tree, tmp_path):
    out = tmp_path / "nb.ipynb"
    assert main(["notebook", "--output", str(out), "--set", f"DATA_DIR={str(class_tree)!r}",
                 "--set", f"OUT={str(tmp_path / 'nb')!r}", "--set", "EPOCHS=2", "--set", "MAX_AT_EPOCH=1",
                 "--set", "BATCH_SIZE=32", "--set", "WIDTH=0.0625", "--set", "LR_FIND_ITERS=20",
                 "--set", "DEVICE='cpu'"]) == 0
    nb = nbformat.read(out, as_version=4)
    saved = nbformat.read(NOTEBOOK, as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in saved.cells]  # the overrides are not saved
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # augmentation, triangle, LR test, schedule, curves, misclassified, per-class, GradCAM (+ the
    # optional comparison's two figures once results/compare is committed)
    assert len(images) == 8 + 2 * (ROOT / "results" / "compare" / "summary.json").is_file()
    markdown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any("final test accuracy" in m for m in markdown)
    banner = next(o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    assert "width 0.0625" in banner and "a narrow proxy" in banner and "2 epochs" in banner
    for name in ("augmentation", "triangle", "lr_find", "schedule", "curves", "misclassified", "per_class",
                 "gradcam"):
        assert (tmp_path / "nb" / f"{name}.png").stat().st_size > 1000


@pytest.mark.slow
def test_notebook_continues_a_run_folder_with_a_checkpoint(class_tree, tmp_path, monkeypatch):
    """After a Colab disconnect: run all cells again with the same OUT, and training continues."""
    from conftest import fail_in_epoch

    folder = tmp_path / "drive-run"
    with monkeypatch.context() as m:
        fail_in_epoch(m, 2, KeyboardInterrupt())
        assert main(["train", "--data-dir", str(class_tree), "--out", str(folder), "--epochs", "2",
                     "--max-at-epoch", "1", "--width", "0.0625", "--batch-size", "32", "--lr-find-iters", "20",
                     "--no-progress", "--device", "cpu"]) == 130
    lr_find = (folder / "lr_find.json").read_text()
    nb = execute(inject(nbformat.read(NOTEBOOK, as_version=4),
                        {"DATA_DIR": str(class_tree), "OUT": str(folder), "BATCH_SIZE": 32, "DEVICE": "cpu",
                         "EPOCHS": 2, "MAX_AT_EPOCH": 1, "WIDTH": 0.0625, "LR_FIND_ITERS": 20}))  # the run's own
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert f"{folder} holds a checkpoint after epoch 1" in text and f"resuming {folder} after epoch 1" in text
    history = json.loads((folder / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert (folder / "lr_find.json").read_text() == lr_find  # the range test is read, not run again
    assert (folder / "gradcam.png").is_file()


@pytest.mark.slow
def test_quick_mode_runs_headless(class_tree, tmp_path):
    execute(inject(nbformat.read(NOTEBOOK, as_version=4),
                   {"DATA_DIR": str(class_tree), "OUT": str(tmp_path / "q"), "QUICK": True, "BATCH_SIZE": 32,
                    "DEVICE": "cpu", "AUGMENT": "albumentations"}))
    cfg = json.loads((tmp_path / "q-quick" / "config.json").read_text())  # QUICK: a folder of its own
    assert cfg["epochs"] == 2 and cfg["width"] == 0.0625 and cfg["augment"] == "albumentations"


def test_drive_outside_colab_is_one_clear_error():
    from helpers.notebook import drive_folder

    with pytest.raises(UserError, match="DRIVE = True needs Google Colab"):
        drive_folder("runs/x")


def test_committed_notebook_holds_no_machine_path():
    text = Path(NOTEBOOK).read_text()
    for needle in ("/work/", "/root/", "/home/", "/tmp/", "C:\\\\Users"):
        assert needle not in text, needle


@pytest.mark.slow
def test_papermill_quick_on_one_step_an_epoch_is_one_clear_error_and_trains_nothing(tmp_path):
    import papermill

    tree = write_class_folders(tmp_path / "small" / "cifar10", 600, 50)  # QUICK: 1 step of 512 an epoch
    out = tmp_path / "runs" / "pm"
    with pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                   parameters={"DATA_DIR": str(tree), "OUT": str(out), "QUICK": True, "DEVICE": "cpu"},
                                   cwd=str(NOTEBOOK.parent), progress_bar=False)
    assert e.value.ename == "UserError" and "the schedule needs at least one step to rise" in e.value.evalue
    assert e.value.traceback == [f"error: {e.value.evalue}"]  # the message, not a traceback
    folder = Path(f"{out}-quick")
    assert not (folder / "checkpoint.pt").exists() and not (folder / "config.json").exists()
    assert not out.exists()  # QUICK runs go to a folder of their own


@pytest.mark.slow
def test_papermill_runs_the_committed_notebook_quick(class_tree, tmp_path):
    import papermill

    out = tmp_path / "pm"
    nb = papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                    parameters={"DATA_DIR": str(class_tree), "OUT": str(out), "QUICK": True,
                                                "BATCH_SIZE": 32, "DEVICE": "cpu"},
                                    cwd=str(NOTEBOOK.parent), progress_bar=False)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    cfg = json.loads((Path(f"{out}-quick") / "config.json").read_text())
    assert cfg["epochs"] == 2 and cfg["width"] == 0.0625
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 8


def test_user_errors_render_as_one_line_in_ipython_and_colours_are_stripped():
    assert UserError("bad WIDTH")._render_traceback_() == ["error: bad WIDTH"]
    text = "Traceback\n\x1b[31mUserError\x1b[39m: x\n\x1b[0;31merror: --width must be a positive number\x1b[0m\n"
    assert error_line(text) == "--width must be a positive number"


@pytest.mark.slow
def test_headless_notebook_error_is_one_clean_line(capsys):
    assert main(["notebook", "--set", "WIDTH=abc", "--output", "/nonexistent/x.ipynb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "WARNING" not in err
    assert err.startswith("error: the notebook stopped at an error: --width must be a positive number")
