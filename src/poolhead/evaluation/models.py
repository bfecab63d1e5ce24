"""What ``compare`` and ``inspect`` evaluate: models given by path (see fixed.py for the fixed strategies).

A model is a path (or hub id): an exported sentence-transformers folder, a Lightning
checkpoint of ``PoolingModule``, or a plain Hugging Face encoder (fixed strategies only).
Whatever it is, it becomes an :class:`EmbeddingModel`: a name, the backbone under its head
(where the fixed strategies run), and an ``encode`` function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from poolhead.backbone import Backbone, load_backbone, resolve_max_length, resolve_model_path
from poolhead.encoder import Encoder
from poolhead.errors import UserFileNotFoundError, UserValueError
from poolhead.pooling.base import Pooler

#: ``encode(texts, batch_size, show_progress_bar) -> (N, D)`` float32 CPU tensor.
EncodeFn = Callable[[Sequence[str], int, bool], Tensor]
#: Folder names that say nothing about the model; the parent folder names it instead.
GENERIC_FOLDER_NAMES = {"model", "models", "export", "exported", "final", "output", "checkpoints"}


@dataclass
class EmbeddingModel:
    """A model evaluated beside every fixed strategy of its backbone.

    Args:
        name: the row label in tables and charts.
        source: the path or hub id it came from.
        backbone: the Hugging Face encoder under the head; the fixed strategies run on it.
        encode: texts -> embeddings, exactly as users of the model get them; ``None`` for a
            bare backbone (only its fixed strategies are evaluated).
        strategy: its pooling in words (``attention``, ``mean``, ...).
        pooler: the poolhead head, when the model has one (``inspect`` reads its weights).
        head_only: the model's embedding is ``pooler`` applied to its backbone's outputs (then at
            most normalised, which cosine similarity ignores), so ``compare`` pools it from the
            backbone pass that serves the fixed strategies instead of running the backbone again.
    """

    name: str
    source: str
    backbone: Backbone
    encode: EncodeFn | None = None
    strategy: str | None = None
    pooler: Pooler | None = None
    head_only: bool = False

    @classmethod
    def from_encoder(cls, encoder: Encoder, name: str | None = None) -> EmbeddingModel:
        """A head held in Python (e.g. just trained in a notebook), evaluated without exporting it."""

        def encode(texts: Sequence[str], batch_size: int = 32, show_progress_bar: bool = False) -> Tensor:
            return encoder.encode(list(texts), batch_size=batch_size, show_progress_bar=show_progress_bar)

        pooler = encoder.pooler
        source = encoder.backbone.name_or_path
        return cls(name or pooler.name, source, encoder.backbone, encode, pooler.name, pooler, head_only=True)


def load_model_for_eval(source: str | Path, device: str | torch.device | None = None) -> EmbeddingModel:
    """Load a model for ``compare`` / ``inspect`` from what the user typed.

    Args:
        source: a sentence-transformers folder (or hub id), a ``.ckpt`` of ``PoolingModule``,
            a Hugging Face model folder or hub id, or ``package:MODULE`` for a packaged model.
        device: where it runs; default CUDA when available.
    """
    resolved = resolve_model_path(str(source))
    path = Path(resolved)
    if not path.exists() and (resolved.startswith(("/", ".", "~")) or resolved.count("/") > 1):
        raise UserFileNotFoundError(f"model {str(source)!r} does not exist; pass a model folder, a .ckpt or a hub id")
    if path.suffix == ".ckpt":
        if not path.is_file():
            raise UserFileNotFoundError(f"checkpoint {str(source)!r} does not exist")
        return _from_checkpoint(path, device)
    if path.is_file():
        raise UserValueError(
            f"{str(source)!r} is a file but not a checkpoint; pass a .ckpt, a model folder or a hub id"
        )
    if _is_sentence_transformers(resolved):
        return _from_sentence_transformers(str(source), resolved, device)
    if path.is_dir() and not (path / "config.json").is_file():
        raise UserValueError(
            f"{str(source)!r} is neither a sentence-transformers folder (modules.json) nor a Hugging Face "
            f"model folder (config.json); pass an exported model, a checkpoint or a backbone"
        )
    return EmbeddingModel(name=display_name(str(source)), source=str(source), backbone=load_backbone(resolved))


def display_name(source: str) -> str:
    """A short row label: the folder or file name (with its parent when the name is generic)."""
    if source.startswith("package:"):
        return source.split(":", 1)[1]
    path = Path(source)
    if not path.exists():
        return source
    parts = path.resolve().parts
    name = path.stem if path.is_file() else path.name
    if name.lower() in GENERIC_FOLDER_NAMES and len(parts) > 1:
        return f"{parts[-2]}/{name}"
    return name


def _is_sentence_transformers(source: str) -> bool:
    if Path(source).is_dir():
        return (Path(source) / "modules.json").is_file()
    if Path(source).exists() or source.count("/") != 1:
        return False
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(source, "modules.json")
    except Exception:  # not on the hub, not cached offline, no such file: treat as a plain encoder
        return False
    return True


def _load_sentence_transformer(source: str, device: Any) -> Any:
    device = None if device is None else str(device)
    if Path(source).is_dir():
        # poolhead's loader builds poolhead heads from installed code: no trust_remote_code.
        from poolhead.export import load_sentence_transformer

        return load_sentence_transformer(source, device=device)
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(source, device=device)


def _from_sentence_transformers(source: str, resolved: str, device: Any) -> EmbeddingModel:
    from poolhead.export.st_pooling import pooler_from_layer_mix

    model = _load_sentence_transformer(resolved, device)
    model.eval()
    transformer = next((module for module in model if hasattr(module, "auto_model")), None)
    if transformer is None:
        raise UserValueError(
            f"{source!r} has no Transformer module ({[type(m).__name__ for m in model]}); "
            f"compare needs a Hugging Face backbone to run the fixed strategies on"
        )
    limit = getattr(transformer.auto_model.config, "max_position_embeddings", None)
    backbone = Backbone(
        model=transformer.auto_model,
        tokenizer=transformer.tokenizer,
        max_length=resolve_max_length(transformer.max_seq_length, [transformer.tokenizer.model_max_length, limit]),
        name_or_path=source,
    )
    pooler = next((m for m in model.modules() if isinstance(m, Pooler)), None) or pooler_from_layer_mix(list(model))

    def encode(texts: Sequence[str], batch_size: int = 32, show_progress_bar: bool = False) -> Tensor:
        embeddings = model.encode(
            list(texts), batch_size=batch_size, convert_to_tensor=True, show_progress_bar=show_progress_bar
        )
        return embeddings.float().cpu()

    strategy = pooler.name if pooler is not None else _sentence_transformers_pooling(model)
    names = [type(module).__name__ for module in model]
    head_only = names[1:] in (["PoolheadPooling"], ["PoolheadPooling", "Normalize"]) and pooler is not None
    return EmbeddingModel(display_name(source), source, backbone, encode, strategy, pooler, head_only)


def _sentence_transformers_pooling(model: Any) -> str:
    for module in model:
        mode = getattr(module, "get_config_dict", lambda: {})().get("pooling_mode")
        if mode:
            return mode if isinstance(mode, str) else "+".join(mode)
    return type(model[-1]).__name__


def _from_checkpoint(path: Path, device: Any) -> EmbeddingModel:
    from poolhead.training.rebuild import module_from_checkpoint

    module = module_from_checkpoint(path)
    encoder = Encoder(module.backbone, pooler=module.pooler, normalize=module.normalize, device=device)
    model = EmbeddingModel.from_encoder(encoder, display_name(str(path)))
    model.source = str(path)
    return model
