"""The notebook runs top to bottom, headless, in a quick configuration on small data."""
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "superconvergence_resnet9.ipynb"


def with_parameters(nb, **params):
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n# injected by the test\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
    return nb


def test_notebook_runs_headless(class_tree, tmp_path):
    nb = with_parameters(nbformat.read(NOTEBOOK, as_version=4), DATA_DIR=str(class_tree), OUT=str(tmp_path / "nb"),
                         EPOCHS=2, MAX_AT_EPOCH=1, BATCH_SIZE=32, WIDTH=0.0625, LR_FIND_ITERS=20, DEVICE="cpu")
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # raises on any failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 8  # augmentation, triangle, LR test, schedule, curves, misclassified, per-class, GradCAM
    assert "final test accuracy" in nb.cells[-1].outputs[0]["data"]["text/markdown"]
    for name in ("augmentation", "triangle", "lr_find", "schedule", "curves", "misclassified", "per_class",
                 "gradcam"):
        assert (tmp_path / "nb" / f"{name}.png").stat().st_size > 1000


def test_quick_mode_runs_headless(class_tree, tmp_path):
    nb = with_parameters(nbformat.read(NOTEBOOK, as_version=4), DATA_DIR=str(class_tree), OUT=str(tmp_path / "q"),
                         QUICK=True, BATCH_SIZE=32, DEVICE="cpu", AUGMENT="albumentations")
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    import json
    cfg = json.loads((tmp_path / "q" / "config.json").read_text())
    assert cfg["epochs"] == 2 and cfg["width"] == 0.0625 and cfg["augment"] == "albumentations"


def test_committed_notebook_holds_no_machine_path():
    text = NOTEBOOK.read_text()
    for needle in ("/work/", "/root/", "/home/", "/tmp/", "C:\\\\Users"):
        assert needle not in text, needle
