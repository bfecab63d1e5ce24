"""Encoder: texts in, sentence embeddings out (tokenizer + AutoModel + pooler)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from poolhead.backbone import Backbone, load_backbone
from poolhead.errors import UserTypeError, UserValueError
from poolhead.pooling.base import Pooler
from poolhead.pooling.registry import resolve_pooler

# Show a progress bar by default only when encoding takes more than a few batches.
PROGRESS_BAR_MIN_TEXTS = 1_000


class TruncationWarning(UserWarning):
    """Some texts had more tokens than ``max_length``; only their first ``max_length`` tokens were encoded."""


class Encoder:
    """Encode texts with a Hugging Face backbone and any poolhead pooler.

    Args:
        model_name_or_path: a hub id (``emilyalsentzer/Bio_ClinicalBERT``), a local HF folder,
            or a sentence-transformers folder (its Transformer module is used).
        pooler: strategy name, pooler config dict, or a ``Pooler`` (e.g. a trained head).
        max_length: tokens per text; longer texts are truncated. Default: the model's limit.
        normalize: L2-normalise the embeddings.
        device: where the backbone runs; default CUDA when available.
    """

    def __init__(
        self,
        model_name_or_path: str | Backbone,
        pooler: str | dict | Pooler = "mean",
        max_length: int | None = None,
        normalize: bool = False,
        device: str | torch.device | None = None,
    ) -> None:
        if not isinstance(model_name_or_path, Backbone):
            self.backbone = load_backbone(model_name_or_path, max_length=max_length)
        else:  # a copy with this max_length: the caller's Backbone keeps its own
            self.backbone = replace(model_name_or_path, max_length=max_length or model_name_or_path.max_length)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.pooler = resolve_pooler(pooler, self.backbone.hidden_size).to(self.device).eval()
        # Fail now, not after the first batch, when the pooler reads layers this backbone lacks.
        self.pooler.layer_indices(self.backbone.num_hidden_states)
        self.model = self.backbone.model.to(self.device).eval()
        self.tokenizer = self.backbone.tokenizer
        self.normalize = normalize

    @property
    def max_length(self) -> int:
        return self.backbone.max_length

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        return self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)

    def count_truncated(self, texts: Sequence[str], features: dict[str, Tensor]) -> int:
        """How many of ``texts`` (just tokenized into ``features``) lost tokens to ``max_length``."""
        encodings = getattr(features, "encodings", None)
        if encodings is not None:  # a fast tokenizer keeps what it cut off
            return sum(bool(encoding.overflowing) for encoding in encodings)
        lengths = self.tokenizer(list(texts), truncation=False, return_length=True)["length"]
        return sum(length > self.max_length for length in lengths)

    @torch.inference_mode()
    def backbone_outputs(self, texts: Sequence[str]) -> tuple[Tensor, Tensor, tuple[Tensor, ...] | None]:
        """Token embeddings, attention mask and (when the pooler reads layers) all hidden states."""
        return self._forward(self.tokenize(texts))

    def _forward(self, features: dict[str, Tensor]) -> tuple[Tensor, Tensor, tuple[Tensor, ...] | None]:
        outputs = self.model(**features, output_hidden_states=self.pooler.needs_hidden_states)
        return outputs.last_hidden_state, features["attention_mask"], outputs.hidden_states

    @torch.inference_mode()
    def encode(self, texts: str | Sequence[str], batch_size: int = 32, show_progress_bar: bool | None = None) -> Tensor:
        """(N, D) float32 CPU tensor of sentence embeddings, in the order of ``texts``."""
        texts, single = encode_request(texts, batch_size)
        if not texts:
            return torch.empty(0, self.pooler.output_dim)
        truncated = 0

        def encode_batch(batch: list[str]) -> dict[str, Tensor]:
            nonlocal truncated
            features = self.tokenize(batch)
            truncated += self.count_truncated(batch, features)
            tokens, mask, hidden_states = self._forward(features)
            pooled = self.pooler(tokens, mask, hidden_states=hidden_states).float()
            return {"embeddings": F.normalize(pooled, dim=-1) if self.normalize else pooled}

        show = progress_bar_wanted(len(texts), show_progress_bar)
        embeddings = encode_in_length_order(texts, encode_batch, batch_size, "encode", show)["embeddings"]
        if truncated:
            warnings.warn(
                f"{truncated} of {len(texts)} texts were longer than max_length={self.max_length} tokens and "
                f"were truncated; their embeddings ignore the rest (pass a larger max_length, up to the "
                f"model's limit, to keep more)",
                TruncationWarning,
                stacklevel=2,
            )
        return embeddings[0] if single else embeddings


def encode_in_length_order(
    texts: Sequence[str],
    encode_batch: Callable[[list[str]], dict[Any, Tensor | list[Tensor]]],
    batch_size: int,
    description: str = "encode",
    show_progress_bar: bool = False,
) -> dict[Any, Tensor | list[Tensor]]:
    """``encode_batch`` over ``texts`` longest first (little padding), results back in the order of ``texts``.

    Per key, ``encode_batch`` gives a (B, ...) tensor, written into one (N, ...) CPU tensor (only the
    results grow with N), or a list of B tensors (ragged token states), gathered into a list of N."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    results: dict[Any, Tensor | list[Tensor]] = {}
    for start in tqdm(range(0, len(texts), batch_size), desc=description, disable=not show_progress_bar):
        rows = order[start : start + batch_size]
        for key, values in encode_batch([texts[i] for i in rows]).items():
            if isinstance(values, Tensor):
                if key not in results:
                    results[key] = values.new_empty(len(texts), *values.shape[1:], device="cpu")
                results[key][torch.tensor(rows)] = values.cpu()
            else:
                gathered = results.setdefault(key, [None] * len(texts))
                for row, value in zip(rows, values, strict=True):
                    gathered[row] = value
    return results


def encode_request(texts: str | Sequence[str], batch_size: int) -> tuple[list[str], bool]:
    """The texts of an ``encode(texts, batch_size)`` call as a checked list, and whether one text
    (a plain string) was given: every encoder's ``encode`` accepts the same arguments."""
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    check_texts(texts)
    if batch_size < 1:
        raise UserValueError(f"batch_size must be >= 1, got {batch_size}")
    return texts, single


def progress_bar_wanted(num_texts: int, show_progress_bar: bool | None) -> bool:
    """``None`` shows a bar for large inputs only."""
    return num_texts >= PROGRESS_BAR_MIN_TEXTS if show_progress_bar is None else show_progress_bar


def check_texts(texts: list[Any]) -> None:
    bad = next(((i, t) for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise UserTypeError(f"texts[{bad[0]}] is {type(bad[1]).__name__} ({bad[1]!r}), not a string")
