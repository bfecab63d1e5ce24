"""Evaluation sets of sentence pairs: a local folder, one file, or a Hugging Face hub dataset.

A folder is read like the shared data (``stsb/{train,validation,test}.csv``): its test split is
evaluated and, for label data, its validation split chooses the cosine threshold; the train
split is never read. Files and schema are those of training (``poolhead.data``): columns
``sentence1``, ``sentence2`` and ``score`` or ``label``, in csv / tsv / jsonl / parquet, read by
``datasets`` and checked row by row, so data that trains a head also evaluates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from poolhead.data.files import is_local, load_hub_dataset, read_hub_split, read_local_split, split_files
from poolhead.data.sources import seeded_subset
from poolhead.errors import UserValueError
from poolhead.evaluation.pair_rows import label_kind_of, validate_split

TEST_SPLIT = "test"
#: Names a validation split goes by, in order of preference.
VALIDATION_SPLITS = ("validation", "dev", "valid", "val")


@dataclass
class Pairs:
    """Sentence pairs with one gold value each (a score, or a label 0/1)."""

    sentence1: list[str]
    sentence2: list[str]
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, limit: int | None, seed: int) -> Pairs:
        """A seeded random ``limit`` of the pairs, in file order, as training's ``limit_*_pairs`` takes them."""
        keep = seeded_subset(len(self), limit, seed)
        return Pairs([self.sentence1[i] for i in keep], [self.sentence2[i] for i in keep], self.targets[keep])


@dataclass
class EvaluationSet:
    """One evaluation set.

    Args:
        name: shown in tables (the folder or file name, or the hub id).
        kind: ``"score"`` (graded similarity: Spearman/Pearson) or ``"label"`` (0/1: accuracy/F1).
        test: the pairs that are scored.
        validation: pairs that choose the cosine threshold of label data; ``None`` if absent.
    """

    name: str
    kind: str
    test: Pairs
    validation: Pairs | None = None

    def sentences(self) -> list[str]:
        """Every distinct sentence that must be encoded, in first-seen order."""
        splits = [self.test] + ([self.validation] if self.validation is not None and self.kind == "label" else [])
        return list(dict.fromkeys(s for pairs in splits for s in (*pairs.sentence1, *pairs.sentence2)))


def load_evaluation_set(
    source: str | Path,
    limit: int | None = None,
    score_scale: float | None = None,
    seed: int = 0,
    columns: dict[str, str] | None = None,
) -> EvaluationSet:
    """Read an evaluation set from a folder, a file or a hub id.

    Args:
        source: a folder with ``test.csv`` (and ``validation.csv``), one data file (its pairs
            are the test pairs), or a hub id such as ``sentence-transformers/stsb``.
        limit: keep a seeded random ``limit`` pairs of each split (a quick look).
        score_scale: divide scores by this to bring them into [0, 1] (e.g. 5.0), as in training;
            correlations do not change under this rescaling.
        seed: chooses the ``limit`` pairs.
        columns: role -> column of the data set (``{sentence1: premise, ...}``), as in training.
    """
    if limit is not None and limit < 2:
        raise UserValueError(f"limit must be at least 2 pairs, got {limit}")
    source = str(source)
    raws = _read_splits(source, columns)
    kinds = {label_kind_of(raw) for split in raws.values() for raw in split}
    if len(kinds) > 1:
        raise UserValueError(f"{source}: the test and validation splits disagree on score vs label columns; use one")
    kind = kinds.pop()
    test = _to_pairs(raws[TEST_SPLIT], kind, score_scale).subset(limit, seed)
    validation = _to_pairs(raws["validation"], kind, score_scale).subset(limit, seed) if "validation" in raws else None
    name = Path(source).stem if Path(source).is_file() else Path(source).name if is_local(source) else source
    return EvaluationSet(name, kind, test, validation)


def _read_splits(source: str, columns: dict[str, str] | None = None) -> dict[str, list[Any]]:
    """Split name -> the raw files (shards) of that split: test always, validation when there is one."""
    if Path(source).is_file():
        return {TEST_SPLIT: read_local_split(source, TEST_SPLIT, "test", columns)}
    if is_local(source):
        splits = {TEST_SPLIT: read_local_split(source, TEST_SPLIT, "test", columns)}
        validation = next((name for name in VALIDATION_SPLITS if split_files(Path(source), name)), None)
        if validation is not None:
            splits["validation"] = read_local_split(source, validation, "validation", columns)
        return splits
    cache: dict[str, Any] = {}
    splits = {TEST_SPLIT: read_hub_split(source, TEST_SPLIT, "test", cache, columns=columns)}
    validation = next((name for name in VALIDATION_SPLITS if name in load_hub_dataset(source, cache)), None)
    if validation is not None:
        splits["validation"] = read_hub_split(source, validation, "validation", cache, columns=columns)
    return splits


def _to_pairs(raws: list[Any], kind: str, score_scale: float | None) -> Pairs:
    rows = [validate_split(raw, "error", score_scale) for raw in raws]
    targets = np.asarray([value for r in rows for value in r.labels], dtype=np.float64)
    if kind == "label":
        classes = sorted(set(targets.tolist()))
        if not set(classes) <= {0.0, 1.0}:
            sources = ", ".join(raw.source for raw in raws)
            raise UserValueError(
                f"{sources}: labels {[int(c) for c in classes]} are not binary; a cosine threshold separates two "
                f"classes (0 and 1). For graded similarity, name the column 'score'"
            )
    return Pairs([s for r in rows for s in r.sentence1], [s for r in rows for s in r.sentence2], targets)
