"""Several data sets in one fit: each batch from one data set, in an order fixed by seed and epoch.

The two orders are those sentence-transformers offers for multi-dataset training
(``MultiDatasetBatchSamplers``):

- ``proportional``: every batch of every data set once per epoch, the data sets interleaved at
  random, so a larger data set is drawn from more often;
- ``round_robin``: one batch of each data set in turn, until the smallest runs out (each data set
  is drawn from equally; the larger ones are not used up).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import accumulate

import torch
from torch.utils.data import Sampler

from poolhead.errors import UserValueError

SAMPLERS = ("proportional", "round_robin")


class MixtureBatchSampler(Sampler[list[int]]):
    """Batches of indices into a ``ConcatDataset``, each batch from one of its data sets.

    The order depends only on ``seed`` and the epoch (``set_epoch``, which Lightning calls
    before every epoch, resumed or not; iterating without it moves on to the next epoch), so a
    run resumed mid-epoch trains on exactly the batches of the uninterrupted run. Lightning sets
    the epoch of ``batch_sampler.sampler`` only, so ``sampler`` is what passes it on here.

    Args:
        batch_samplers: one per data set, yielding batches of indices into that data set; each
            must order its epoch by ``set_epoch`` alone (``BatchSampler(EpochShuffleSampler)``,
            ``LengthGroupedBatchSampler``).
        sizes: the number of items of each data set (to offset its indices into the concatenation).
        sampler: ``"proportional"`` or ``"round_robin"``.
        seed: epoch ``e`` interleaves the data sets with the permutation seeded with ``seed + e``.
    """

    def __init__(
        self, batch_samplers: Sequence[Sampler[list[int]]], sizes: Sequence[int], sampler: str, seed: int = 42
    ) -> None:
        if sampler not in SAMPLERS:
            raise UserValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
        self.batch_samplers = list(batch_samplers)
        self.offsets = [0, *accumulate(sizes)][:-1]
        self.strategy = sampler
        self.sampler = _EpochSetter(self)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for batch_sampler in self.batch_samplers:
            _set_epoch(batch_sampler, epoch)

    def __len__(self) -> int:
        counts = [len(batch_sampler) for batch_sampler in self.batch_samplers]
        return sum(counts) if self.strategy == "proportional" else min(counts) * len(counts)

    def dataset_order(self) -> list[int]:
        """Which data set each batch of this epoch comes from."""
        counts = [len(batch_sampler) for batch_sampler in self.batch_samplers]
        if self.strategy == "round_robin":
            return list(range(len(counts))) * min(counts)
        slots = torch.tensor([index for index, count in enumerate(counts) for _ in range(count)])
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return slots[torch.randperm(len(slots), generator=generator)].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        order = self.dataset_order()
        for batch_sampler in self.batch_samplers:
            _set_epoch(batch_sampler, self.epoch)
        self.epoch += 1
        batches = [iter(batch_sampler) for batch_sampler in self.batch_samplers]
        for dataset in order:
            yield [self.offsets[dataset] + index for index in next(batches[dataset])]


class _EpochSetter:
    """Stands where Lightning looks for a batch sampler's sampler, to hand the epoch on to it."""

    def __init__(self, owner: MixtureBatchSampler) -> None:
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)


def _set_epoch(batch_sampler: Sampler, epoch: int) -> None:
    """Set the epoch of a batch sampler, or of the sampler inside a plain ``BatchSampler``."""
    if hasattr(batch_sampler, "set_epoch"):
        batch_sampler.set_epoch(epoch)
    elif hasattr(getattr(batch_sampler, "sampler", None), "set_epoch"):
        batch_sampler.sampler.set_epoch(epoch)
