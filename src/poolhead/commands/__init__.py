"""Subcommands of ``poolhead`` beside Lightning's fit/validate/test: each module has add_arguments() and run()."""

from __future__ import annotations

from pathlib import Path

from poolhead.errors import UserNotADirectoryError


def check_output_folder(path: str | Path, option: str) -> None:
    """Refuse an output folder that is a file (or lies under one) before any work, not after hours of it."""
    path = Path(path)
    in_the_way = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:
        raise UserNotADirectoryError(
            f"{option} {path}: {in_the_way} is a file, not a folder; give a new or existing folder to write into"
        )
