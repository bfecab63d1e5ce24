"""SentenceTable: every unique sentence once, tokenized once; pairs refer to sentences by id.

STS-B repeats many sentences across pairs and splits. Keeping one row per unique sentence
means each is tokenized once here, and a frozen backbone's features can be cached per id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from poolhead.backbone import resolve_max_length, transformer_folder
from poolhead.data.token_ids import FEATURE_KEYS, TokenIds, TokenRows
from poolhead.errors import UserTypeError

__all__ = ["FEATURE_KEYS", "SentenceTable", "load_tokenizer"]


def load_tokenizer(
    tokenizer: str | PreTrainedTokenizerBase, max_length: int | None = None
) -> tuple[PreTrainedTokenizerBase, int]:
    """The tokenizer and the number of tokens per sentence, chosen as ``load_backbone`` chooses them.

    Args:
        tokenizer: a hub id, an HF folder, a sentence-transformers folder, ``package:MODULE``, or
            a tokenizer object.
        max_length: tokens per sentence; default the smallest of the sentence-transformers
            max_seq_length, the tokenizer's model_max_length and the model's position
            embeddings, capped at 512 (so data and model always agree).
    """
    limits: list[Any] = []
    if isinstance(tokenizer, PreTrainedTokenizerBase):
        loaded = tokenizer
    elif isinstance(tokenizer, str):
        folder, sbert_max_length = transformer_folder(tokenizer)
        loaded = AutoTokenizer.from_pretrained(folder)
        limits += [sbert_max_length, _max_positions(folder)]
    else:
        kind = type(tokenizer).__name__
        raise UserTypeError(f"tokenizer must be a model name, a folder or a tokenizer object, got a {kind}")
    return loaded, resolve_max_length(max_length, [*limits, loaded.model_max_length])


def _max_positions(folder: str) -> int | None:
    try:
        return getattr(AutoConfig.from_pretrained(folder), "max_position_embeddings", None)
    except (OSError, ValueError):  # a tokenizer-only folder has no model config
        return None


class SentenceTable:
    """Unique sentences and their token ids (unpadded); a sentence's id is its position.

    Ids stay stable as sentences are added (a later ``setup("test")`` only appends), so features
    cached by id remain valid. Token ids sit in flat arrays (``TokenIds``); the sentences in one
    list, found again through a dict keyed by the sentence itself, which holds no second copy of
    the text (a hash digest per sentence would add one object per sentence instead).

    Args:
        tokenizer: a loaded tokenizer.
        max_length: longer sentences are truncated to this many tokens.
        num_proc: processes that tokenize (``datasets.map``); None tokenizes in this process.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int, num_proc: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.num_proc = num_proc
        self.sentences: list[str] = []
        self._ids: dict[str, int] = {}
        # Padded positions are masked out, so any id works where a tokenizer has no pad token (GPT-2).
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        fill = {"input_ids": pad_id or 0, "attention_mask": 0, "token_type_ids": tokenizer.pad_token_type_id}
        self.tokens = TokenIds(fill)

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def encodings(self) -> dict[str, TokenRows]:
        """Tokenizer output -> the unpadded ids of every sentence (``encodings["input_ids"][i]``)."""
        return self.tokens.rows()

    def ids_of(self, texts: Sequence[str]) -> np.ndarray:
        """Ids (int32) of ``texts``; sentences not seen before are appended, to be tokenized by ``tokenize_new``."""
        ids = np.empty(len(texts), dtype=np.int32)
        known, sentences = self._ids, self.sentences
        for position, text in enumerate(texts):
            number = known.setdefault(text, len(sentences))
            if number == len(sentences):
                sentences.append(text)
            ids[position] = number
        return ids

    def tokenize_new(self, progress: bool = False) -> None:
        """Tokenize, in one batched ``map``, the sentences appended since the last call."""
        new = self.sentences[len(self.tokens) :]
        self.tokens.extend(self.tokenizer, new, self.max_length, self.num_proc, progress)

    def add(self, texts: Sequence[str]) -> list[int]:
        """Ids of ``texts``; sentences not seen before are tokenized (in one batched call) and appended."""
        ids = self.ids_of(texts)
        self.tokenize_new()
        return ids.tolist()

    def lengths(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.tokens.lengths(ids)

    def pad(self, ids: Sequence[int] | np.ndarray) -> dict[str, Tensor]:
        """Right-padded features of sentences ``ids``, as long as the longest of them."""
        return self.tokens.pad(ids)
