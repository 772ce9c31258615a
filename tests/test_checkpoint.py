"""helpers.checkpoint: atomic writes, RNG states, and the run folder's lock."""
from __future__ import annotations

import pytest

from helpers import checkpoint as ckpt


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "history.json"
    ckpt.atomic_write_text("old", path)

    def fail(f):
        f.write(b"half a fi")
        raise OSError("disk full")

    with pytest.raises(OSError):
        ckpt._atomic_write(path, fail)
    assert path.read_text() == "old"
    ckpt.atomic_write_text("new", path)
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]
