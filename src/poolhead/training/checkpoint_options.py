"""``validate``/``test --ckpt_path``: the checkpoint's model options describe the trained model.

A checkpoint's hyperparameters are laid over the run's config, so a config (or command line) that
names another pooler, loss or backbone would silently lose to it: the scores would be of another
model than the one the user named. Each option that describes the trained model and is set
differently is refused in one sentence naming both values. ``--model.backbone`` typed on the
command line stays the override for a backbone folder that moved (the weights' fingerprint still
guards it), but a backbone of another hidden size cannot carry the head and is refused here, before
the pooler's own hidden-size message would suggest changing the head.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from poolhead.errors import UserValueError

#: the options that make the trained model what it is (the others, e.g. cache_dir or lr, are the run's)
TRAINED_MODEL_OPTIONS = ("backbone", "pooler", "loss", "loss_kwargs", "num_labels", "freeze_backbone", "lora")
#: typed on the command line, these win over the checkpoint's (a backbone folder that moved)
OVERRIDES = ("backbone",)


def check_config_matches_checkpoint(
    config: dict[str, Any],
    hparams: dict[str, Any],
    typed: set[str],
    ckpt_path: str | Path,
    *,
    given: set[str] | None = None,
) -> None:
    """Refuse a model option of ``config`` (the run's config and command line) that the checkpoint contradicts.

    Args:
        config: the model options as parsed (``--model.*``), defaults included.
        hparams: the checkpoint's ``hyper_parameters``.
        typed: the model options typed on the command line.
        ckpt_path: the checkpoint, for the message.
        given: the model options given at all (typed, or in a config file); default ``typed``.

    An option given nowhere and still at its default counts as unset: the checkpoint fills it in. One
    given at the value that happens to be the default is compared like any other.
    """
    defaults = _defaults()
    named = typed | (given or set())
    for key in TRAINED_MODEL_OPTIONS:
        given_value, trained = config.get(key), hparams.get(key)
        at_default = key not in named and given_value == defaults.get(key)
        if key not in hparams or (at_default and not (key == "pooler" and config.get("pooler_kwargs"))):
            continue
        if key == "pooler":
            given_value = {**_pooler_options(given_value), **(config.get("pooler_kwargs") or {})}
            differ = isinstance(trained, dict) and any(trained.get(k, v) != v for k, v in given_value.items())
        elif key == "backbone":
            differ = not _same_model(given_value, trained)
        else:
            differ = given_value != trained
        if not differ:
            continue
        if key in OVERRIDES and key in typed:
            _check_backbone_fits(given_value, hparams, ckpt_path)
            continue
        raise UserValueError(
            f"{ckpt_path} was trained with model.{key} {trained!r} but the config sets {given_value!r}; a checkpoint "
            f"is scored as it was trained: remove model.{key} from the config (or give the run's own config.yaml)"
        )


def _defaults() -> dict[str, Any]:
    from poolhead.training.module import PoolingModule

    parameters = inspect.signature(PoolingModule.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _pooler_options(pooler: Any) -> dict[str, Any]:
    if isinstance(pooler, str):
        return {"name": pooler}
    if isinstance(pooler, dict) and "class_path" not in pooler:
        return {k: v for k, v in pooler.items() if k != "hidden_size"}
    return {}  # a class_path pooler: its options are the class's own


def _same_model(given: Any, trained: Any) -> bool:
    if given == trained:
        return True
    given_path, trained_path = Path(str(given)), Path(str(trained))
    return given_path.exists() and trained_path.exists() and os.path.samefile(given_path, trained_path)


def _check_backbone_fits(backbone: str, hparams: dict[str, Any], ckpt_path: str | Path) -> None:
    """A typed backbone must have the hidden size the head was trained for."""
    trained_size = (hparams.get("pooler") or {}).get("hidden_size")
    size = _hidden_size(backbone)
    if trained_size is None or size is None or size == trained_size:
        return
    raise UserValueError(
        f"--model.backbone {backbone} has hidden size {size}, but the head of {ckpt_path} was trained on "
        f"{hparams.get('backbone')!r} with hidden size {trained_size}: give the backbone the head was trained on"
    )


def _hidden_size(backbone: str) -> int | None:
    """The backbone's hidden size from its config alone; None when it cannot be read (loading says why)."""
    from transformers import AutoConfig

    from poolhead.backbone import transformer_folder

    try:
        return getattr(AutoConfig.from_pretrained(transformer_folder(backbone)[0]), "hidden_size", None)
    except (OSError, ValueError):
        return None


def check_head_was_trained(module: Any, ckpt_path: str | None, command: str) -> None:
    """Refuse to score a learned head that was never trained (no ``--ckpt_path``): that is no test result.

    A fresh head starts as mean pooling (see the heads' ``init_weights``), so its figures would pass
    for a trained head's. Fixed strategies have no weights to train and are scored as they are.
    """
    if ckpt_path or not any(True for _ in module.pooler.parameters()):
        return
    raise UserValueError(
        f"poolhead {command} without --ckpt_path would score the {module.pooler.name} head as initialised, "
        f"never trained; give --ckpt_path runs/<name>/version_<n>/checkpoints/best-*.ckpt, or --model.pooler mean "
        f"(a fixed strategy) to score the backbone alone"
    )
