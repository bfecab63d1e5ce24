"""Check a split's rows against poolhead's schema in one pass over batches; errors point at file, row and column.

Memory stays flat in the number of rows: a batch at a time is held as Python objects, and what
the pass keeps is two arrays (the valid rows, their labels) plus the first few rows of each kind
of problem, which the error lists.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from poolhead.data.columns import shape_of
from poolhead.data.files import RawSplit
from poolhead.data.progress import progress_bar
from poolhead.errors import UserValueError

EMPTY_SENTENCE_POLICIES = ("error", "skip")
# Enough examples to see the pattern; the count says how many more there are.
MAX_LISTED = 5


@dataclass
class CheckedRows:
    """The valid pairs of one file: their row indices in that file (0-based, ascending) and labels."""

    rows: np.ndarray  # int64
    labels: np.ndarray  # scores (float), integer classes, or 1 for (anchor, positive) pairs
    dropped_empty: int = 0


@dataclass
class Findings:
    """How many rows show one kind of problem, and the first of them in row order (what a message lists)."""

    count: int = 0
    first: list = field(default_factory=list)

    def add(self, items: list) -> None:
        self.count += len(items)
        if items and len(self.first) < MAX_LISTED:  # batches come in row order: later ones never list earlier
            self.first = sorted(self.first + items)[:MAX_LISTED]

    def listing(self, render) -> str:
        more = f" and {self.count - MAX_LISTED} more" if self.count > MAX_LISTED else ""
        return "; ".join(render(item) for item in self.first) + more


@dataclass
class Scan:
    """What one pass found: each kind of problem, and the range of the valid scores."""

    not_text: Findings = field(default_factory=Findings)
    empty: Findings = field(default_factory=Findings)
    bad_target: Findings = field(default_factory=Findings)
    outside: Findings = field(default_factory=Findings)
    lowest: float = math.inf
    highest: float = -math.inf
    kept: int = 0


def check_rows(
    raw: RawSplit,
    empty_sentences: str = "error",
    score_scale: float | None = None,
    score_dtype: Any = np.float64,
    progress: bool = False,
) -> CheckedRows:
    """The valid pairs of ``raw``; raises on the first kind of problem found, listing the rows.

    Args:
        raw: rows as read from one file.
        empty_sentences: ``"error"`` raises on empty or whitespace-only sentences; ``"skip"``
            drops those pairs (their count is in ``CheckedRows.dropped_empty``).
        score_scale: divide raw scores by this (e.g. 5.0 for 0-5 gold scores) before checking [0, 1].
        score_dtype: numpy type the scores are kept in.
        progress: show a bar over the rows.
    """
    if empty_sentences not in EMPTY_SENTENCE_POLICIES:
        choices = ", ".join(EMPTY_SENTENCE_POLICIES)
        raise UserValueError(f"empty_sentences must be one of {choices}, got {empty_sentences!r}")
    shape = shape_of(raw.column_names, raw.source, raw.found)
    texts = [shape.first, shape.second, *shape.negatives]
    rows = np.empty(len(raw), dtype=np.int64)
    labels = np.ones(len(raw), dtype=score_dtype if shape.target == "score" else np.int64)
    scan = Scan()
    with progress_bar(len(raw), f"Checking {raw.source}", progress) as bar:
        for start, batch in raw.batches(texts + ([shape.target] if shape.target else [])):
            keep = _rows_with_text(batch, texts, start, scan)
            count = len(keep)
            rows[scan.kept : scan.kept + count] = keep
            if shape.target is not None:
                values = [batch[shape.target][i - start] for i in keep]
                scored = shape.target == "score"
                part = _scores(values, keep, score_scale, scan) if scored else _labels(values, keep, scan)
                labels[scan.kept : scan.kept + count] = part
            scan.kept += count
            bar.update(len(batch[texts[0]]))
    _raise_problems(raw, scan, texts, empty_sentences, shape.target, score_scale)
    return CheckedRows(rows[: scan.kept].copy(), labels[: scan.kept].copy(), dropped_empty=len(raw) - scan.kept)


def is_blank(text: str) -> bool:
    """Nothing to embed: empty, whitespace, or invisible format characters only (zero-width space, BOM, joiners).

    Such a sentence tokenizes to [CLS] [SEP] alone, so its "embedding" says nothing about its text.
    """
    stripped = text.strip()
    if not stripped or stripped.isascii():  # the common case costs one strip
        return not stripped
    return all(char.isspace() or unicodedata.category(char) == "Cf" for char in stripped)


def _rows_with_text(batch: dict[str, list], texts: list[str], start: int, scan: Scan) -> list[int]:
    not_text, empty = [], []
    for column in texts:
        for i, value in enumerate(batch[column], start=start):
            if value is None or (isinstance(value, str) and is_blank(value)):
                empty.append((i, column))
            elif not isinstance(value, str):
                not_text.append((i, column, value))
    scan.not_text.add(not_text)
    scan.empty.add(empty)
    dropped = {i for i, _ in empty} | {i for i, _, _ in not_text}
    return [i for i in range(start, start + len(batch[texts[0]])) if i not in dropped]


def _scores(values: list[Any], keep: list[int], score_scale: float | None, scan: Scan) -> np.ndarray:
    numbers = [_number(value) for value in values]
    bad = [(keep[j], values[j]) for j, n in enumerate(numbers) if n is None or math.isnan(n)]
    scan.bad_target.add(bad)
    if bad or not numbers:
        return np.zeros(len(numbers))  # an error follows: the values do not matter
    found = np.asarray(numbers, dtype=np.float64)
    scan.lowest, scan.highest = min(scan.lowest, found.min()), max(scan.highest, found.max())
    if score_scale is not None and score_scale > 0:
        found = found / score_scale
    outside = np.flatnonzero(~((found >= 0.0) & (found <= 1.0)))
    scan.outside.add([(keep[j], values[j]) for j in outside])
    return found


def _labels(values: list[Any], keep: list[int], scan: Scan) -> list[int]:
    labels = [_class(value) for value in values]
    scan.bad_target.add([(keep[j], values[j]) for j, label in enumerate(labels) if label is None])
    return [0 if label is None else label for label in labels]


def _raise_problems(
    raw: RawSplit, scan: Scan, texts: list[str], empty_sentences: str, target: str | None, score_scale: float | None
) -> None:
    """The first kind of problem the pass found, as the error that lists its rows; nothing when all is well."""
    if scan.not_text.count:
        listed = scan.not_text.listing(lambda item: f"{raw.rows(item[0])} column {item[1]} ({item[2]!r})")
        raise UserValueError(
            f"{raw.source}: {scan.not_text.count} sentence(s) are not text: {listed} ({raw.rows.note}); "
            f"{', '.join(texts)} must hold strings"
        )
    if scan.empty.count and empty_sentences == "error":
        listed = scan.empty.listing(lambda item: f"{raw.rows(item[0])} column {item[1]}")
        raise UserValueError(
            f"{raw.source}: {scan.empty.count} empty or whitespace-only sentence(s): {listed} ({raw.rows.note}); "
            f"fill them in, or pass empty_sentences='skip' to drop those pairs"
        )
    rendered = scan.bad_target.listing(lambda item: f"{raw.rows(item[0])} ({_shown(item[1])})")
    if target == "label" and scan.bad_target.count:
        raise UserValueError(
            f"{raw.source}: column 'label' must hold integer classes 0, 1, ...; {scan.bad_target.count} row(s) do not: "
            f"{rendered} ({raw.rows.note}); if these are similarity scores, name the column 'score' "
            f"(with score_scale if they are not in [0, 1])"
        )
    if target == "score":
        _raise_score_problems(raw, scan, rendered, score_scale)


def _raise_score_problems(raw: RawSplit, scan: Scan, rendered: str, score_scale: float | None) -> None:
    if scan.bad_target.count:
        raise UserValueError(
            f"{raw.source}: column 'score' must hold numbers; {scan.bad_target.count} row(s) do not: {rendered} "
            f"({raw.rows.note})"
        )
    if score_scale is not None:
        if not score_scale > 0:
            raise UserValueError(
                f"score_scale must be a positive number (e.g. 5.0 for 0-5 scores), got {score_scale!r}"
            )
        if score_scale > 1 and scan.kept and scan.highest <= 1:
            # Dividing [0, 1] scores again squeezes them into [0, 1/scale]: silently wrong targets.
            raise UserValueError(
                f"{raw.source}: every score already lies in [0, 1] (largest {scan.highest:g}), yet "
                f"score_scale={score_scale:g} would divide them again; this file is on the 0-1 scale: "
                f"rescale it like the other splits, or drop score_scale if all splits are 0-1"
            )
    if scan.outside.count:
        listed = scan.outside.listing(lambda item: f"{raw.rows(item[0])} ({_shown(item[1])})")
        scaled = f" after dividing by score_scale={score_scale:g}" if score_scale else ""
        divisor = score_scale or 1.0
        lowest, highest = scan.lowest / divisor, scan.highest / divisor
        raise UserValueError(
            f"{raw.source}: column 'score' must lie in [0, 1]{scaled}; {scan.outside.count} row(s) do not: "
            f"{listed} ({raw.rows.note}); {_scale_hint(lowest, highest, score_scale)}"
        )


def _scale_hint(lowest: float, highest: float, score_scale: float | None) -> str:
    if score_scale is not None:
        return f"check score_scale (scaled scores run from {lowest:g} to {highest:g})"
    if lowest >= 0 and highest <= 5:
        return "these look like 0-5 similarity scores: pass score_scale=5.0"
    if lowest >= 0 and math.isfinite(highest):
        return f"divide them into [0, 1], e.g. with score_scale={highest:g} (the largest score)"
    return f"scores run from {lowest:g} to {highest:g}; rescale them into [0, 1]"


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
