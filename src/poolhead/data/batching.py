"""Pairs as sentence ids, their collation into padded batches and a length-grouping batch sampler."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler

from poolhead.data.sentences import SentenceTable


class PairColumn(Sequence):
    """One value per pair, held as a numpy array, read like a list (items and equality are Python values)."""

    def __init__(self, values: Sequence | np.ndarray, dtype: Any = None) -> None:
        self.array = np.asarray(values, dtype=dtype)

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        return self.array[index].item()

    def __iter__(self) -> Iterator[Any]:
        for start in range(0, len(self.array), 2**16):  # a slice at a time: no list of every pair
            yield from self.array[start : start + 2**16].tolist()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PairColumn):
            other = other.array
        if not isinstance(other, (list, tuple, np.ndarray)):
            return NotImplemented
        return len(other) == len(self.array) and bool(np.array_equal(self.array, np.asarray(other)))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PairColumn({self.array!r})"


class SentencePairs(Dataset):
    """One split's pairs: (sentence_id_a, sentence_id_b, label, pair_id, negative_ids, dataset) per item.

    ``pair_id`` is the pair's row index within its split, so a model can drop the pairs that
    DistributedSampler repeats to give every process the same number of batches. Held as numpy
    arrays (4 bytes a sentence id), not Python lists: a million pairs cost megabytes, not hundreds.

    Args:
        ids_a, ids_b: sentence ids (positions in the data module's ``sentences``).
        labels: float scores or integer classes.
        pair_ids: row index of each pair within its split.
        negatives: one list of sentence ids per hard-negative column (``negatives[k][i]``).
        dataset: which data set of a mixture the pairs come from (its position in the data module).
    """

    def __init__(
        self,
        ids_a: Sequence[int],
        ids_b: Sequence[int],
        labels: Sequence,
        pair_ids: Sequence[int],
        negatives: Sequence[Sequence[int]] = (),
        dataset: int = 0,
    ) -> None:
        self.ids_a = PairColumn(ids_a, np.int32)
        self.ids_b = PairColumn(ids_b, np.int32)
        self.labels = PairColumn(labels)
        self.pair_ids = PairColumn(pair_ids, np.int64)
        self.negatives = [PairColumn(column, np.int32) for column in negatives]
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.pair_ids)

    def __getitem__(self, index: int) -> tuple[int, int, Any, int, tuple[int, ...], int]:
        negatives = tuple(column[index] for column in self.negatives)
        return self.ids_a[index], self.ids_b[index], self.labels[index], self.pair_ids[index], negatives, self.dataset


class PairCollator:
    """Turns items of ``SentencePairs`` into the batch dict the model takes.

    Each side is padded to its longest sentence in the batch (right padding), so short
    batches cost short forward passes. Hard negatives come as ``features_negatives`` (one
    padded side per negative column) and ``sentence_ids_negatives``; ``dataset`` says which
    data set of a mixture the batch comes from (every batch comes from one).

    Args:
        table: the sentences and their token ids.
        label_kind: ``"score"`` (labels become float32), ``"label"`` or ``"positive"`` (int64);
            one per data set of a mixture, indexed by the items' ``dataset``.
    """

    def __init__(self, table: SentenceTable, label_kind: str | Sequence[str]) -> None:
        self.table = table
        kinds = [label_kind] if isinstance(label_kind, str) else list(label_kind)
        self.label_dtypes = [torch.float32 if kind == "score" else torch.long for kind in kinds]

    def __call__(self, items: list[tuple]) -> dict[str, Any]:
        ids_a, ids_b, labels, pair_ids, negatives, datasets = zip(*items, strict=True)
        dataset = datasets[0]
        batch = {
            "features_a": self.table.pad(ids_a),
            "features_b": self.table.pad(ids_b),
            "sentence_ids_a": torch.tensor(ids_a, dtype=torch.long),
            "sentence_ids_b": torch.tensor(ids_b, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=self.label_dtypes[dataset]),
            "pair_ids": torch.tensor(pair_ids, dtype=torch.long),
            "dataset": torch.tensor(dataset, dtype=torch.long),
        }
        columns = list(zip(*negatives, strict=True))
        if columns:
            batch["features_negatives"] = [self.table.pad(column) for column in columns]
            batch["sentence_ids_negatives"] = [torch.tensor(column, dtype=torch.long) for column in columns]
        return batch


class EpochShuffleSampler(RandomSampler):
    """A random order that depends only on ``seed`` and the epoch: ``seed + epoch`` seeds it.

    A plain ``RandomSampler(generator=...)`` draws each epoch's order from where the generator
    stands, so a run resumed from a checkpoint (a fresh generator) trains on other orders than
    the run it continues. Lightning calls ``set_epoch`` before every epoch, resumed or not;
    iterating without it moves on to the next epoch's order, like ``RandomSampler``.
    A ``RandomSampler`` subclass, so Lightning knows it shuffles (and shards it under DDP).

    Args:
        data_source: the dataset; only its length is read.
        seed: epoch ``e`` uses the permutation seeded with ``seed + e``.
    """

    def __init__(self, data_source: Sequence, seed: int = 42) -> None:
        super().__init__(data_source)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class ResumableDataLoader(DataLoader):
    """A DataLoader that can start an epoch part-way through, where an interrupted run stopped.

    The first iteration skips ``start_batch`` batches; later epochs start at the beginning. The
    place is part of Lightning's checkpoint twice over: ``state_dict`` is Lightning's protocol
    for a resumable loader, and ``SentencePairDataModule.state_dict`` records it too, because
    Lightning restores a loader's state only if the loader is built after the restore (a
    ``configure_optimizers`` that reads ``trainer.estimated_stepping_batches`` builds it
    before). Either way the resumed epoch goes on with the batches an uninterrupted run would
    see next; exact only with a sampler whose order depends on the epoch alone
    (``EpochShuffleSampler``, ``DistributedSampler``).

    Args:
        start_batch: batches of the first epoch to skip (those the interrupted run trained on).
        *args, **kwargs: as for ``DataLoader``.
    """

    def __init__(self, *args: Any, start_batch: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_batch = start_batch
        self.batches_served = 0

    def state_dict(self) -> dict[str, int]:
        return {"batches_served": self.batches_served}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.start_batch = state_dict["batches_served"]

    def __iter__(self) -> Iterator[Any]:
        skip, self.start_batch = self.start_batch, 0
        self.batches_served = 0
        for batch in super().__iter__():
            self.batches_served += 1
            # Collating a skipped batch costs one padding call; the sampler's order stays untouched.
            if self.batches_served > skip:
                yield batch


class LengthGroupedBatchSampler(BatchSampler):
    """Batches of pairs of similar length, in a new seeded order every epoch.

    Takes indices from ``sampler`` (a shuffling sampler), sorts each pool of
    ``batch_size * pool_batches`` of them by pair length, cuts the pool into batches and
    shuffles the order of all batches. Pools keep batches random from epoch to epoch; sorting
    inside a pool keeps padding small.

    Under DDP, Lightning rebuilds this sampler with a ``DistributedSampler`` as ``sampler`` (it
    re-runs ``__init__`` with the arguments captured in ``train_dataloader``), so each process
    groups only its own shard. Every shard has the same size, hence the same number of batches,
    and the same seed puts the one smaller batch at the same step on every process.

    Args:
        sampler: yields pair indices (RandomSampler, DistributedSampler, ...).
        lengths: tokens of each pair (both sentences), indexed like the dataset.
        batch_size: pairs per batch.
        drop_last: drop the last, smaller batch.
        pool_batches: batches' worth of pairs sorted together.
        seed: seeds the batch order; epoch ``e`` uses ``seed + e``, where ``e`` is the inner
            sampler's epoch when it has one (Lightning sets it before every epoch, also on resume).
    """

    def __init__(
        self,
        sampler: Sampler[int],
        lengths: Sequence[int],
        batch_size: int,
        drop_last: bool = False,
        pool_batches: int = 50,
        seed: int = 42,
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.lengths = lengths
        self.pool_batches = pool_batches
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Pick the epoch explicitly (and pass it on to a DistributedSampler)."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        # Lightning calls set_epoch on the inner sampler only: take the epoch from it when it has
        # one, else count epochs here.
        epoch = getattr(self.sampler, "epoch", self.epoch)
        self.epoch = epoch + 1
        indices = list(self.sampler)
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(indices), pool):
            ordered = sorted(indices[start : start + pool], key=lambda i: self.lengths[i])
            batches += [ordered[k : k + self.batch_size] for k in range(0, len(ordered), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        generator = torch.Generator().manual_seed(self.seed + epoch)
        for position in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[position]


def pair_lengths(table: SentenceTable, pairs: SentencePairs) -> np.ndarray:
    return table.lengths(pairs.ids_a.array) + table.lengths(pairs.ids_b.array)
