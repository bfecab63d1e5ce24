"""A feature-cache folder that cannot be written (read-only, full): keep the features in memory, say so.

One process trains on the features it just encoded whether or not they reach the disk, so a
write failure costs only their reuse by later runs. Under DDP the processes exchange their
shares through the folder, so there it is an error, raised before anything is encoded.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from safetensors import SafetensorError

from poolhead.cache.store import Chunk, write_chunk
from poolhead.errors import UserValueError


class FeatureCacheNotSavedWarning(UserWarning):
    """The features were encoded but could not be written to the cache folder; this run keeps them in memory."""


def folder_is_writable(folder: Path, world_size: int = 1) -> bool:
    """Whether files can be created in ``folder`` (made if missing); False warns, or raises under DDP."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.")
        os.close(fd)
        os.remove(probe)
        return True
    except OSError as error:
        reason = f"{type(error).__name__}: {error.strerror or error}"
    if world_size > 1:
        raise UserValueError(
            f"feature cache folder {folder} cannot be written ({reason}), and the {world_size} processes of this "
            f"run share their features through it: set --model.cache_dir (or POOLHEAD_CACHE_DIR) to a writable "
            f"folder shared by all of them, or --model.cache false"
        )
    warn_not_saved(folder, reason)
    return False


def write_or_warn(folder: Path, name: str, chunk: Chunk, key: str, written: set[Path]) -> bool:
    """Write ``chunk``; on a full disk (or any write error) warn and carry on from memory. True if written.

    The chunks written before stay: a later run reuses them and encodes only the rest.
    """
    try:
        written.add(write_chunk(folder, name, chunk, key))
        return True
    except (OSError, SafetensorError) as error:  # safetensors reports a full disk as its own error
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        warn_not_saved(folder, f"{type(error).__name__}: {reason}")
        return False


def warn_not_saved(folder: Path, reason: str) -> None:
    warnings.warn(
        f"feature cache folder {folder} cannot be written ({reason}); this run keeps its features in memory, the "
        f"chunks already written stay cached and later runs encode the rest again: set --model.cache_dir or "
        f"POOLHEAD_CACHE_DIR to a writable folder",
        FeatureCacheNotSavedWarning,
        stacklevel=3,
    )
