"""What the user is told: one-line errors instead of tracebacks, and where progress lines go."""
from __future__ import annotations

from typing import Callable

# Where a job's one-line messages go: print by default, the notebook's display or a list in tests.
Log = Callable[[str], None]


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and how to fix it.

    The command line prints ``error: <message>`` and exits with status 2; library
    callers can catch it like any other exception.
    """

    def _render_traceback_(self) -> list[str]:
        """What IPython (a notebook, papermill, nbclient) shows instead of a traceback."""
        return [f"error: {self}"]


class Interrupted(Exception):
    """Ctrl-C during training; the message says what is saved and how to continue."""
