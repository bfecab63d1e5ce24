"""Export a trained ``PoolingModule`` checkpoint, with a model card from its hyperparameters and scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from poolhead.export.card_data import public_name
from poolhead.export.writer import export_sentence_transformer
from poolhead.training.checkpoints import read_checkpoint
from poolhead.training.finite import check_finite_weights
from poolhead.training.lora import merged_backbone
from poolhead.training.rebuild import module_from_checkpoint

#: hyperparameters that describe the training setup in the model card (others are omitted).
CARD_HPARAMS = ("freeze_backbone", "lora", "max_length", "lr", "backbone_lr", "weight_decay", "warmup_ratio")


def export_checkpoint(
    checkpoint_path: str | Path,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    normalize: bool | None = None,
    base_model: str | None = None,
    backbone: str | None = None,
) -> Path:
    """Write a Lightning checkpoint of ``PoolingModule`` as a sentence-transformers folder.

    Args:
        checkpoint_path: the ``.ckpt`` file written by ``poolhead fit``.
        out_dir: the folder to write (see :func:`export_sentence_transformer`).
        overwrite: replace an existing model folder at ``out_dir``.
        normalize: force (True/False) a final Normalize; None follows the module's ``normalize``.
        base_model: the backbone's hub id for the model card, when training used a local copy.
        backbone: load the backbone from here instead of the path saved in the checkpoint (a
            folder that moved); its weights must match the checkpoint's fingerprint.
    """
    # Read once, safely: the model and the model card's scores come from the same dict.
    checkpoint = read_checkpoint(checkpoint_path)
    check_finite_weights(checkpoint["state_dict"], f"checkpoint {checkpoint_path}")
    module = module_from_checkpoint(checkpoint, checkpoint_path, **({"backbone": backbone} if backbone else {}))
    if normalize is None:
        normalize = bool(getattr(module, "normalize", False))
    metadata = checkpoint_metadata(dict(module.hparams), checkpoint)
    if base_model:
        metadata["base_model"] = base_model
    return export_sentence_transformer(
        merged_backbone(module.backbone),
        module.pooler,
        out_dir,
        normalize=normalize,
        overwrite=overwrite,
        metadata=metadata,
    )


def checkpoint_metadata(hparams: dict[str, Any], checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Model-card facts: base model, loss, training data, validation scores and training settings.

    Args:
        hparams: the module's hyperparameters (``backbone``, ``loss``, ``loss_kwargs``, ...).
        checkpoint: the raw checkpoint dict (for the data module's hyperparameters and the
            best scores the ModelCheckpoint / EarlyStopping callbacks recorded); may be empty.

    A mixture's ``training_data`` lists every data set with its own loss, and has no single ``loss``.
    """
    metadata: dict[str, Any] = {"base_model": hparams.get("backbone")}
    data = checkpoint.get("datamodule_hyper_parameters") or {}
    if data.get("datasets"):
        metadata["training_data"] = {
            entry.get("name") or public_name(entry.get("path")): describe_dataset({**data, **entry}, hparams)
            for entry in data["datasets"]
        }
    else:
        metadata["loss"] = describe_loss(hparams.get("loss"), hparams.get("loss_kwargs"))
        if data:
            metadata["training_data"] = describe_training_data(data)
    if data:
        metadata["batch_size"] = data.get("batch_size")
    metrics = callback_scores(checkpoint.get("callbacks") or {})
    if metrics:
        metadata["metrics"] = metrics
    for key in ("epoch", "global_step"):
        if key in checkpoint:
            metadata[key] = checkpoint[key]
    metadata.update({key: hparams[key] for key in CARD_HPARAMS if hparams.get(key) is not None})
    return {key: value for key, value in metadata.items() if value is not None}


def describe_loss(loss: str | None, loss_kwargs: dict[str, Any] | None) -> str | None:
    """``cosent`` or ``in_batch_negatives {'scale': 20}``."""
    if not loss:
        return None
    return f"{loss} {loss_kwargs}" if loss_kwargs else loss


def describe_dataset(entry: dict[str, Any], hparams: dict[str, Any]) -> str:
    """One data set of a mixture with the loss it trained with (its own, else the model's)."""
    if entry.get("loss"):
        loss = describe_loss(entry["loss"], entry.get("loss_kwargs"))
    else:
        loss = describe_loss(hparams.get("loss"), hparams.get("loss_kwargs"))
    return f"{describe_training_data(entry)}, loss {loss}"


def describe_training_data(data: dict[str, Any]) -> str | dict[str, Any]:
    """``stsb (split 'train', 1000 pairs)`` from the data module's hyperparameters.

    A local folder or file is named by its last part: the card is published, the training
    machine's paths are not.
    """
    if not data.get("path"):
        return {key: value for key, value in data.items() if value is not None and key != "path"}
    details = [f"split {data['train_split']!r}"] if data.get("train_split") else []
    if data.get("limit_train_pairs"):
        details.append(f"{data['limit_train_pairs']} pairs")
    path = public_name(data["path"])
    return f"{path} ({', '.join(details)})" if details else path


def callback_scores(callbacks: dict[str, Any]) -> dict[str, float]:
    """``{"val/spearman (best)": 84.1}`` from ModelCheckpoint / EarlyStopping states."""
    scores: dict[str, float] = {}
    for state in callbacks.values():
        if not isinstance(state, dict):
            continue
        monitor = state.get("monitor")
        best = state.get("best_model_score", state.get("best_score"))
        if monitor and best is not None:
            value = float(best)
            if value == value and abs(value) != float("inf"):  # EarlyStopping starts at +-inf
                scores[f"{monitor} (best)"] = value
    return scores
