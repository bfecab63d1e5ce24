"""The texts of a corpus: one column of a csv / jsonl / parquet file or a hub dataset, planned into shards.

The rows stay in a memory-mapped Arrow table (``datasets``' own cache): reading a batch touches
only that batch, so memory does not grow with the corpus. Shard ``k`` is the rows
``[k * shard_size, (k + 1) * shard_size)``; a shard is the unit a process writes and a rerun skips.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from torch.utils.data import Dataset, Sampler

from poolhead.data.files import (
    FORMATS,
    TEXT_SUFFIXES,
    check_has_rows,
    check_utf8,
    csv_as_text,
    is_dataset_repository,
    quiet_datasets,
)
from poolhead.errors import UserValueError

#: rows per read when hashing a corpus: bounded memory, whatever its size
DIGEST_BATCH_ROWS = 50_000


def load_table(source: str, split: str = "train") -> datasets.Dataset:
    """A local csv / tsv / jsonl / parquet file (or a folder of such shards), or the ``split`` of a hub dataset
    (by id, or a local folder laid out as a hub dataset repository)."""
    path = Path(source)
    if is_dataset_repository(source):
        return load_hub_table(source, split)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in FORMATS)
        if not files or len({f.suffix.lower() for f in files}) > 1:
            raise UserValueError(
                f"{source} holds {', '.join(f.name for f in files) or 'no csv/tsv/jsonl/parquet files'}; "
                f"give one file, or a folder of files of one format"
            )
    elif path.is_file():
        files = [path]
    else:
        return load_hub_table(source, split)
    suffix = files[0].suffix.lower()
    if suffix not in FORMATS:
        raise UserValueError(f"{source}: unsupported file type {suffix!r}; use one of {', '.join(FORMATS)}")
    builder, options = FORMATS[suffix]
    options = dict(options)
    if suffix in TEXT_SUFFIXES:
        for file in files:
            check_utf8(file)
            check_has_rows(file, header=builder == "csv")
    elif suffix == ".parquet" and not any(pq.ParquetFile(file).metadata.num_rows for file in files):
        raise UserValueError(f"{source} holds no rows; give a file with one text per row")
    if builder == "csv":
        options.update(csv_as_text(files[0], options.get("sep", ",")))
    with quiet_datasets():
        return datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train", **options)


def load_hub_table(name: str, split: str) -> datasets.Dataset:
    try:
        return datasets.load_dataset(name, split=split)
    except Exception as error:
        raise UserValueError(
            f"{name!r} is not a local file, and its split {split!r} does not load as a hub dataset "
            f"({type(error).__name__}: {error}); check the path, --split, or the network / HF_HUB_OFFLINE"
        ) from error


class CorpusTexts(Dataset):
    """Rows of ``table``: their number, id (``id_column``, default the row number) and text (``column``).

    Args:
        table: the Arrow table (see :func:`load_table`).
        column: the column holding the texts.
        id_column: the column holding each text's id; None numbers the rows from 0.
        shard_size: rows per shard (the last shard may be shorter).
    """

    def __init__(self, table: datasets.Dataset, column: str, id_column: str | None = None, shard_size: int = 100_000):
        for name, option in ((column, "--column"), (id_column, "--id-column")):
            if name is not None and name not in table.column_names:
                raise UserValueError(
                    f"column {name!r} not found (columns: {', '.join(table.column_names)}); set {option} to one of them"
                )
        if shard_size < 1:
            raise UserValueError(f"shard_size must be >= 1, got {shard_size}")
        if id_column is not None:
            check_ids(table, id_column)
        self.table = table
        self.column = column
        self.id_column = id_column
        self.shard_size = shard_size

    def __len__(self) -> int:
        return len(self.table)

    @property
    def num_shards(self) -> int:
        return math.ceil(len(self) / self.shard_size)

    def shard_rows(self, shard: int) -> range:
        return range(shard * self.shard_size, min((shard + 1) * self.shard_size, len(self)))

    def content_digest(self) -> str:
        """SHA-256 of the texts and ids in row order: an input edited in place, even with as many rows, differs.

        Read from the memory-mapped table in batches of Arrow buffers, never as Python strings.
        """
        digest = hashlib.sha256()
        names = [name for name in (self.column, self.id_column) if name is not None]
        for batch in self.table.with_format("arrow").iter(batch_size=DIGEST_BATCH_ROWS):
            for name in names:
                values = batch.column(name).combine_chunks().cast(pa.large_string())
                _, offsets_buffer, data_buffer = values.buffers()
                offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[values.offset : values.offset + len(values) + 1]
                digest.update(name.encode() + np.diff(offsets).tobytes())
                digest.update(values.is_null().to_numpy(zero_copy_only=False).tobytes())
                if data_buffer is not None:
                    digest.update(memoryview(data_buffer)[offsets[0] : offsets[-1]])
        return digest.hexdigest()

    def texts(self, rows: range) -> list[str]:
        return self.table[rows.start : rows.stop][self.column]

    def __getitems__(self, rows: list[int]) -> dict[str, list[Any]]:
        # One Arrow read per batch instead of one per row.
        batch = self.table[rows]
        texts = batch[self.column]
        bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
        if bad is not None:
            raise UserValueError(
                f"row {rows[bad]} of column {self.column!r} is {texts[bad]!r}, not a text; "
                f"remove or fill the empty rows, or choose another --column"
            )
        ids = batch[self.id_column] if self.id_column else list(rows)
        return {"rows": list(rows), "ids": ids, "texts": texts}

    def __getitem__(self, row: int) -> dict[str, list[Any]]:
        return self.__getitems__([row])


def check_ids(table: datasets.Dataset, id_column: str) -> None:
    """Every id present and unique: an embedding found by its id must be that text's, and only that text's.

    Read with Arrow compute over the memory-mapped column, so a large corpus is not loaded as Python objects.
    """
    column = table.data.column(id_column)
    missing = column.null_count + (pc.sum(pc.is_nan(column)).as_py() or 0 if pa.types.is_floating(column.type) else 0)
    if missing:
        row = next(i for i, value in enumerate(column.to_pylist()) if value is None or value != value)
        raise UserValueError(
            f"--id-column {id_column!r} is missing (empty or NaN) in {missing} row(s), the first being row {row}; "
            f"give every row an id, or leave --id-column out to number the rows"
        )
    counts = pc.value_counts(column)
    repeated = pc.filter(counts, pc.greater(counts.field("counts"), 1))
    if len(repeated):
        first = repeated[0].as_py()
        raise UserValueError(
            f"--id-column {id_column!r} has {len(repeated)} repeated id(s), e.g. {first['values']!r} "
            f"({first['counts']} times); ids must be unique so each embedding can be found by its id"
        )


class ShardBatchSampler(Sampler[list[int]]):
    """Batches of rows from the given shards, one shard after another, never mixing two shards.

    Within a shard, rows go longest first (as ``SentenceTransformer.encode`` sorts), so batches
    waste little compute on padding; sorting a shard costs only its own texts' lengths.
    """

    def __init__(self, corpus: CorpusTexts, shards: list[int], batch_size: int) -> None:
        if batch_size < 1:
            raise UserValueError(f"batch_size must be >= 1, got {batch_size}")
        self.corpus = corpus
        self.shards = shards
        self.batch_size = batch_size

    def __len__(self) -> int:
        return sum(math.ceil(len(self.corpus.shard_rows(s)) / self.batch_size) for s in self.shards)

    def __iter__(self) -> Iterator[list[int]]:
        for shard in self.shards:
            rows = self.corpus.shard_rows(shard)
            lengths = [len(text) if isinstance(text, str) else 0 for text in self.corpus.texts(rows)]
            order = sorted(range(len(rows)), key=lambda i: -lengths[i])
            for start in range(0, len(order), self.batch_size):
                yield [rows[i] for i in order[start : start + self.batch_size]]


def rank_shards(pending: list[int], rank: int, world_size: int) -> list[int]:
    """The shards one process encodes: every ``world_size``-th of those not written yet."""
    return pending[rank::world_size]
