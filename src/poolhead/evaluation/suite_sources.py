"""Where a named suite's sets come from when the data root has no copy of them: the hub.

The ``ood`` suite's STS sets are the SemEval STS 2012–2016 test sets as MTEB publishes them
(``mteb/sts12-sts`` … ``mteb/sts16-sts``: sentence1, sentence2, score 0–5), **decontaminated**
against STS-B: STS-B was drawn from those years, so every pair whose either sentence occurs in any
split of ``sentence-transformers/stsb`` is dropped, as the copies under ``../shared/data`` were
made, and scores are divided by 5. MSRP is GLUE's ``mrpc`` test split (with its real labels).

A set with no hub source (semantoneg, see ``LOCAL_ONLY``) is read from the data root only; a data
root without it leaves it out of the suite, and ``poolhead compare`` says so.

The set is written once as ``test.csv`` under ``<HF_DATASETS_CACHE>/poolhead-suites/NAME`` and read
from there by the comparison like any local set, so its name in the tables stays ``sts13``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from poolhead.errors import UserValueError


@dataclass(frozen=True)
class HubSet:
    """One suite set on the hub: its id (and subset), the columns kept, and how scores are scaled."""

    repo_id: str
    subset: str | None = None
    target: str = "score"
    score_scale: float | None = 5.0
    decontaminate: bool = True


#: set name -> where it lives on the hub (test split)
HUB_SETS = {
    **{f"sts{year}": HubSet(f"mteb/sts{year}-sts") for year in range(12, 17)},
    "msrp": HubSet("nyu-mll/glue", "mrpc", target="label", score_scale=None, decontaminate=False),
}
#: the training set the suite is kept apart from (every split's sentences are dropped from the suite)
STSB = "sentence-transformers/stsb"
SPLIT = "test"


#: suite sets with no hub source: what they are, for the line saying how to include them
LOCAL_ONLY = {"semantoneg": "SemAntoNeg's premise split from the CANNOT compilation"}


def obtainable(name: str, data_root: str | Path) -> bool:
    """Whether a suite set can be had: a copy under ``data_root`` or a hub source."""
    return (Path(data_root) / name).exists() or name in HUB_SETS


def suite_set_source(name: str, data_root: str | Path) -> str | None:
    """``data_root/NAME`` when it exists, else the set built from the hub; None when neither has it."""
    if not obtainable(name, data_root):
        return None
    local = Path(data_root) / name
    return str(local) if local.exists() else str(hub_set_folder(name))


def cache_folder() -> Path:
    import datasets.config

    return Path(datasets.config.HF_DATASETS_CACHE) / "poolhead-suites"


def hub_set_folder(name: str, cache: Path | None = None) -> Path:
    """The folder holding the set's ``test.csv``, written from the hub on first use."""
    folder = (cache or cache_folder()) / name
    if not (folder / "test.csv").is_file():
        source = HUB_SETS[name]
        rows = hub_rows(source.repo_id, source.subset, source.target)
        if source.decontaminate:
            rows = decontaminated(rows, stsb_sentences())
        if source.score_scale is not None:
            rows = [(first, second, float(value) / source.score_scale) for first, second, value in rows]
        write_set(folder / "test.csv", rows, source.target)
    return folder


def hub_rows(repo_id: str, subset: str | None, target: str) -> list[tuple[str, str, float]]:
    """(sentence1, sentence2, score or label) of a hub data set's test split."""
    from poolhead.data.files import load_hub_dataset

    dataset = load_hub_dataset(repo_id, {}, subset)
    if SPLIT not in dataset:
        raise UserValueError(f"hub dataset {repo_id!r} has no {SPLIT!r} split (found {', '.join(dataset)})")
    table = dataset[SPLIT]
    missing = [c for c in ("sentence1", "sentence2", target) if c not in table.column_names]
    if missing:
        raise UserValueError(
            f"hub dataset {repo_id!r} lacks column(s) {', '.join(missing)} (found {', '.join(table.column_names)}); "
            f"put a local copy under --data-root instead"
        )
    return list(zip(table["sentence1"], table["sentence2"], table[target], strict=True))


def stsb_sentences() -> set[str]:
    """Every sentence of every STS-B split, normalised as ``decontaminated`` compares them."""
    from poolhead.data.files import load_hub_dataset

    dataset = load_hub_dataset(STSB, {})
    return {normalized(text) for split in dataset.values() for column in ("sentence1", "sentence2")
            for text in split[column]}  # fmt: skip


def decontaminated(rows: list[tuple[str, str, float]], seen: set[str]) -> list[tuple[str, str, float]]:
    """The rows neither of whose sentences is in ``seen`` (sentences compared with spacing normalised)."""
    return [row for row in rows if normalized(row[0]) not in seen and normalized(row[1]) not in seen]


def normalized(text: str) -> str:
    return " ".join(str(text).split())


def write_set(path: Path, rows: list[tuple[str, str, float]], target: str) -> None:
    """``test.csv`` written whole or not at all, so an interrupted first use is not read as the set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("sentence1", "sentence2", target), *rows])
    os.replace(partial, path)
