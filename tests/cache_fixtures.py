"""The feature-cache tests' setup: STS-B sentences to cache, a build that counts the sentences the backbone
encoded, and the folders and features a build leaves. The tiny backbone they cache is conftest's
``cache_backbone`` (loaded at ``MAX_LENGTH``)."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from poolhead.cache import LAST, build_feature_cache

#: the max_length every feature-cache test loads its backbone with
MAX_LENGTH = 32


def stsb_sentences(data_dir: Path, pairs: int) -> list[str]:
    """Both sentences of the first ``pairs`` STS-B training pairs: every first sentence, then every second."""
    with open(data_dir / "stsb" / "train.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:pairs]
    return [row["sentence1"] for row in rows] + [row["sentence2"] for row in rows]


class EncodeCounter:
    """Counts the sentences a backbone is run on."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.sentences = 0
        self.handle = model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs) -> None:
        self.sentences += kwargs["input_ids"].shape[0] if "input_ids" in kwargs else args[0].shape[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def build(backbone, texts, cache_dir, layers=(LAST,), **kwargs):
    """The feature cache of ``texts`` in ``cache_dir`` (no progress bar), and how many sentences it encoded."""
    with EncodeCounter(backbone.model) as counter:
        cache = build_feature_cache(
            backbone, texts, list(layers), cache_dir=cache_dir, show_progress_bar=False, **kwargs
        )
    return cache, counter.sentences


def cache_folders(root: Path) -> list[Path]:
    """The folders a cache directory holds: one per backbone setting."""
    return [p for p in root.iterdir() if p.is_dir()]


def token_features(cache, n: int) -> torch.Tensor:
    """The token features of the cache's first ``n`` texts."""
    return cache.lookup(torch.arange(n))[0]
