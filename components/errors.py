"""The one exception type a user is meant to see.

Anything raised as DlxError is a problem the user can fix (a bad path, a corrupt file, an
unknown name); the CLI prints its message on one line and exits 2, without a traceback.
Every other exception is a bug and keeps its traceback.
"""


class DlxError(Exception):
    """A user-facing error: the message names the problem and the fix."""
