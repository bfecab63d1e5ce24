"""Token ids of many sentences in flat arrays, tokenized once with ``datasets.map`` (``num_proc`` processes when asked).

A Python list per sentence costs about 36 bytes a token; here ``input_ids`` cost 4 (int32) and
the attention mask and token types 1 each (uint8), plus one offset per sentence. ``map`` writes
its output to an Arrow file in a scratch folder, which is read back a batch at a time (two passes:
lengths, then ids), so the tokenizer's output never sits in memory beside the arrays it fills; its
input, the new sentences, goes to a file in that folder too, a batch at a time.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from poolhead.data.arrow_batches import BATCH_ROWS, ArrowRows
from poolhead.data.progress import datasets_progress

#: what the backbone's forward takes from a tokenizer; token_type_ids only when the tokenizer makes them
FEATURE_KEYS = ("input_ids", "attention_mask", "token_type_ids")
#: sentences per tokenizer call inside ``map``
MAP_BATCH = 1000


class TokenRows(Sequence):
    """One tokenizer output (``input_ids``, ...) of every sentence, row ``i`` a numpy array of sentence ``i``."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray) -> None:
        self.flat, self.offsets = flat, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        index = range(len(self))[index]  # negative indices, and IndexError past the end
        return self.flat[self.offsets[index] : self.offsets[index + 1]]


class TokenIds:
    """Unpadded token ids of sentences ``0 .. len - 1``, appended in batches, padded into batches on request.

    Args:
        fill: the padding value of each tokenizer output (``input_ids``: the pad token, masks: 0).
    """

    def __init__(self, fill: dict[str, int]) -> None:
        self.fill = fill
        self.flat: dict[str, np.ndarray] = {}
        self.offsets = np.zeros(1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def nbytes(self) -> int:
        """Bytes held: the flat arrays and the offsets."""
        return self.offsets.nbytes + sum(array.nbytes for array in self.flat.values())

    def rows(self) -> dict[str, TokenRows]:
        return {key: TokenRows(flat, self.offsets) for key, flat in self.flat.items()}

    def lengths(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        return self.offsets[ids + 1] - self.offsets[ids]

    def pad(self, ids: Sequence[int] | np.ndarray) -> dict[str, Tensor]:
        """Right-padded int64 features of sentences ``ids``, as long as the longest of them."""
        ids = np.asarray(ids, dtype=np.int64)
        starts, lengths = self.offsets[ids], self.lengths(ids)
        positions = np.arange(lengths.max())
        real = positions[None, :] < lengths[:, None]  # (B, T): which places hold a token
        taken = (starts[:, None] + positions[None, :])[real]
        features = {}
        for key, flat in self.flat.items():
            padded = np.full(real.shape, self.fill[key], dtype=np.int64)
            padded[real] = flat[taken]
            features[key] = torch.from_numpy(padded)
        return features

    def extend(
        self,
        tokenizer: PreTrainedTokenizerBase,
        texts: Sequence[str],
        max_length: int,
        num_proc: int | None = None,
        progress: bool = False,
    ) -> None:
        """Tokenize ``texts`` (truncated to ``max_length``) and append them, with ``num_proc`` processes if given."""
        if not texts:
            return
        with tempfile.TemporaryDirectory(prefix="poolhead-tokens-") as scratch:
            # Only the file names: the dataset, and the memory map it opened, go before the arrays are made.
            tokenized = ArrowRows.of(_tokenize_to_disk(tokenizer, texts, max_length, num_proc, progress, Path(scratch)))
            pa.default_memory_pool().release_unused()  # the texts' copy in Arrow
            keys = [key for key in FEATURE_KEYS if key in tokenized.column_names]
            # First pass: the lengths, so each array is allocated once, at its final size.
            lengths = [pc.list_value_length(batch.column(0)).to_numpy() for _, batch in tokenized.batches(keys[:1])]
            ends = self.offsets[-1] + np.cumsum(np.concatenate(lengths), dtype=np.int64)
            at = int(self.offsets[-1])
            flat = {key: _grown(self.flat.get(key), int(ends[-1]), key) for key in keys}
            for _, table in tokenized.batches(keys):
                for key in keys:
                    values = pc.list_flatten(table.column(key)).to_numpy()
                    flat[key][at : at + len(values)] = values
                at += len(values)
            del tokenized  # a dataset kept in it (not a plain file) goes before the scratch folder
        self.flat, self.offsets = flat, np.concatenate([self.offsets, ends])


def _grown(current: np.ndarray | None, size: int, key: str) -> np.ndarray:
    """An array of ``size`` tokens for ``key``, starting with the ``current`` ones."""
    grown = np.empty(size, dtype=np.int32 if key == "input_ids" else np.uint8)
    if current is not None:
        grown[: len(current)] = current
    return grown


def _write_texts(texts: Sequence[str], path: Path) -> Path:
    """``texts`` as an Arrow file, written a batch at a time (``Dataset.from_dict`` converts all at once, in
    several copies)."""
    schema = pa.schema([("text", pa.large_string())])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for start in range(0, len(texts), BATCH_ROWS):
            writer.write_batch(
                pa.record_batch([pa.array(texts[start : start + BATCH_ROWS], pa.large_string())], schema)
            )
    return path


def _tokenize_to_disk(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    num_proc: int | None,
    progress: bool,
    scratch: Path,
) -> Any:
    from datasets import Dataset, Features, List, Value

    probe = tokenizer(["a"], truncation=True, max_length=max_length, padding=False)
    keys = [key for key in FEATURE_KEYS if key in probe]
    small = {key: "uint8" for key in keys if key != "input_ids"}
    features = Features({key: List(Value(small.get(key, "int32"))) for key in keys})

    def tokenize(batch: dict[str, list[str]]) -> dict[str, list]:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length, padding=False)
        return {key: encoded[key] for key in keys}

    sentences = Dataset.from_file(str(_write_texts(texts, scratch / "sentences.arrow")))
    workers = min(num_proc, len(texts)) if num_proc else None
    with datasets_progress(progress):
        return sentences.map(
            tokenize,
            batched=True,
            batch_size=MAP_BATCH,
            num_proc=workers if workers and workers > 1 else None,
            remove_columns=["text"],
            features=features,
            cache_file_name=str(scratch / "tokens.arrow"),
            # a fresh name: hashing the tokenizer for a fingerprint costs time, and nothing here is reused
            new_fingerprint=uuid.uuid4().hex,
            desc=f"Tokenizing {len(texts):,} unique sentences",
        )
