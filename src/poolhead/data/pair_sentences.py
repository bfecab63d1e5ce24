"""The sentence ids of a split's chosen pairs, read column by column from its files a batch at a time."""

from __future__ import annotations

import numpy as np

from poolhead.data.files import RawSplit
from poolhead.data.progress import progress_bar
from poolhead.data.sentences import SentenceTable


def sentence_ids(
    raws: list[RawSplit],
    pair_ids: np.ndarray,
    columns: list[str],
    table: SentenceTable,
    progress: bool = False,
) -> list[np.ndarray]:
    """Per text column, the id in ``table`` of each pair's sentence; new sentences are appended to it.

    Columns are read one after the other over all files, so sentences get their ids in the order
    "every first sentence, then every second one, then the negatives": the order of a single
    ``table.add([*sentence1, *sentence2, *negatives])``.

    Args:
        raws: the split's files (shards), in order.
        pair_ids: the chosen pairs, as ascending row numbers running on across the files.
        columns: the text columns (roles), e.g. ``["sentence1", "sentence2"]``.
        table: where sentences get their ids.
        progress: show a bar over the rows read.
    """
    ids = [np.empty(len(pair_ids), dtype=np.int32) for _ in columns]
    total = sum(len(raw) for raw in raws) * len(columns)
    with progress_bar(total, "Finding the unique sentences", progress) as bar:
        for column, found in zip(columns, ids, strict=True):
            offset = 0
            for raw in raws:
                for start, batch in raw.batches([column]):
                    texts = batch[column]
                    low, high = np.searchsorted(pair_ids, [offset + start, offset + start + len(texts)])
                    found[low:high] = table.ids_of([texts[i] for i in pair_ids[low:high] - (offset + start)])
                    bar.update(len(texts))
                offset += len(raw)
    return ids
