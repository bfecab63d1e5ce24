"""Where the measurements read their data: one ``--data-root`` for every script."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: As the configs' ``--data.data_root`` takes it; relative paths are from the repository root,
#: where every recorded command runs.
DEFAULT_DATA_ROOT = "../shared/data"


def add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root",
        default=DEFAULT_DATA_ROOT,
        help=f"local copy of the data sets (stsb/, msrp/, ...), default {DEFAULT_DATA_ROOT} (from the repository root)",
    )


def data_folder(data_root: str, name: str = "stsb") -> Path:
    """The folder of one data set under ``data_root``."""
    root = Path(data_root)
    return (root if root.is_absolute() else REPO / root) / name


def stsb_sentences(data_root: str, count: int) -> list[str]:
    """``count`` STS-B sentences in file order (train, validation, test), unique first, then repeated."""
    sentences: dict[str, None] = {}
    for split in ("train", "validation", "test"):
        with open(data_folder(data_root) / f"{split}.csv", newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                sentences.setdefault(row["sentence1"])
                sentences.setdefault(row["sentence2"])
    unique = list(sentences)
    return [unique[i % len(unique)] for i in range(count)]


def numbered(texts: list[str], count: int) -> list[str]:
    """``count`` distinct texts: ``texts`` repeated, each with a running number appended."""
    return [f"{texts[i % len(texts)]} #{i}" for i in range(count)]
