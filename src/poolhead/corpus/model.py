"""The LightningModule of corpus encoding: a sentence-transformers model, run as ``encode`` runs it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import lightning as L
from sentence_transformers import SentenceTransformer
from torch import Tensor

from poolhead.backbone import fingerprint, resolve_model_path
from poolhead.errors import UserValueError
from poolhead.training.finite import check_finite_embeddings, check_finite_weights


def load_encoder_model(model: str) -> SentenceTransformer:
    """An export folder (``poolhead.load``: installed code only), or a ``.ckpt`` written by ``poolhead fit``;
    refused when a weight is NaN or infinite (every embedding would be)."""
    loaded = _load_encoder_model(model)
    check_finite_weights(loaded.state_dict(), f"model {model}")
    return loaded


def _load_encoder_model(model: str) -> SentenceTransformer:
    from poolhead.export import load_sentence_transformer, to_sentence_transformer

    path = Path(resolve_model_path(model))
    if path.is_file() and path.suffix == ".ckpt":
        from poolhead.training.rebuild import module_from_checkpoint

        module = module_from_checkpoint(path)  # weights_only=True, one sentence for a damaged file
        return to_sentence_transformer(module.backbone, module.pooler, normalize=bool(module.normalize))
    if not (path / "modules.json").is_file():
        raise UserValueError(
            f"model {model!r} is neither a sentence-transformers folder (no modules.json) nor a .ckpt file; "
            f"give the folder poolhead export wrote, or the checkpoint poolhead fit wrote"
        )
    return load_sentence_transformer(path, device="cpu")


def model_fingerprint(model: SentenceTransformer) -> str:
    """SHA-256 of everything that makes a model's vectors: the weights of every module (backbone, head,
    dense layers), each module's type and options (pooling mode, normalize, ...), the tokenizer and the
    maximum length; the same for a model re-exported unchanged, whatever its path."""
    from poolhead.cache.features import tokenizer_digest

    modules = [
        {"type": f"{type(module).__module__}.{type(module).__name__}", "config": _module_config(module)}
        for module in model
    ]
    description = {
        "modules": modules,
        "weights": fingerprint(model),
        "tokenizer": tokenizer_digest(model.tokenizer),
        "max_seq_length": model.max_seq_length,
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()


def _module_config(module: Any) -> Any:
    get_config = getattr(module, "get_config_dict", None)
    return get_config() if callable(get_config) else None


class CorpusEncoder(L.LightningModule):
    """``predict_step``: a batch of tokenized texts -> their sentence embeddings (float32, on CPU).

    Args:
        model: a SentenceTransformer (e.g. from :func:`load_encoder_model`); its modules run
            exactly as in ``SentenceTransformer.encode``, so the embeddings are the same.
    """

    def __init__(self, model: SentenceTransformer, source: str = "the model") -> None:
        super().__init__()
        self.model = model.eval()
        #: what the user called the model, for errors
        self.source = source

    def collate(self, batch: dict[str, list[Any]]) -> dict[str, Any]:
        """DataLoader collate: rows and ids as given, texts tokenized by the model's own preprocessing."""
        features = self.model.preprocess(batch["texts"])
        return {"rows": batch["rows"], "ids": batch["ids"], "texts": batch["texts"], "features": features}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        embeddings: Tensor = self.model(batch["features"])["sentence_embedding"]
        # Before the writer sees them: a shard of NaN rows would be skipped as done by every rerun.
        check_finite_embeddings(embeddings, batch["texts"], f"model {self.source}")
        return {"rows": batch["rows"], "ids": batch["ids"], "embeddings": embeddings.float().cpu()}

    @property
    def embedding_dimension(self) -> int:
        return int(self.model.get_embedding_dimension())
