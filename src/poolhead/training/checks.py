"""Checks that stop a training run before its first step when it could only give a wrong result.

A negative learning rate climbs the loss; a one-pair training set gives pair losses nothing to
compare; a checkpoint monitor on a metric the data never logs loses the whole run's checkpoints
after its first epoch. Each is refused (or corrected, for the default monitor) with one sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn

from poolhead.errors import UserValueError
from poolhead.training.checkpoints import model_options

#: the module's class path now
#: what PoolingModule logs per kind of data (besides val/loss and train/loss)
LOGGED_METRICS = {"score": ("spearman", "pearson"), "label": ("accuracy", "f1"), "positive": ("accuracy",)}


def check_training_options(**options: float) -> None:
    """Learning rates must be positive, weight decay not negative, warmup a fraction."""
    for name in ("lr", "backbone_lr"):
        value = options.get(name)
        if value is not None and not value > 0:
            raise UserValueError(
                f"{name}={value} must be a positive number (a negative rate climbs the loss instead of "
                f"lowering it); e.g. --model.{name} 1e-3"
            )
    weight_decay = options.get("weight_decay")
    if weight_decay is not None and not weight_decay >= 0:
        raise UserValueError(f"weight_decay={weight_decay} must be 0 or more; e.g. --model.weight_decay 0.01")
    warmup = options.get("warmup_ratio")
    if warmup is not None and not 0 <= warmup <= 1:
        raise UserValueError(f"warmup_ratio={warmup} must be a fraction of the steps in [0, 1]; e.g. 0.1")


def check_training_pairs(datamodule: Any) -> None:
    """Refuse a training split of fewer than 2 pairs: pair losses compare pairs within a batch."""
    pairs = getattr(datamodule, "pairs", {}).get("train") if datamodule is not None else None
    if pairs is None or len(pairs) >= 2:
        return
    raise UserValueError(
        f"the training split of {datamodule.path} has {len(pairs)} pair(s); training needs at least 2 "
        f"(the losses compare the pairs of a batch, so one pair trains nothing): add pairs to the file"
    )


def follow_data_kind(trainer: Any, objectives: list[Any]) -> None:
    """Make checkpoint and early-stopping monitors name a metric this run logs, before the first step.

    The shipped default, ``val/spearman``, exists only for score data: on label or tuple data it
    becomes the data's ranking metric (``val/accuracy``; ``val/combined`` over several data sets);
    any other metric the run does not log is refused.
    """
    with_metrics = [o for o in objectives if o.has_metrics]
    logged = {o.logged("val", name) for o in with_metrics for name in LOGGED_METRICS[o.kind]}
    logged |= {o.logged(stage, "loss") for o in objectives for stage in ("val", "train")} | {"val/loss", "train/loss"}
    if len(with_metrics) > 1:
        logged.add("val/combined")
        replacement = "val/combined"
    elif with_metrics:
        replacement = with_metrics[0].logged("val", LOGGED_METRICS[with_metrics[0].kind][0])
    else:
        replacement = "val/loss"
    metric_names = {f"val/{name}" for names in LOGGED_METRICS.values() for name in names}
    for callback in trainer.callbacks:
        if not isinstance(callback, (ModelCheckpoint, EarlyStopping)) or callback.monitor in (None, *logged):
            continue
        option = "checkpoint" if isinstance(callback, ModelCheckpoint) else "early_stopping"
        if callback.monitor not in metric_names or callback.mode != "max" or replacement == "val/loss":
            raise UserValueError(
                f"--{option}.monitor {callback.monitor} is not a metric of this run; it logs "
                f"{', '.join(sorted(logged))}"
            )
        rank_zero_warn(
            f"--{option}.monitor {callback.monitor} is not logged for this data; monitoring {replacement} "
            f"instead (set --{option}.monitor to choose another of {', '.join(sorted(logged))})"
        )
        callback.monitor = replacement  # both are higher-is-better, so the mode stays "max"


def check_poolhead_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Refuse a Lightning checkpoint that is not a PoolingModule's (no backbone in its hyperparameters), or
    whose hyper-parameters name code to import (see :func:`model_options`)."""
    hparams = model_options(checkpoint, path)
    if "backbone" not in hparams:
        raise UserValueError(
            f"{path} is a Lightning checkpoint but not one of poolhead's PoolingModule (its hyperparameters "
            f"name no backbone); give a .ckpt written by poolhead fit"
        )
