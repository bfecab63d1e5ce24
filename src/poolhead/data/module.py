"""SentencePairDataModule: sentence pairs from local files or the hub, validated, tokenized once, batched."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from poolhead.data.batching import (
    EpochShuffleSampler,
    LengthGroupedBatchSampler,
    PairCollator,
    ResumableDataLoader,
    SentencePairs,
    pair_lengths,
)
from poolhead.data.files import RawSplit, is_local, load_hub_dataset, read_hub_split, read_local_split
from poolhead.data.sentences import SentenceTable, load_tokenizer
from poolhead.data.validation import EMPTY_SENTENCE_POLICIES, PairRows, label_kind_of, seeded_subset, validate_split

log = logging.getLogger(__name__)

#: Lightning stage -> the splits it reads, by role
STAGE_ROLES = {"fit": ("train", "validation"), "validate": ("validation",), "test": ("test",), "predict": ("test",)}


class SentencePairDataModule(L.LightningDataModule):
    """Sentence pairs (``sentence1``, ``sentence2``, ``score`` or ``label``) for training and evaluation.

    Each split is checked at load (errors name the file, row and column), every unique sentence
    over the loaded splits is tokenized once (``sentences`` lists them; a pair holds two ids into
    it), and batches are padded to their longest sentence.

    Args:
        path: a folder of split files (``train.csv``, ``validation.jsonl``, ``test.parquet``, ...),
            one file (it stands for every split), or a hub dataset id.
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
        seed: for the training order and the ``limit_*`` subsets.
    """

    def __init__(
        self,
        path: str,
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
        seed: int = 42,
    ) -> None:
        super().__init__()
        _check_options(
            empty_sentences,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            limit_train_pairs=limit_train_pairs,
            limit_eval_pairs=limit_eval_pairs,
        )
        self.save_hyperparameters(ignore=[] if tokenizer is None or isinstance(tokenizer, str) else ["tokenizer"])
        self.path = str(path)
        self.tokenizer_spec = tokenizer
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.group_by_length = group_by_length
        self.split_names = {"train": train_split, "validation": validation_split, "test": test_split}
        self.limits = {"train": limit_train_pairs, "validation": limit_eval_pairs, "test": limit_eval_pairs}
        self.empty_sentences = empty_sentences
        self.score_scale = score_scale
        self.seed = seed
        self._max_length = max_length
        self.table: SentenceTable | None = None
        #: role ("train", "validation", "test") -> its pairs, once set up
        self.pairs: dict[str, SentencePairs] = {}
        #: split name -> pairs dropped for an empty sentence (empty_sentences="skip")
        self.dropped: dict[str, int] = {}
        self._label_kind: str | None = None
        self._label_source = ""
        self._train_num_labels: int | None = None
        self._hub: dict[str, Any] = {}
        #: training batches of the current epoch to skip, when resuming a run stopped mid-epoch
        self._start_batch = 0

    @property
    def sentences(self) -> list[str]:
        """Every unique sentence of the loaded splits; ``sentence_ids_*`` in batches index this list."""
        return self.table.sentences if self.table is not None else []

    @property
    def label_kind(self) -> str | None:
        """``"score"`` or ``"label"`` once a split is loaded, else None."""
        return self._label_kind

    @property
    def num_labels(self) -> int | None:
        """For label data: largest label + 1 over the train split (over the loaded splits without it)."""
        if self._label_kind != "label":
            return None
        if self._train_num_labels is not None:
            return self._train_num_labels
        return max(max(pairs.labels) for pairs in self.pairs.values()) + 1

    @property
    def max_length(self) -> int | None:
        return self.table.max_length if self.table is not None else self._max_length

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase | None:
        return self.table.tokenizer if self.table is not None else None

    def prepare_data(self) -> None:
        # Lightning runs this once per node: download a hub dataset before every process reads it.
        if not is_local(self.path):
            load_hub_dataset(self.path, self._hub)

    def setup(self, stage: str | None = None) -> None:
        """Load, check and tokenize the splits ``stage`` needs (all three when ``stage`` is None)."""
        roles = STAGE_ROLES.get(stage or "", ("train", "validation", "test"))
        for role in roles:
            if role not in self.pairs and self.split_names[role] is not None:
                self.pairs[role] = self._load(role)
        if stage == "fit" and Path(self.path).is_file() and self.split_names["validation"] is not None:
            rank_zero_warn(
                f"{self.path} is one file, so it stands for both the train and the validation split: "
                f"validation metrics come from the training pairs. Use a folder with {self.split_names['train']}.csv "
                f"and {self.split_names['validation']}.csv (or validation_split=None) for held-out figures."
            )

    def train_dataloader(self) -> DataLoader:
        pairs = self._role("train", "fit")
        # Orders fixed by (seed, epoch) and a loader that checkpoints its place: a run killed
        # mid-epoch and resumed trains on exactly the batches of the uninterrupted run.
        sampler = EpochShuffleSampler(pairs, seed=self.seed)
        resume = {"start_batch": self._start_batch}
        self._start_batch = 0
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
        if self.split_names["validation"] is None:
            return []  # Lightning skips validation
        return self._loader(self._role("validation", "validate"), batch_size=self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._role("test", "test"), batch_size=self.eval_batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def _load(self, role: str) -> SentencePairs:
        split = self.split_names[role]
        if is_local(self.path):
            raws = read_local_split(self.path, split, role)
        else:
            raws = read_hub_split(self.path, split, role, self._hub)
        rows, dropped = self._validate(raws)
        if not rows.labels:
            raise ValueError(
                f"split {split!r} of {self.path} has no pairs left to use (dropped {dropped} with empty sentences)"
            )
        if dropped:
            self.dropped[split] = dropped
        if role == "train" and self._label_kind == "label":
            self._train_num_labels = max(rows.labels) + 1
        rows = self._limit(rows, self.limits[role])
        table = self._require_table()
        ids = table.add(rows.sentence1 + rows.sentence2)
        count = len(rows.labels)
        log.info("%s split %r: %d pairs, %d unique sentences so far", self.path, split, count, len(table))
        return SentencePairs(ids[:count], ids[count:], rows.labels, rows.rows)

    def _validate(self, raws: list[RawSplit]) -> tuple[PairRows, int]:
        """All files of a split, checked and joined; pair ids run on across files (shards)."""
        joined = PairRows([], [], [], [])
        offset = dropped = 0
        for raw in raws:
            self._check_kind(label_kind_of(raw), raw.source)
            rows = validate_split(raw, self.empty_sentences, self.score_scale)
            joined.sentence1 += rows.sentence1
            joined.sentence2 += rows.sentence2
            joined.labels += rows.labels
            joined.rows += [offset + row for row in rows.rows]
            offset += len(raw)
            if rows.dropped_empty:
                dropped += rows.dropped_empty
                skipped = f"skipped {rows.dropped_empty} pair(s) with an empty sentence"
                rank_zero_warn(f"{raw.source}: {skipped} (empty_sentences='skip')")
        return joined, dropped

    def _check_kind(self, kind: str, source: str) -> None:
        if self.score_scale is not None and kind == "label":
            raise ValueError(
                f"score_scale={self.score_scale} was given but {source} has integer labels, not scores; "
                f"drop score_scale"
            )
        if self._label_kind is None:
            self._label_kind, self._label_source = kind, source
        elif kind != self._label_kind:
            raise ValueError(
                f"{source} has a {kind!r} column but {self._label_source} has {self._label_kind!r}; "
                f"every split of one data set needs the same kind of target"
            )

    def _limit(self, rows: PairRows, limit: int | None) -> PairRows:
        keep = seeded_subset(len(rows.labels), limit, self.seed)
        columns = (rows.sentence1, rows.sentence2, rows.labels, rows.rows)
        return PairRows(*([values[i] for i in keep] for values in columns), dropped_empty=rows.dropped_empty)

    def _require_table(self) -> SentenceTable:
        if self.table is None:
            if self.tokenizer_spec is None:
                raise ValueError(
                    "SentencePairDataModule needs a tokenizer: pass tokenizer=<model name or folder> "
                    "(the poolhead command links it to model.backbone)"
                )
            tokenizer, max_length = load_tokenizer(self.tokenizer_spec, self._max_length)
            self.table = SentenceTable(tokenizer, max_length)
        return self.table

    def _role(self, role: str, stage: str) -> SentencePairs:
        if role not in self.pairs:
            self.setup(stage)
        return self.pairs[role]

    def _loader(self, pairs: SentencePairs, loader_class: type[DataLoader] = DataLoader, **kwargs: Any) -> DataLoader:
        return loader_class(
            pairs,
            collate_fn=PairCollator(self.table, self._label_kind),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )


def _check_options(empty_sentences: str, **counts: int | None) -> None:
    if empty_sentences not in EMPTY_SENTENCE_POLICIES:
        choices = ", ".join(EMPTY_SENTENCE_POLICIES)
        raise ValueError(f"empty_sentences must be one of {choices}, got {empty_sentences!r}")
    for name, value in counts.items():
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1 (or None where allowed), got {value}")
