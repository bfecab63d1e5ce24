"""DatasetSource: one data set of a fit (where it lives, how its columns map, how it trains), loaded split by split.

A data module holds one source (``--data.path``) or several (``--data.datasets``); all of them
add their sentences to one ``SentenceTable``, so the feature cache covers every data set at once.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from poolhead.data.batching import SentencePairs
from poolhead.data.columns import DataShape, evaluation_shape, shape_of
from poolhead.data.files import RawSplit, is_dataset_repository, is_local, read_hub_split, read_local_split
from poolhead.data.pair_sentences import sentence_ids
from poolhead.data.progress import progress_wanted
from poolhead.data.row_checks import CheckedRows, check_rows
from poolhead.data.sentences import SentenceTable
from poolhead.errors import UserFileNotFoundError, UserValueError

log = logging.getLogger(__name__)
ROLES = ("train", "validation", "test")


def seeded_subset(count: int, limit: int | None, seed: int) -> list[int]:
    """Indices of a seeded random ``limit`` of ``count`` pairs in file order (not the first rows: files such
    as STS-B are ordered by genre), for training and compare alike."""
    if limit is None or limit >= count:
        return list(range(count))
    return sorted(random.Random(seed).sample(range(count), limit))


@dataclass
class DatasetSource:
    """One data set and how a fit uses it.

    Args:
        name: names its metrics (``val/NAME/spearman``) and its local copy under ``data_root``;
            default the last part of ``path`` (with ``/subset``).
        path: a folder of split files, one file, a hub id, or a folder laid out as a hub dataset
            repository (README.md with ``configs:``).
        subset: the config name ``datasets.load_dataset`` takes (``triplet`` of ``sentence-transformers/all-nli``).
        revision: a hub branch, tag or commit.
        columns: poolhead role -> the data set's column (``{sentence1: premise, sentence2: hypothesis}``).
        score_scale: divide raw scores by this to bring them into [0, 1].
        train_split, validation_split, test_split: split names; ``validation_split=None`` skips validation.
        limit_train_pairs, limit_eval_pairs: a seeded random subset of this many pairs.
        loss: this data set's loss in a mixture (default the model's ``loss``).
        loss_kwargs: options of that loss.
        weight: its batches' losses are multiplied by this.
        positives_only: train only on the pairs labelled 1 (paraphrases as positives for in_batch_negatives);
            validation still scores every pair.
    """

    path: str
    name: str | None = None
    subset: str | None = None
    revision: str | None = None
    columns: dict[str, str] | None = None
    score_scale: float | None = None
    train_split: str = "train"
    validation_split: str | None = "validation"
    test_split: str = "test"
    limit_train_pairs: int | None = None
    limit_eval_pairs: int | None = None
    loss: str | None = None
    loss_kwargs: dict[str, Any] | None = None
    weight: float = 1.0
    positives_only: bool = False
    #: role -> its pairs, once loaded
    pairs: dict[str, SentencePairs] = field(default_factory=dict, init=False, repr=False)
    #: split name -> pairs dropped for an empty sentence
    dropped: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    shape: DataShape | None = field(default=None, init=False, repr=False)
    train_num_labels: int | None = field(default=None, init=False, repr=False)
    _shape_source: str = field(default="", init=False, repr=False)
    #: a contrast set (premise, hypothesis, negated), trained on as scored pairs: keepers 1, flippers 0
    contrast: bool = field(default=False, init=False, repr=False)
    _hub: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    #: read from a local copy of a hub data set (``data_root``), where subset and revision do not apply
    _mirrored: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = str(self.path)
        if self.name is None:
            stem = Path(self.path).stem if Path(self.path).is_file() else Path(self.path.rstrip("/")).name
            self.name = f"{stem}/{self.subset}" if self.subset else stem
        if self.score_scale is not None and not self.score_scale > 0:
            raise UserValueError(
                f"score_scale must be a positive number (e.g. 5.0 for 0-5 scores), got {self.score_scale!r}"
            )
        if self.weight <= 0:
            raise UserValueError(f"dataset {self.name!r}: weight must be positive, got {self.weight}")

    @property
    def split_names(self) -> dict[str, str | None]:
        return {"train": self.train_split, "validation": self.validation_split, "test": self.test_split}

    @property
    def kind(self) -> str | None:
        """``"score"``, ``"label"`` or ``"positive"`` once a split is loaded."""
        return self.shape.kind if self.shape is not None else None

    @property
    def num_labels(self) -> int | None:
        if self.kind != "label":
            return None
        if self.train_num_labels is not None:
            return self.train_num_labels
        return max(int(pairs.labels.array.max()) for pairs in self.pairs.values()) + 1

    @property
    def num_negatives(self) -> int:
        return len(self.shape.negatives) if self.shape is not None else 0

    def use_local_copy(self, data_root: str | None) -> None:
        """Read a hub data set from ``data_root/NAME`` instead (the one way to run shipped configs offline)."""
        if data_root is None or is_local(self.path):
            return
        copy = Path(data_root) / self.name
        if not copy.exists():
            raise UserFileNotFoundError(
                f"data_root={data_root!r}: no local copy of {self.path!r} at {copy}; put its splits there "
                f"(train.csv, validation.csv, ...) or drop data_root to read it from the hub"
            )
        self.path, self._mirrored = str(copy), True

    def load(self, role: str, dataset_index: int, table: SentenceTable, empty_sentences: str, seed: int) -> None:
        """Read, check, limit and tokenize the split playing ``role``, into ``pairs[role]``."""
        split = self.split_names[role]
        raws = self._read(split, role)
        progress = progress_wanted(sum(len(raw) for raw in raws))
        rows, dropped = self._validate(raws, empty_sentences, progress)
        if not len(rows.labels):
            raise UserValueError(
                f"split {split!r} of {self.path} has no pairs left to use (dropped {dropped} with empty sentences)"
            )
        if dropped:
            self.dropped[split] = dropped
        if role == "train" and self.kind == "label":
            self.train_num_labels = int(rows.labels.max()) + 1
        if role == "train" and self.positives_only:
            rows = self._positives(rows)
        rows = _limit(rows, self.limit_train_pairs if role == "train" else self.limit_eval_pairs, seed)
        if role == "train" and len(rows.labels) < 2:
            kept = " labelled 1" if self.positives_only else ""
            raise UserValueError(
                f"dataset {self.name!r}: its training split {split!r} ({self.path}) has {len(rows.labels)} pair(s)"
                f"{kept}; training needs at least 2 per data set (the losses compare the pairs of a batch, so one "
                f"pair trains nothing): add pairs, or drop it from the mixture"
            )
        texts = [self.shape.first, self.shape.second, *self.shape.negatives]
        ids = sentence_ids(raws, rows.rows, texts, table, progress)
        table.tokenize_new(progress)
        self.pairs[role] = SentencePairs(ids[0], ids[1], rows.labels, rows.rows, ids[2:], dataset_index)
        count = len(rows.labels)
        log.info("%s split %r: %d pairs, %d unique sentences so far", self.path, split, count, len(table))

    def _read(self, split: str, role: str) -> list[RawSplit]:
        raws = self._read_files(split, role)
        self.contrast = all(evaluation_shape(raw.column_names) == "contrast" for raw in raws)
        if not self.contrast:
            return raws
        rank_zero_info(f"{self.name}: a contrast set, read as scored pairs (premise, hypothesis, 1 - negated)")
        return [raw.as_scored_pairs() for raw in raws]

    def _read_files(self, split: str, role: str) -> list[RawSplit]:
        if is_local(self.path) and not is_dataset_repository(self.path):
            if self.subset is not None and not self._mirrored:
                raise UserValueError(
                    f"subset={self.subset!r} was given but {self.path} is a folder of split files, not a dataset "
                    f"repository (a README.md whose YAML header lists configs:); drop subset"
                )
            return read_local_split(self.path, split, role, self.columns)
        return read_hub_split(self.path, split, role, self._hub, self.subset, self.revision, self.columns)

    def _validate(self, raws: list[RawSplit], empty_sentences: str, progress: bool) -> tuple[CheckedRows, int]:
        """All files of a split, checked and joined; pair ids run on across files (shards)."""
        parts, offset, dropped = [], 0, 0
        for raw in raws:
            self._check_shape(shape_of(raw.column_names, raw.source, raw.found), raw.source)
            rows = check_rows(raw, empty_sentences, self.score_scale, np.float32, progress)
            if self.contrast:
                rows = _keeps_scored_one(rows, raw.source)
            parts.append(CheckedRows(rows.rows + offset, rows.labels))
            offset += len(raw)
            if rows.dropped_empty:
                dropped += rows.dropped_empty
                skipped = f"skipped {rows.dropped_empty} pair(s) with an empty sentence"
                rank_zero_warn(f"{raw.source}: {skipped} (empty_sentences='skip')")
        if len(parts) == 1:
            return parts[0], dropped
        joined = (np.concatenate([getattr(part, name) for part in parts]) for name in ("rows", "labels"))
        return CheckedRows(*joined), dropped

    def _check_shape(self, shape: DataShape, source: str) -> None:
        if self.score_scale is not None and shape.kind != "score":
            raise UserValueError(
                f"score_scale={self.score_scale} was given but {source} has {_described(shape.kind)}, not scores; "
                f"drop score_scale"
            )
        if self.shape is None:
            self.shape, self._shape_source = shape, source
            rank_zero_info(f"{self.name}: {shape.describe()}")
        elif (shape.kind, len(shape.negatives)) != (self.shape.kind, len(self.shape.negatives)):
            raise UserValueError(
                f"{source} has {_described(shape.kind, shape)} but {self._shape_source} has "
                f"{_described(self.shape.kind, self.shape)}; every split of one data set needs the same shape"
            )

    def _positives(self, rows: CheckedRows) -> CheckedRows:
        if self.kind != "label":
            raise UserValueError(
                f"dataset {self.name!r}: positives_only keeps the pairs labelled 1, but it has "
                f"{_described(self.kind)}; "
                f"drop positives_only (for scores, in_batch_negatives takes loss_kwargs {{min_score: 0.8}})"
            )
        keep = np.flatnonzero(rows.labels == 1)
        if not len(keep):
            raise UserValueError(
                f"dataset {self.name!r}: positives_only found no pair labelled 1 in {self.train_split!r}"
            )
        return _subset(rows, keep)


def _keeps_scored_one(rows: CheckedRows, source: str) -> CheckedRows:
    """A contrast set's ``negated`` (1 flips the premise, 0 keeps it) as a similarity: keepers 1, flippers 0."""
    odd = sorted({float(value) for value in rows.labels if value not in (0.0, 1.0)})[:3]
    if odd:
        raise UserValueError(
            f"{source}: a contrast set's 'negated' column holds 0 (keeps the premise's meaning) or 1 (flips it); "
            f"found {', '.join(map(str, odd))}; fix those rows or map a 'score' column instead"
        )
    return CheckedRows(rows.rows, 1.0 - rows.labels, dropped_empty=rows.dropped_empty)


def _described(kind: str | None, shape: DataShape | None = None) -> str:
    if kind == "score":
        return "a 'score' column"
    if kind == "label":
        return "a 'label' column" if shape is not None else "integer labels"
    negatives = f" with {len(shape.negatives)} negative(s)" if shape is not None and shape.negatives else ""
    return f"(anchor, positive) pairs{negatives}"


def _limit(rows: CheckedRows, limit: int | None, seed: int) -> CheckedRows:
    if limit is None or limit >= len(rows.labels):
        return rows
    return _subset(rows, np.asarray(seeded_subset(len(rows.labels), limit, seed), dtype=np.int64))


def _subset(rows: CheckedRows, keep: np.ndarray) -> CheckedRows:
    return CheckedRows(rows.rows[keep], rows.labels[keep], dropped_empty=rows.dropped_empty)


def build_sources(datasets: list[dict[str, Any]], defaults: dict[str, Any]) -> list[DatasetSource]:
    """``DatasetSource`` per entry of ``data.datasets``; keys an entry leaves out come from ``defaults``."""
    known = [f.name for f in fields(DatasetSource) if f.init]
    sources = []
    for position, entry in enumerate(datasets):
        if not isinstance(entry, dict) or "path" not in entry:
            raise UserValueError(f"data.datasets[{position}] must be a mapping with a path, got {entry!r}")
        unknown = [key for key in entry if key not in known]
        if unknown:
            raise UserValueError(
                f"data.datasets[{position}] has unknown key(s) {', '.join(unknown)}; the keys are {', '.join(known)}"
            )
        sources.append(DatasetSource(**{**defaults, **entry}))
    names = [source.name for source in sources]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserValueError(f"data.datasets names {', '.join(repeated)} more than once; give each entry its own name")
    return sources
