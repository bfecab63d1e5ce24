"""Small pair files: ``write_rows`` for the rows a test spells out, ``write_pairs`` for templated sentences
(subject + action) with random labels or scores, for compare and suite tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SUBJECTS = ["A man", "A woman", "A child", "The chef", "Two dogs", "A pilot", "The doctor", "An old farmer"]
ACTIONS = ["plays the guitar", "is cooking pasta", "runs in the park", "reads a long book", "rides a red bike"]


def sentence(i: int) -> str:
    return f"{SUBJECTS[i % len(SUBJECTS)]} {ACTIONS[(i // len(SUBJECTS)) % len(ACTIONS)]}."


#: the header of a pairs file with 0/1 labels (write_rows' default is a file of scores)
LABEL_HEADER = ("sentence1", "sentence2", "label")


def write_rows(path: Path, rows: list, header: tuple[str, ...] = ("sentence1", "sentence2", "score")) -> Path:
    """A csv pairs file of ``rows`` under ``header``, at ``path`` (its folder made); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def write_pairs(path: Path, column: str, rows: int, offset: int) -> None:
    """``rows`` pairs with a ``column`` of 0/1 labels (``label``) or [0, 1] scores, seeded by ``offset``."""
    rng = np.random.default_rng(offset)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", column])
        for i in range(rows):
            first, second = sentence(offset + i), sentence(offset + 3 * i + 1)
            value = int(rng.integers(0, 2)) if column == "label" else round(float(rng.uniform(0, 1)), 2)
            writer.writerow([first, second, value])
