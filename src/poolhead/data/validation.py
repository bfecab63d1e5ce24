"""Check the rows of a split against poolhead's schema, with errors that point at file, row and column.

Schema (see ``poolhead.data.columns``): two text columns (``sentence1``, ``sentence2``, or
``anchor``, ``positive``), optional hard negatives, and ``score`` (a similarity in [0, 1]) or
``label`` (an integer class). Other columns are ignored.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from poolhead.data.columns import EXPECTED_SCHEMA, shape_of
from poolhead.data.files import RawSplit
from poolhead.errors import UserValueError

__all__ = ["EXPECTED_SCHEMA", "PairRows", "label_kind_of", "validate_split"]
EMPTY_SENTENCE_POLICIES = ("error", "skip")
# Enough examples to see the pattern; the count says how many more there are.
MAX_LISTED = 5


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


def seeded_subset(count: int, limit: int | None, seed: int) -> list[int]:
    """Indices of a seeded random ``limit`` of ``count`` pairs in file order (not the first rows: files such
    as STS-B are ordered by genre), for training and compare alike."""
    if limit is None or limit >= count:
        return list(range(count))
    return sorted(random.Random(seed).sample(range(count), limit))


def label_kind_of(raw: RawSplit) -> str:
    """``"score"``, ``"label"`` or ``"positive"``, after checking that the schema's columns are there."""
    return shape_of(list(raw.columns), raw.source, raw.found).kind


def validate_split(raw: RawSplit, empty_sentences: str = "error", score_scale: float | None = None) -> PairRows:
    """The valid pairs of ``raw``; raises on the first kind of problem found, listing the rows.

    Args:
        raw: rows as read from one file.
        empty_sentences: ``"error"`` raises on empty or whitespace-only sentences; ``"skip"``
            drops those pairs (their count is in ``PairRows.dropped_empty``).
        score_scale: divide raw scores by this (e.g. 5.0 for 0-5 gold scores) before checking [0, 1].
    """
    if empty_sentences not in EMPTY_SENTENCE_POLICIES:
        choices = ", ".join(EMPTY_SENTENCE_POLICIES)
        raise UserValueError(f"empty_sentences must be one of {choices}, got {empty_sentences!r}")
    shape = shape_of(list(raw.columns), raw.source, raw.found)
    texts = [shape.first, shape.second, *shape.negatives]
    keep = _rows_with_text(raw, empty_sentences, texts)
    values = [raw.columns[shape.target][i] for i in keep] if shape.target else []
    if shape.target == "score":
        labels: list = _scores(raw, keep, values, score_scale)
    elif shape.target == "label":
        labels = _labels(raw, keep, values)
    else:
        labels = [1] * len(keep)  # every pair is an (anchor, positive): label 1, as for paraphrase data
    return PairRows(
        sentence1=[raw.columns[shape.first][i] for i in keep],
        sentence2=[raw.columns[shape.second][i] for i in keep],
        labels=labels,
        rows=keep,
        dropped_empty=len(raw) - len(keep),
        negatives=[[raw.columns[column][i] for i in keep] for column in shape.negatives],
    )


def _rows_with_text(raw: RawSplit, empty_sentences: str, texts: list[str]) -> list[int]:
    not_text, empty = [], []
    for column in texts:
        for i, value in enumerate(raw.columns[column]):
            if value is None or (isinstance(value, str) and not value.strip()):
                empty.append((i, column))
            elif not isinstance(value, str):
                not_text.append((i, column, value))
    if not_text:
        listed = [f"{raw.rows(i)} column {column} ({value!r})" for i, column, value in sorted(not_text)]
        raise UserValueError(
            f"{raw.source}: {len(not_text)} sentence(s) are not text: {_listing(listed)} ({raw.rows.note}); "
            f"{', '.join(texts)} must hold strings"
        )
    if empty and empty_sentences == "error":
        listed = [f"{raw.rows(i)} column {column}" for i, column in sorted(empty)]
        raise UserValueError(
            f"{raw.source}: {len(empty)} empty or whitespace-only sentence(s): {_listing(listed)} ({raw.rows.note}); "
            f"fill them in, or pass empty_sentences='skip' to drop those pairs"
        )
    dropped = {i for i, _ in empty}
    return [i for i in range(len(raw)) if i not in dropped]


def _scores(raw: RawSplit, keep: list[int], values: list[Any], score_scale: float | None) -> list[float]:
    numbers = [_number(value) for value in values]
    bad = [(keep[j], values[j]) for j, n in enumerate(numbers) if n is None or math.isnan(n)]
    if bad:
        listed = [f"{raw.rows(i)} ({_shown(value)})" for i, value in bad]
        raise UserValueError(
            f"{raw.source}: column 'score' must hold numbers; {len(bad)} row(s) do not: {_listing(listed)} "
            f"({raw.rows.note})"
        )
    if score_scale is not None:
        if not score_scale > 0:
            raise UserValueError(
                f"score_scale must be a positive number (e.g. 5.0 for 0-5 scores), got {score_scale!r}"
            )
        if score_scale > 1 and numbers and max(numbers) <= 1:
            # Dividing [0, 1] scores again squeezes them into [0, 1/scale]: silently wrong targets.
            raise UserValueError(
                f"{raw.source}: every score already lies in [0, 1] (largest {max(numbers):g}), yet "
                f"score_scale={score_scale:g} would divide them again; this file is on the 0-1 scale: "
                f"rescale it like the other splits, or drop score_scale if all splits are 0-1"
            )
        numbers = [n / score_scale for n in numbers]
    outside = [(keep[j], values[j]) for j, n in enumerate(numbers) if not 0.0 <= n <= 1.0]
    if outside:
        listed = [f"{raw.rows(i)} ({_shown(value)})" for i, value in outside]
        scaled = f" after dividing by score_scale={score_scale:g}" if score_scale else ""
        raise UserValueError(
            f"{raw.source}: column 'score' must lie in [0, 1]{scaled}; {len(outside)} row(s) do not: "
            f"{_listing(listed)} ({raw.rows.note}); {_scale_hint(numbers, score_scale)}"
        )
    return numbers


def _scale_hint(numbers: list[float], score_scale: float | None) -> str:
    highest, lowest = max(numbers), min(numbers)
    if score_scale is not None:
        return f"check score_scale (scaled scores run from {lowest:g} to {highest:g})"
    if lowest >= 0 and highest <= 5:
        return "these look like 0-5 similarity scores: pass score_scale=5.0"
    if lowest >= 0 and math.isfinite(highest):
        return f"divide them into [0, 1], e.g. with score_scale={highest:g} (the largest score)"
    return f"scores run from {lowest:g} to {highest:g}; rescale them into [0, 1]"


def _labels(raw: RawSplit, keep: list[int], values: list[Any]) -> list[int]:
    labels = [_class(value) for value in values]
    bad = [(keep[j], values[j]) for j, label in enumerate(labels) if label is None]
    if bad:
        listed = [f"{raw.rows(i)} ({_shown(value)})" for i, value in bad]
        raise UserValueError(
            f"{raw.source}: column 'label' must hold integer classes 0, 1, ...; {len(bad)} row(s) do not: "
            f"{_listing(listed)} ({raw.rows.note}); if these are similarity scores, name the column 'score' "
            f"(with score_scale if they are not in [0, 1])"
        )
    return labels


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _class(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    number = _number(value)
    if number is None or not math.isfinite(number) or not number.is_integer() or number < 0:
        return None
    return int(number)


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "empty"
    return repr(value)


def _listing(items: list[str]) -> str:
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return "; ".join(items[:MAX_LISTED]) + more
