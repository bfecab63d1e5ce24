"""Rebuild a ``PoolingModule`` from a checkpoint: the one way ``export``, ``compare``/``inspect`` and
``predict`` do it.

A checkpoint is data: the names it holds (``_class_path``, saved by LightningCLI when the model was
given as ``class_path:``) are checked by ``checkpoints.model_options`` and never imported.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from poolhead.training.checkpoints import model_options, read_checkpoint
from poolhead.training.checks import check_poolhead_checkpoint


def module_from_checkpoint(checkpoint: str | Path | dict[str, Any], path: str | Path | None = None, **overrides: Any):
    """The ``PoolingModule`` a checkpoint holds, in eval mode, on CPU.

    Args:
        checkpoint: a ``.ckpt`` path (read with weights_only=True) or a checkpoint dict already read.
        path: where a dict came from, for messages (default: the path given).
        overrides: replace saved hyperparameters, e.g. ``backbone=`` for a backbone folder that
            moved (its weights must match the checkpoint's fingerprint).
    """
    from poolhead.training.module import PoolingModule  # Lightning is only needed here

    if not isinstance(checkpoint, dict):
        path, checkpoint = checkpoint, read_checkpoint(checkpoint)
    path = path if path is not None else "the checkpoint"
    check_poolhead_checkpoint(checkpoint, path)
    saved = model_options(checkpoint, path)  # plain values: names checked and dropped, no cache_dir
    accepted = inspect.signature(PoolingModule.__init__).parameters
    hparams = {key: value for key, value in saved.items() if key in accepted and key != "self"}
    hparams.update(overrides)
    module = PoolingModule(**hparams)
    module.on_load_checkpoint(checkpoint)
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval()
