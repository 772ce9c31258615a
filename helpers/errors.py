"""The one exception type a user sees as a one-line message instead of a traceback."""


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
