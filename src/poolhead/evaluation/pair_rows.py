"""An evaluation set's rows as lists (``compare``, ``inspect``), checked against poolhead's schema with
errors that point at file, row and column; training reads the same checks as arrays (``data.row_checks``).

Schema (see ``poolhead.data.columns``): two text columns (``sentence1``, ``sentence2``, or
``anchor``, ``positive``), optional hard negatives, and ``score`` (a similarity in [0, 1]) or
``label`` (an integer class). Other columns are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poolhead.data.columns import shape_of
from poolhead.data.files import RawSplit
from poolhead.data.row_checks import check_rows

__all__ = ["PairRows", "label_kind_of", "validate_split"]


@dataclass
class PairRows:
    """The valid pairs of one file: sentences, labels, and each pair's row index in that file (0-based)."""

    sentence1: list[str]
    sentence2: list[str]
    labels: list[float] | list[int]
    rows: list[int]
    dropped_empty: int = 0
    #: one list of texts per hard-negative column (``negatives[k][i]``: pair i's k-th negative)
    negatives: list[list[str]] = field(default_factory=list)


def label_kind_of(raw: RawSplit) -> str:
    """``"score"``, ``"label"`` or ``"positive"``, after checking that the schema's columns are there."""
    return shape_of(raw.column_names, raw.source, raw.found).kind


def validate_split(raw: RawSplit, empty_sentences: str = "error", score_scale: float | None = None) -> PairRows:
    """The valid pairs of ``raw`` as lists (for evaluation sets); raises on the first kind of problem found.

    Training reads the checked rows as arrays instead (``check_rows``); both check alike.

    Args:
        raw: rows as read from one file.
        empty_sentences: ``"error"`` raises on empty or whitespace-only sentences; ``"skip"``
            drops those pairs (their count is in ``PairRows.dropped_empty``).
        score_scale: divide raw scores by this (e.g. 5.0 for 0-5 gold scores) before checking [0, 1].
    """
    checked = check_rows(raw, empty_sentences, score_scale)
    shape = shape_of(raw.column_names, raw.source, raw.found)
    texts: dict[str, list[str]] = {name: [] for name in (shape.first, shape.second, *shape.negatives)}
    rows = checked.rows
    for start, batch in raw.batches(list(texts)):
        low, high = np.searchsorted(rows, [start, start + len(batch[shape.first])])
        for name, values in batch.items():
            texts[name] += [values[i - start] for i in rows[low:high]]
    return PairRows(
        sentence1=texts[shape.first],
        sentence2=texts[shape.second],
        labels=checked.labels.tolist(),
        rows=rows.tolist(),
        dropped_empty=checked.dropped_empty,
        negatives=[texts[name] for name in shape.negatives],
    )
