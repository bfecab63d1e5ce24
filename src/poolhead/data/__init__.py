"""Sentence-pair data: local files or hub datasets, validated at load, tokenized once per unique sentence."""

from poolhead.data.batching import (
    EpochShuffleSampler,
    LengthGroupedBatchSampler,
    PairCollator,
    ResumableDataLoader,
    SentencePairs,
)
from poolhead.data.module import SentencePairDataModule
from poolhead.data.sentences import SentenceTable, load_tokenizer
from poolhead.data.validation import EXPECTED_SCHEMA

__all__ = [
    "EXPECTED_SCHEMA",
    "EpochShuffleSampler",
    "LengthGroupedBatchSampler",
    "PairCollator",
    "ResumableDataLoader",
    "SentencePairDataModule",
    "SentencePairs",
    "SentenceTable",
    "load_tokenizer",
]
