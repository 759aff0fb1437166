"""The one exception type a user is meant to see.

Anything raised as DlxError is a problem the user can fix (a bad path, a corrupt file, an
unknown name); the CLI prints its message on one line and exits 2, without a traceback.
Every other exception is a bug and keeps its traceback, except the operating system's refusals
(a read-only or full disk, a permission denied), which the CLI words with ``os_error_line``.
"""
import errno


class DlxError(Exception):
    """A user-facing error: the message names the problem and the fix, on one line (a line break
    in what it quotes, a user's value or a file's content, is shown escaped)."""

    def __init__(self, message: str) -> None:
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))


_OS_FIXES = {
    errno.ENOSPC: "free some space there, or choose another location",
    errno.EDQUOT: "free some of your quota, or choose another location",
    errno.EROFS: "that file system is read-only; choose another location",
    errno.EACCES: "check its permissions, or choose another location",
    errno.EPERM: "check its permissions, or choose another location",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "it is a folder; name a file",
    errno.EEXIST: "something of that name is in the way; choose another path",
}


def os_error_line(exc: OSError) -> str:
    """An operating system's refusal (read-only, full, permission denied...) in one line naming the
    path and the fix."""
    where = f"{exc.filename}: " if exc.filename else ""
    fix = _OS_FIXES.get(exc.errno, "check the path and the disk")
    return f"{where}{exc.strerror or exc}; {fix}"
