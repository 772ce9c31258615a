"""The notebook's own code: run it headless with some parameters changed, without saving the
change, and keep its run folder on Google Drive in Colab (:func:`drive_folder`).

    python -m helpers notebook --set WIDTH=0.125 --set OUT='"runs/nb-w8"' [--output PATH | --in-place]

The executed notebook is written to a new file beside it (``NAME.executed.ipynb``), as Jupyter's
``nbconvert --execute`` does, unless ``--output`` names another or ``--in-place`` asks to write
over the notebook itself.

The overrides go into a cell of their own, inserted after the cell tagged ``parameters``
(as papermill does) and removed again before the notebook is written: the saved source
always holds the assignment's values, while the saved outputs are the overridden run's
(its banner cell prints that run's settings).
"""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path
from typing import Any

from .errors import UserError

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "superconvergence_resnet9.ipynb"
INJECTED = "injected-parameters"


def drive_folder(out: str, mount_point: str = "/content/drive") -> str:
    """The notebook's ``DRIVE = True``: ``out`` on Google Drive (mounted on first use), so a Colab
    disconnect loses nothing."""
    import sys

    if "google.colab" not in sys.modules:
        raise UserError("DRIVE = True needs Google Colab (it mounts Google Drive); set DRIVE = False here")
    from google.colab import drive  # type: ignore[import-not-found]

    drive.mount(mount_point)
    return str(Path(mount_point) / "MyDrive" / out)


def parameters_cell(nb):
    try:
        return next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    except StopIteration:
        raise UserError("the notebook has no cell tagged 'parameters'") from None


def parameter_names(nb) -> set[str]:
    tree = ast.parse(parameters_cell(nb).source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)}


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs, VALUE a Python literal (a bare word is taken as a string)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise UserError(f"--set expects NAME=VALUE, got {item!r}")
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[name] = value
    return out


def inject(nb, params: dict[str, Any]):
    """Insert a cell assigning ``params`` after the parameters cell; unknown names are refused."""
    import nbformat

    unknown = sorted(set(params) - parameter_names(nb))
    if unknown:
        raise UserError(f"not a notebook parameter: {', '.join(unknown)}; "
                        f"use one of {', '.join(sorted(parameter_names(nb)))}")
    cell = nbformat.v4.new_code_cell("# injected at execution time, not saved\n" +
                                     "\n".join(f"{k} = {v!r}" for k, v in params.items()))
    cell.metadata["tags"] = [INJECTED]
    nb.cells.insert(nb.cells.index(parameters_cell(nb)) + 1, cell)
    return nb


def strip_injected(nb):
    nb.cells = [c for c in nb.cells if INJECTED not in c.metadata.get("tags", [])]
    return nb


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def error_line(text: str) -> str:
    """The last line of a cell's error, without terminal colours or a leading ``error:``
    (a UserError renders as that one line; anything else ends with ``Name: message``)."""
    lines = [line.strip() for line in ANSI.sub("", text).splitlines() if line.strip()]
    last = lines[-1] if lines else "unknown error"
    return last[len("error: "):] if last.startswith("error: ") else last


def executed_path(notebook: Path) -> Path:
    """Where an executed copy goes by default: beside the notebook, never over it."""
    return Path(notebook).with_suffix(".executed.ipynb")


def execute(params: dict[str, Any], output: Path | None = None, notebook: Path = NOTEBOOK,
            timeout: int | None = None) -> Path:
    """Execute ``notebook`` with ``params`` injected; write it (sources unchanged) to ``output``
    (default :func:`executed_path`; ``notebook`` itself writes it in place)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = inject(nbformat.read(notebook, as_version=4), params)
    try:  # the kernel's own log (e.g. its transport warning) is not the user's business: stderr muted
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(Path(notebook).parent)}}).execute(
                           stderr=subprocess.DEVNULL)
    except CellExecutionError as e:  # the saved notebook stays as it was
        raise UserError(f"the notebook stopped at an error: {error_line(str(e))}; nothing was written") from None
    output = Path(output or executed_path(notebook))
    nbformat.write(coalesce_streams(strip_injected(nb)), output)
    return output


def coalesce_streams(nb):
    """Each run of stdout or stderr pieces as one output, its progress bars in their last state, as
    Jupyter shows them: a kernel sends every update of a bar as a piece of its own (thousands in a
    long run), which nbclient keeps and GitHub would render one line each. nbconvert's preprocessor
    (Jupyter's own, installed with it) does this for ``jupyter nbconvert`` too."""
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    return CoalesceStreamsPreprocessor().preprocess(nb, {})[0]
