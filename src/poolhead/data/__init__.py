"""Sentence-pair data: local files or hub datasets, validated at load, tokenized once per unique sentence."""

from poolhead.data.batching import (
    EpochShuffleSampler,
    LengthGroupedBatchSampler,
    PairCollator,
    ResumableDataLoader,
    SentencePairs,
)
from poolhead.data.columns import EXPECTED_SCHEMA, DataShape
from poolhead.data.mixture import MixtureBatchSampler
from poolhead.data.module import SentencePairDataModule
from poolhead.data.sentences import SentenceTable, load_tokenizer
from poolhead.data.sources import DatasetSource

__all__ = [
    "EXPECTED_SCHEMA",
    "DataShape",
    "DatasetSource",
    "EpochShuffleSampler",
    "LengthGroupedBatchSampler",
    "MixtureBatchSampler",
    "PairCollator",
    "ResumableDataLoader",
    "SentencePairDataModule",
    "SentencePairs",
    "SentenceTable",
    "load_tokenizer",
]
