"""The project's user-error hierarchy.

A :class:`UserError` is a problem with what the user gave (a file, a folder,
an option, a dataset root), not a bug: its message names the file (and line)
at fault and says what to do. The command line prints it as one line
``stl: error: <message>`` and exits 2 (the traceback only with ``stl -v``).

The library's own error types derive from it (``DatasetError``,
``ImageError``, ``RunError``, ``StoreError``, ...), each also keeping its
historical base class (``RuntimeError`` / ``ValueError``), so existing
``except`` clauses still catch them.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input: a file, folder, option or dataset the user gave. The message says which and why."""


class CorruptFileError(UserError, OSError):
    """A file that exists but cannot be read (truncated, not the expected format). ``.path`` names it."""

    def __init__(self, path, message: str):
        super().__init__(message)
        self.path = path

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class WriteError(UserError, OSError):
    """An output that cannot be written (disk full, ``/dev/full``, a closed pipe, a read-only place).

    ``.path`` names the output; ``errno`` / ``strerror`` are those of the failed write, so
    ``except OSError`` clauses that look at ``errno`` (ENOSPC) still see it.
    """

    def __init__(self, path, error: OSError):
        super().__init__(error.errno, error.strerror or str(error))
        self.path = self.filename = str(path)

    def __str__(self):
        return f"{self.path}: cannot write ({self.strerror})"


class OptionError(UserError, ValueError):
    """A setting or option value that cannot be used (out of range, not available on this machine:
    ``--device cuda`` without a GPU, ``fp16`` on a CPU, ``workers=0``, ...). The message names it."""


class EvalError(UserError, ValueError):
    """A run that cannot be scored as asked (e.g. against a dataset whose images differ from the run's)."""


def one_line(exc: BaseException) -> str:
    """An exception as one line of text for ``stl: error: ...`` (file name first where known)."""
    if isinstance(exc, OSError) and not isinstance(exc, UserError) and getattr(exc, "filename", None):
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and not isinstance(exc, UserError) and text.startswith(("'", '"')) \
            and text.endswith(("'", '"')):
        text = text[1:-1]  # KeyError quotes its message
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
