"""Read Lightning checkpoints without ever running code from them.

Every checkpoint poolhead opens (``poolhead export``, ``compare``, ``inspect``, ``fit``/``test``
``--ckpt_path``, ``PoolingModule.load_from_checkpoint``) is read here, with ``torch.load(...,
weights_only=True)`` passed explicitly: torch then refuses pickled code even when
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` is set, since that variable only changes calls that leave
``weights_only`` unset. A file that is not a whole checkpoint gets one sentence saying so.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from poolhead.errors import UserFileNotFoundError, UserValueError

#: the class paths a PoolingModule checkpoint may name (LightningCLI saves ``_class_path`` in subclass
#: mode); the first is where the class lived before training/ existed.
MODULE_CLASS_PATHS = ("poolhead.module.PoolingModule", "poolhead.training.module.PoolingModule")
#: the ``_instantiator`` LightningCLI saves; Lightning imports whatever a checkpoint names there
TRUSTED_INSTANTIATORS = ("lightning.pytorch.cli.instantiate_module",)
#: keys that make Lightning or jsonargparse import the module they name
IMPORTING_KEYS = ("class_path", "_class_path", "_instantiator")
#: options that decide where a run writes: the user's command line and environment decide, never a file
WRITE_LOCATIONS = ("cache_dir",)
#: torch.save writes a zip archive; anything else is a truncated, zeroed or foreign file.
ZIP_SIGNATURE = b"PK\x03\x04"
FROM_FIT = "give a .ckpt written by poolhead fit (runs/<name>/version_<n>/checkpoints/)"


def checkpoint_bytes(path: str | Path) -> bytes:
    """The bytes of a checkpoint file, refused when it is missing, empty or not a zip archive."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise UserFileNotFoundError(f"checkpoint {path} {what}; {FROM_FIT}")
    data = path.read_bytes()
    if not data:
        raise UserValueError(
            f"checkpoint {path} is empty (0 bytes), probably from a run killed while saving it; "
            f"use another checkpoint of the run (last.ckpt or best-*.ckpt)"
        )
    if not data.startswith(ZIP_SIGNATURE):
        raise UserValueError(
            f"{path} is not a PyTorch checkpoint (it does not start like one: truncated, zeroed or another "
            f"kind of file); {FROM_FIT}"
        )
    return data


def load_checkpoint_bytes(data: bytes, path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load`` of checkpoint bytes with weights_only=True, its errors told as one sentence."""
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's own message suggests switching weights_only off, i.e. running the file's code: never say that.
        raise UserValueError(
            f"{path} holds pickled Python objects beyond tensors and plain values, which could run code "
            f"when loaded; poolhead loads only plain checkpoints: {FROM_FIT}"
        ) from error
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise UserValueError(
            f"{path} is not a readable PyTorch checkpoint ({type(error).__name__}: truncated or corrupted); {FROM_FIT}"
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserValueError(f"{path} is a PyTorch file but not a Lightning checkpoint (no state_dict); {FROM_FIT}")
    return checkpoint


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path``, loaded with weights_only=True (see the module docstring)."""
    return load_checkpoint_bytes(checkpoint_bytes(path), path, map_location)


def model_options(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``PoolingModule`` options, as plain values only.

    Lightning imports a checkpoint's ``_instantiator`` and jsonargparse any ``class_path`` it parses, so
    a crafted file could name any module. Only PoolingModule's own class path and LightningCLI's
    instantiator are accepted (and dropped: the class is known); any other such name is refused. Where
    a run writes (``cache_dir``) is dropped too: the command line and ``POOLHEAD_CACHE_DIR`` decide it.
    """
    options = dict(checkpoint.get("hyper_parameters") or {})
    named = {key: options.pop(key) for key in ("_instantiator", "_class_path") if key in options}
    trusted = {"_instantiator": TRUSTED_INSTANTIATORS, "_class_path": MODULE_CLASS_PATHS}
    for key, value in named.items():
        if value not in trusted[key]:
            _refuse_name(path, key, value)
    found = _importing_name(options)
    if found:
        _refuse_name(path, *found)
    for key in WRITE_LOCATIONS:
        options.pop(key, None)
    return options


def _importing_name(value: Any) -> tuple[str, Any] | None:
    """The first (key, value) anywhere in ``value`` that would make a parser import a module."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in IMPORTING_KEYS:
                return key, item
            found = _importing_name(item)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for item in value:
            found = _importing_name(item)
            if found:
                return found
    return None


def _refuse_name(path: str | Path, key: str, value: Any) -> None:
    raise UserValueError(
        f"{path} names {key} {value!r} in its hyper-parameters, which would import that module's code when "
        f"loaded; poolhead checkpoints name only their pooler's registered name: {FROM_FIT}"
    )


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, reading through :func:`read_checkpoint` whatever ``weights_only`` it is asked."""

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return read_checkpoint(path, map_location=map_location or "cpu")


def use_safe_checkpoint_io(trainer: Any) -> None:
    """Make ``trainer`` read ``--ckpt_path`` checkpoints through :class:`SafeCheckpointIO`.

    Only a plain ``TorchCheckpointIO`` is swapped; a custom one the user configured is theirs.
    """
    strategy = trainer.strategy
    if type(strategy.checkpoint_io) is TorchCheckpointIO:
        strategy.checkpoint_io = SafeCheckpointIO()
