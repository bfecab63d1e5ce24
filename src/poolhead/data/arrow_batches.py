"""A split's rows in batches, read from the Arrow files ``datasets`` keeps on disk without memory-mapping them.

``datasets`` memory-maps its tables, and every page a scan touches then counts in the process's
resident memory (file-backed, yet in its RSS all the same): one pass over a million-pair table
adds the table's size, and merely opening one maps a good part of it. ``ArrowRows`` keeps only
the names of the files, so the ``datasets.Dataset`` and its mapping can go at once; reading the
files as a stream copies one record batch at a time into memory that is freed again, so a pass
holds one batch. A table that is not one plain run of cache files (held in memory, or a view with
an index mapping or a lazy transform) is kept and read through ``datasets`` itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

#: rows converted to Python objects at a time: large enough to be fast, small enough to stay flat
BATCH_ROWS = 10_000


@dataclass
class ArrowRows:
    """Rows stored as Arrow: a run of ``datasets``' cache files, or else the ``datasets.Dataset`` itself."""

    column_names: list[str]
    num_rows: int
    files: list[str] = field(default_factory=list)
    dataset: Any = None

    @classmethod
    def of(cls, dataset: Any) -> ArrowRows:
        """The rows of a ``datasets.Dataset``; drop the dataset afterwards to unmap its files."""
        files = plain_cache_files(dataset)
        names, count = list(dataset.column_names), len(dataset)
        return cls(names, count, dataset=dataset) if files is None else cls(names, count, files=files)

    def __len__(self) -> int:
        return self.num_rows

    def batches(self, columns: list[str], batch_rows: int = BATCH_ROWS) -> Iterator[tuple[int, pa.Table]]:
        """(first row, table of ``columns``) per batch of at most ``batch_rows`` rows, in order."""
        if self.dataset is None:
            yield from _file_batches(self.files, columns, batch_rows)
            return
        start = 0
        for table in self.dataset.select_columns(columns).with_format("arrow").iter(batch_size=batch_rows):
            yield start, table
            start += table.num_rows
        # Arrow's allocator keeps freed batches for reuse; hand them back, or they sit beside what comes next.
        pa.default_memory_pool().release_unused()


def _file_batches(files: list[str], columns: list[str], batch_rows: int) -> Iterator[tuple[int, pa.Table]]:
    start = 0
    for file in files:
        with pa.OSFile(file) as stream:
            for record_batch in pa.ipc.open_stream(stream):
                # A parquet row group can be one record batch of a million rows: cut it down.
                for offset in range(0, record_batch.num_rows, batch_rows):
                    piece = record_batch.slice(offset, batch_rows).select(columns)
                    yield start, pa.Table.from_batches([piece])
                    start += piece.num_rows
    pa.default_memory_pool().release_unused()


def plain_cache_files(dataset: Any) -> list[str] | None:
    """The Arrow files whose rows, in order, are exactly ``dataset``'s, or None when it is anything else."""
    from datasets.table import ConcatenationTable, MemoryMappedTable

    if getattr(dataset, "_indices", None) is not None:  # a select / shuffle view: rows are not in file order
        return None
    table = getattr(dataset, "data", None)
    if isinstance(table, MemoryMappedTable):
        blocks = [[table]]
    elif isinstance(table, ConcatenationTable):
        blocks = table.blocks
    else:
        return None
    whole_files = all(len(row) == 1 and isinstance(row[0], MemoryMappedTable) and _same_rows(row[0]) for row in blocks)
    return [row[0].path for row in blocks] if whole_files else None


def _same_rows(table: Any) -> bool:
    # A replay is a lazy slice, cast or rename of the file's table, which the file does not show; new schema
    # metadata (``datasets`` stores its features there) leaves every value as it is.
    return all(replay[0] == "replace_schema_metadata" for replay in table.replays)
