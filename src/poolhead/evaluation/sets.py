"""Any evaluation set ``compare`` reads, its shape told by its columns: pairs, a contrast set or a probe set.

Pairs (``sentence1``, ``sentence2``, ``score`` or ``label``) are read by :mod:`poolhead.evaluation.pairs`;
a contrast set (``premise``, ``hypothesis``, ``negated``) by :mod:`poolhead.evaluation.contrast`; a
probe set (``sentence``, ``label``, optionally ``concept``) by :mod:`poolhead.evaluation.probe`. A
``columns`` mapping (role -> the data set's column) renames columns first, as in training.
"""

from __future__ import annotations

from pathlib import Path

from poolhead.data.columns import evaluation_shape
from poolhead.data.files import is_local, read_local_split
from poolhead.data.sources import seeded_subset
from poolhead.errors import UserValueError
from poolhead.evaluation.contrast import ContrastSet, contrast_set_from_columns
from poolhead.evaluation.pairs import TEST_SPLIT, EvaluationSet, load_evaluation_set
from poolhead.evaluation.probe import ProbeSet, probe_set_from_columns

AnySet = EvaluationSet | ContrastSet | ProbeSet


def load_any_set(
    source: str | Path,
    limit: int | None = None,
    score_scale: float | None = None,
    seed: int = 0,
    columns: dict[str, str] | None = None,
    query_templates: dict[str, str] | None = None,
) -> AnySet:
    """Read an evaluation set of whichever shape its (mapped) columns make.

    Args:
        source: a folder (its test split), one file, or a hub id (pairs only).
        limit: keep a seeded random ``limit`` rows (a quick look).
        score_scale: divide pair scores by this (score pairs only).
        seed: chooses the ``limit`` rows.
        columns: role -> column of the data set, e.g. ``{"label": "status"}``.
        query_templates: status -> query for a probe set's query check (default present / absent).
    """
    source = str(source)
    if not is_local(source):
        return load_evaluation_set(source, limit, score_scale, seed, columns)
    raws = read_local_split(source, TEST_SPLIT, "test", columns)
    shape = evaluation_shape(raws[0].column_names)
    if shape == "pairs":
        return load_evaluation_set(source, limit, score_scale, seed, columns)
    if limit is not None and limit < 2:
        raise UserValueError(f"limit must be at least 2 rows, got {limit}")
    merged: dict[str, list] = {}
    for raw in raws:
        for name, values in raw.columns.items():
            merged.setdefault(name, []).extend(values)
    keep = seeded_subset(len(next(iter(merged.values()))), limit, seed)
    merged = {name: [values[i] for i in keep] for name, values in merged.items()}
    path = Path(source)
    name = path.stem if path.is_file() else path.name
    if shape == "contrast":
        return contrast_set_from_columns(name, merged, source)
    return probe_set_from_columns(name, merged, source, query_templates)
