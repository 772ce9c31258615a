"""Reading back what the package wrote: one reader, one line per missing or damaged file.

Run folders often live on a synced drive (Colab's ``DRIVE = True``), where a runtime that dies
mid-write can leave a file cut short. Every JSON file the package reads back (``config.json``,
``history.json``, ``lr_find.json``, the files under ``results/``) goes through :func:`read_json`,
so such a file costs the user one line naming it, never a traceback, and nothing is overwritten.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from .errors import UserError


class DamagedFile(UserError):
    """A file the package wrote cannot be read back: missing, cut short, or not what it should hold."""


def read_json(path: Path | str, what: str = "", keys: Iterable[str] = (), kind: type = dict) -> Any:
    """The JSON value in ``path``: a ``kind`` (dict or list) holding every name in ``keys``.

    ``what`` names the file for the user ("the run's settings"); a missing file, one that is
    not JSON (cut short) or one of the wrong structure raises :class:`DamagedFile` in one line.
    """
    path = Path(path)
    label = f"{path} ({what})" if what else str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DamagedFile(f"{label} is missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DamagedFile(f"{label} cannot be read ({getattr(e, 'strerror', None) or e})") from None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise DamagedFile(f"{label} is damaged: not valid JSON ({e.msg} at character {e.pos} of "
                          f"{len(text)}); it was probably cut short while being written") from None
    if not isinstance(value, kind):
        raise DamagedFile(f"{label} is damaged: it holds a JSON {type(value).__name__}, not a "
                          f"{'JSON object' if kind is dict else 'JSON list'}")
    missing = [k for k in keys if k not in value] if kind is dict else []
    if missing:
        raise DamagedFile(f"{label} is damaged: it lacks {', '.join(repr(k) for k in missing)}")
    return value
