"""The error types of a user's mistake: bad options, data or files, told in one sentence.

They live in ``pooling/`` (which imports only torch) because the pooling files travel inside
exports and raise them too. Each is also the built-in error it refines (``ValueError``,
``FileNotFoundError``, ...), so ``except ValueError`` keeps working. The ``poolhead`` command
prints a ``UserError``'s message alone; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's options, data or files; the message names the bad value and the fix."""


class UserValueError(UserError, ValueError):
    """A bad option value or bad data."""


class UserTypeError(UserError, TypeError):
    """An option of the wrong type."""


class UserFileNotFoundError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class UserFileExistsError(UserError, FileExistsError):
    """A file or folder is in the way."""


class UserNotADirectoryError(UserError, NotADirectoryError):
    """A file where a folder was expected."""
