"""User errors (see :mod:`poolhead.pooling.errors`) and how the ``poolhead`` command reports them.

A user error prints as one line, ``poolhead fit: error: <message>``, and exits with status 2;
set ``POOLHEAD_DEBUG=1`` to see its traceback too. Every other exception is a bug in poolhead or
a library and is raised with its full traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from poolhead.pooling.errors import (
    UserError,
    UserFileExistsError,
    UserFileNotFoundError,
    UserNotADirectoryError,
    UserTypeError,
    UserValueError,
)

__all__ = [
    "UserError",
    "UserFileExistsError",
    "UserFileNotFoundError",
    "UserNotADirectoryError",
    "UserTypeError",
    "UserValueError",
    "debug_enabled",
    "print_user_error",
    "report_user_errors",
]

DEBUG_VARIABLE = "POOLHEAD_DEBUG"
#: exit status of a command stopped by a user error (argparse's status for bad arguments)
USER_ERROR_STATUS = 2


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def user_error_in(error: BaseException) -> UserError | None:
    """``error`` or the first user error it was raised from (libraries sometimes wrap ours)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, UserError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def report_user_errors(command: str, run: Callable[[], int]) -> int:
    """Run ``run()``; a user error prints ``poolhead COMMAND: error: message`` and returns status 2."""
    try:
        return run()
    except Exception as error:
        found = user_error_in(error)
        if found is None or debug_enabled():
            raise
        return print_user_error(command, found)


def print_user_error(command: str, error: UserError) -> int:
    """Print ``poolhead COMMAND: error: message`` and return status 2 (re-raise under POOLHEAD_DEBUG=1)."""
    if debug_enabled():
        raise error
    print(f"poolhead {command}: error: {error}", file=sys.stderr)
    return USER_ERROR_STATUS
