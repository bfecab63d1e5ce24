"""SentenceTable: every unique sentence once, tokenized once; pairs refer to sentences by id.

STS-B repeats many sentences across pairs and splits. Keeping one row per unique sentence
means each is tokenized once here, and a frozen backbone's features can be cached per id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from poolhead.backbone import resolve_max_length, transformer_folder
from poolhead.errors import UserTypeError

#: what the backbone's forward takes from a tokenizer; token_type_ids only when the tokenizer makes them
FEATURE_KEYS = ("input_ids", "attention_mask", "token_type_ids")


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
    cached by id remain valid.

    Args:
        tokenizer: a loaded tokenizer.
        max_length: longer sentences are truncated to this many tokens.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.sentences: list[str] = []
        self.encodings: dict[str, list[list[int]]] = {}
        self._ids: dict[str, int] = {}
        # Padded positions are masked out, so any id works where a tokenizer has no pad token (GPT-2).
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.fill = {"input_ids": pad_id or 0, "attention_mask": 0, "token_type_ids": tokenizer.pad_token_type_id}

    def __len__(self) -> int:
        return len(self.sentences)

    def add(self, texts: Sequence[str]) -> list[int]:
        """Ids of ``texts``; sentences not seen before are tokenized (in one batched call) and appended."""
        new = [text for text in dict.fromkeys(texts) if text not in self._ids]
        if new:
            tokenized = self.tokenizer(new, truncation=True, max_length=self.max_length, padding=False)
            for key in FEATURE_KEYS:
                if key in tokenized:
                    self.encodings.setdefault(key, []).extend(tokenized[key])
            for text in new:
                self._ids[text] = len(self.sentences)
                self.sentences.append(text)
        return [self._ids[text] for text in texts]

    def lengths(self, ids: Sequence[int]) -> list[int]:
        input_ids = self.encodings["input_ids"]
        return [len(input_ids[i]) for i in ids]

    def pad(self, ids: Sequence[int]) -> dict[str, Tensor]:
        """Right-padded features of sentences ``ids``, as long as the longest of them."""
        longest = max(self.lengths(ids))
        features = {}
        for key, rows in self.encodings.items():
            fill = self.fill[key]
            features[key] = torch.tensor([rows[i] + [fill] * (longest - len(rows[i])) for i in ids], dtype=torch.long)
        return features
