"""SentencePairDataModule: sentence pairs from local files or the hub, one data set or several, validated,
tokenized once, batched."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import BatchSampler, ConcatDataset, DataLoader
from transformers import PreTrainedTokenizerBase

from poolhead.data.batching import (
    EpochShuffleSampler,
    LengthGroupedBatchSampler,
    PairCollator,
    ResumableDataLoader,
    SentencePairs,
    pair_lengths,
)
from poolhead.data.files import is_dataset_repository, is_local, load_hub_dataset
from poolhead.data.mixture import SAMPLERS, MixtureBatchSampler
from poolhead.data.row_checks import EMPTY_SENTENCE_POLICIES
from poolhead.data.sentences import SentenceTable, load_tokenizer
from poolhead.data.sources import DatasetSource, build_sources
from poolhead.errors import UserValueError

#: Lightning stage -> the splits it reads, by role
STAGE_ROLES = {"fit": ("train", "validation"), "validate": ("validation",), "test": ("test",), "predict": ("test",)}
#: options of the data module that are the defaults of every data set's own
SOURCE_DEFAULTS = (
    "train_split",
    "validation_split",
    "test_split",
    "limit_train_pairs",
    "limit_eval_pairs",
    "score_scale",
)

#: options that describe the one data set of ``path`` (inside each entry of ``datasets`` instead)
SINGLE_SOURCE_OPTIONS = ("subset", "revision", "columns", "name")
#: the training order's seed when neither ``seed`` nor ``seed_everything`` gives one
DEFAULT_SEED = 42
#: a mixture's data sets draw their training order from seeds this far apart
SEED_STRIDE = 7919


class SentencePairDataModule(L.LightningDataModule):
    """Sentence pairs for training and evaluation, from one data set (``path``) or several (``datasets``).

    Each split is checked at load (errors name the file, row and column), every unique sentence
    over the loaded splits of all data sets is tokenized once (``sentences`` lists them; a pair
    holds ids into it), and batches are padded to their longest sentence. The shape of each data
    set (scored pairs, labelled pairs, (anchor, positive) pairs, (anchor, positive, negatives)
    tuples) is read from its columns and reported once.

    Args:
        path: a folder of split files (``train.csv``, ``validation.jsonl``, ``test.parquet``, ...),
            one file (it stands for every split), a hub dataset id, or a folder laid out as a hub
            dataset repository (README.md with ``configs:``).
        tokenizer: model name or folder (a sentence-transformers folder works) or a tokenizer object.
        max_length: tokens per sentence; default the model's limit, as ``load_backbone`` picks it.
        batch_size: pairs per training batch.
        eval_batch_size: pairs per validation/test batch; default ``batch_size``.
        num_workers: DataLoader worker processes (kept alive between epochs when > 0).
        group_by_length: train on batches of pairs of similar length (less padding), in a
            seeded random order each epoch.
        train_split, validation_split, test_split: split names (file stems). ``validation_split=None``
            trains without validation.
        limit_train_pairs, limit_eval_pairs: use a seeded random subset of this many pairs
            (kept in file order), e.g. for a quick run.
        empty_sentences: ``"error"`` (default) or ``"skip"``: drop pairs with an empty or
            whitespace-only sentence; counts per split are in ``dropped`` and in a warning.
        score_scale: divide raw scores by this to bring them into [0, 1] (e.g. 5.0 for 0-5 gold scores).
        seed: for the training order and the ``limit_*`` subsets; default the run's seed
            (``seed_everything``, Lightning's ``PL_GLOBAL_SEED``), else 42, so a run per seed
            also shuffles per seed.
        subset: the config name of a hub dataset (``load_dataset(path, subset)``), e.g. ``triplet``.
        revision: a hub dataset's branch, tag or commit.
        columns: poolhead role -> the data set's column name, e.g. ``{sentence1: premise,
            sentence2: hypothesis, label: label}`` or ``{score: similarity}``.
        name: names the data set (in messages, metrics and under ``data_root``); default the last
            part of ``path``.
        datasets: several data sets in one fit, instead of ``path``: one mapping per data set with
            ``path`` and any of ``name, subset, revision, columns, score_scale, *_split, limit_*,
            loss, loss_kwargs, weight, positives_only`` (see ``DatasetSource``); keys left out take
            the values set here. Each batch comes from one data set and trains with its loss.
        sampler: how a mixture's batches are ordered: ``proportional`` (every batch of every data
            set each epoch) or ``round_robin`` (one of each in turn until the smallest runs out).
        data_root: read every data set given by hub id from ``data_root/NAME`` instead (a local
            copy with the hub's columns and split names): the way to run a shipped config offline.
        num_proc: processes that tokenize the unique sentences (``datasets.map``); None tokenizes in
            this process. Worth it from a few hundred thousand sentences on; the token ids are the same.
    """

    def __init__(
        self,
        path: str | None = None,
        tokenizer: str | PreTrainedTokenizerBase | None = None,
        max_length: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        group_by_length: bool = False,
        train_split: str = "train",
        validation_split: str | None = "validation",
        test_split: str = "test",
        limit_train_pairs: int | None = None,
        limit_eval_pairs: int | None = None,
        empty_sentences: str = "error",
        score_scale: float | None = None,
        seed: int | None = None,
        subset: str | None = None,
        revision: str | None = None,
        columns: dict[str, str] | None = None,
        name: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        sampler: str = "proportional",
        data_root: str | None = None,
        num_proc: int | None = None,
    ) -> None:
        super().__init__()
        _check_options(
            empty_sentences,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            limit_train_pairs=limit_train_pairs,
            limit_eval_pairs=limit_eval_pairs,
            num_proc=num_proc,
        )
        if sampler not in SAMPLERS:
            raise UserValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        # Before save_hyperparameters, which records it: a checkpoint resumes with the same order.
        seed = run_seed() if seed is None else seed
        self.save_hyperparameters(ignore=[] if tokenizer is None or isinstance(tokenizer, str) else ["tokenizer"])
        # What one data set's entry may set, and what entries of data.datasets take from here when they leave it out.
        shared = {key: self.hparams[key] for key in SOURCE_DEFAULTS}
        single = {key: self.hparams[key] for key in SINGLE_SOURCE_OPTIONS}
        self.sources = _sources(path, datasets, shared, **single)
        for source in self.sources:
            source.use_local_copy(data_root)
        self.path = self.sources[0].path if len(self.sources) == 1 else ", ".join(s.path for s in self.sources)
        self.tokenizer_spec = tokenizer
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.group_by_length = group_by_length
        self.split_names = {"train": train_split, "validation": validation_split, "test": test_split}
        self.empty_sentences = empty_sentences
        self.sampler = sampler
        self.seed = seed
        self._max_length = max_length
        self.num_proc = num_proc
        self.table: SentenceTable | None = None
        #: training batches of the current epoch to skip, when resuming a run stopped mid-epoch
        self._start_batch = 0

    @property
    def is_mixture(self) -> bool:
        return len(self.sources) > 1

    @property
    def pairs(self) -> dict[str, SentencePairs]:
        """Role ("train", "validation", "test") -> the pairs of the (first) data set, once set up."""
        return self.sources[0].pairs

    @property
    def dropped(self) -> dict[str, int]:
        """Split name -> pairs dropped for an empty sentence (``empty_sentences="skip"``), first data set."""
        return self.sources[0].dropped

    @property
    def sentences(self) -> list[str]:
        """Every unique sentence of the loaded splits; ``sentence_ids_*`` in batches index this list."""
        return self.table.sentences if self.table is not None else []

    @property
    def label_kind(self) -> str | None:
        """``"score"``, ``"label"`` or ``"positive"`` once a split is loaded (of the first data set), else None."""
        return self.sources[0].kind

    @property
    def num_labels(self) -> int | None:
        """For label data: largest label + 1 over the train split (over the loaded splits without it)."""
        return self.sources[0].num_labels

    @property
    def max_length(self) -> int | None:
        return self.table.max_length if self.table is not None else self._max_length

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase | None:
        return self.table.tokenizer if self.table is not None else None

    def prepare_data(self) -> None:
        # Lightning runs this once per node: download a hub dataset before every process reads it.
        for source in self.sources:
            if not is_local(source.path) or is_dataset_repository(source.path):
                load_hub_dataset(source.path, source._hub, source.subset, source.revision)

    def setup(self, stage: str | None = None) -> None:
        """Load, check and tokenize the splits ``stage`` needs (all three when ``stage`` is None)."""
        roles = STAGE_ROLES.get(stage or "", ("train", "validation", "test"))
        table = self._require_table()
        for index, source in enumerate(self.sources):
            for role in roles:
                if role not in source.pairs and source.split_names[role] is not None:
                    source.load(role, index, table, self.empty_sentences, self.seed)
            validation = source.validation_split
            if stage == "fit" and Path(source.path).is_file() and validation is not None:
                rank_zero_warn(
                    f"{source.path} is one file, so it stands for both the train and the validation split: "
                    f"validation metrics come from the training pairs. Use a folder with {source.train_split}.csv "
                    f"and {validation}.csv (or validation_split=None) for held-out figures."
                )

    def train_dataloader(self) -> DataLoader:
        self._require_roles("train", "fit")
        # Orders fixed by (seed, epoch) and a loader that checkpoints its place: a run killed
        # mid-epoch and resumed trains on exactly the batches of the uninterrupted run.
        resume = {"start_batch": self._start_batch}
        self._start_batch = 0
        if self.is_mixture:
            if self.trainer is not None and self.trainer.world_size > 1:
                raise UserValueError(
                    f"several data sets in one fit run on one process (this run has {self.trainer.world_size}); "
                    f"train on one device (--trainer.devices 1) or on one data set per run"
                )
            parts = [source.pairs["train"] for source in self.sources]
            batch_samplers = [self._batch_sampler(pairs, self.seed + SEED_STRIDE * i) for i, pairs in enumerate(parts)]
            mixture = MixtureBatchSampler(batch_samplers, [len(p) for p in parts], self.sampler, seed=self.seed)
            return self._loader(ConcatDataset(parts), ResumableDataLoader, batch_sampler=mixture, **resume)
        pairs = self.pairs["train"]
        sampler = EpochShuffleSampler(pairs, seed=self.seed)
        if not self.group_by_length:
            return self._loader(pairs, ResumableDataLoader, sampler=sampler, batch_size=self.batch_size, **resume)
        lengths = pair_lengths(self.table, pairs)
        batch_sampler = LengthGroupedBatchSampler(sampler, lengths, self.batch_size, seed=self.seed)
        return self._loader(pairs, ResumableDataLoader, batch_sampler=batch_sampler, **resume)

    def state_dict(self) -> dict[str, int]:
        """Saved in every checkpoint: how far into the epoch training got (0 at an epoch's end)."""
        trainer = self.trainer
        if trainer is None:
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        return {"train_batches_done": done if done < trainer.num_training_batches else 0}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        # Lightning restores the data module before it asks for the train loader: the loader
        # built next starts where the checkpointed run stopped.
        self._start_batch = state_dict.get("train_batches_done", 0)

    def val_dataloader(self) -> DataLoader | list:
        """One loader per data set that has a validation split (a list for a mixture)."""
        self._require_roles("validation", "validate")
        loaders = [
            self._loader(source.pairs["validation"], batch_size=self.eval_batch_size, shuffle=False)
            for source in self.sources
            if "validation" in source.pairs
        ]
        return loaders if self.is_mixture or not loaders else loaders[0]  # [] makes Lightning skip validation

    def test_dataloader(self) -> DataLoader | list:
        self._require_roles("test", "test")
        loaders = [self._loader(s.pairs["test"], batch_size=self.eval_batch_size, shuffle=False) for s in self.sources]
        return loaders if self.is_mixture else loaders[0]

    def predict_dataloader(self) -> DataLoader | list:
        return self.test_dataloader()

    def _batch_sampler(self, pairs: SentencePairs, seed: int) -> BatchSampler:
        sampler = EpochShuffleSampler(pairs, seed=seed)
        if self.group_by_length:
            return LengthGroupedBatchSampler(sampler, pair_lengths(self.table, pairs), self.batch_size, seed=seed)
        return BatchSampler(sampler, self.batch_size, drop_last=False)

    def _require_table(self) -> SentenceTable:
        if self.table is None:
            if self.tokenizer_spec is None:
                raise UserValueError(
                    "SentencePairDataModule needs a tokenizer: pass tokenizer=<model name or folder> "
                    "(the poolhead command links it to model.backbone)"
                )
            tokenizer, max_length = load_tokenizer(self.tokenizer_spec, self._max_length)
            self.table = SentenceTable(tokenizer, max_length, self.num_proc)
        return self.table

    def _require_roles(self, role: str, stage: str) -> None:
        if any(role not in s.pairs and s.split_names[role] is not None for s in self.sources):
            self.setup(stage)

    def _loader(self, pairs: Any, loader_class: type[DataLoader] = DataLoader, **kwargs: Any) -> DataLoader:
        return loader_class(
            pairs,
            collate_fn=PairCollator(self.table, [source.kind for source in self.sources]),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )


def _sources(
    path: str | None, datasets: list[dict[str, Any]] | None, shared: dict[str, Any], **single: Any
) -> list[DatasetSource]:
    if (path is None) == (datasets is None):
        raise UserValueError(
            "give the data as path (one data set) or as datasets (a list of {name, path, ...}), not both"
            if datasets is not None
            else "no data: set data.path (a folder, a file or a hub id) or data.datasets"
        )
    if datasets is None:
        return [DatasetSource(path=str(path), **shared, **single)]
    if not datasets:
        raise UserValueError("data.datasets is empty; list at least one {name, path} entry")
    given = [key for key, value in single.items() if value is not None]
    if given:
        raise UserValueError(
            f"{', '.join(given)} describe one data set: with data.datasets, set them inside each entry instead"
        )
    return build_sources(datasets, shared)


def _check_options(empty_sentences: str, **counts: int | None) -> None:
    if empty_sentences not in EMPTY_SENTENCE_POLICIES:
        choices = ", ".join(EMPTY_SENTENCE_POLICIES)
        raise UserValueError(f"empty_sentences must be one of {choices}, got {empty_sentences!r}")
    for name, value in counts.items():
        if value is not None and value < 1:
            raise UserValueError(f"{name} must be at least 1 (or None where allowed), got {value}")


def run_seed() -> int:
    """The seed ``seed_everything`` set for this run (``LightningCLI``'s ``--seed_everything`` calls it
    before building the data module), or 42 when none was set."""
    value = os.environ.get("PL_GLOBAL_SEED")
    return int(value) if value is not None else DEFAULT_SEED
