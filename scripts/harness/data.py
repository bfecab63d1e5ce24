"""Where the measurements read their data: one ``--data-root`` for every script."""

from __future__ import annotations

import argparse
import csv
import shutil
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


def validation_as_evaluation(data_root: str, source: str, folder: Path, score_from: str | None = None) -> Path:
    """``source``'s validation split laid out as an evaluation folder (compare scores a folder's test.csv),
    so that a recipe is chosen on held-out rows and never on the test split. ``score_from``: that column
    is written as ``score`` (a 0/1 label is then ranked against cosine by Spearman, as STS is);
    otherwise the file is copied as it is."""
    folder.mkdir(parents=True, exist_ok=True)
    source_file = data_folder(data_root, source) / "validation.csv"
    if score_from is None:
        shutil.copyfile(source_file, folder / "test.csv")
        return folder
    with open(source_file, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with open(folder / "test.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sentence1", "sentence2", "score"])
        writer.writeheader()
        writer.writerows(
            {"sentence1": r["sentence1"], "sentence2": r["sentence2"], "score": r[score_from]} for r in rows
        )
    return folder


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
