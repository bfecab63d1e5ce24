"""When setting up data shows progress bars: for large data sets only, and on one process.

A few thousand pairs set up in a second, and a test suite reads hundreds of small files: bars
there are noise. A million pairs take a while per step (reading, checking, finding the unique
sentences, tokenizing), and a bar says how long.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import datasets
from datasets.utils.tqdm import tqdm
from lightning.pytorch.utilities.rank_zero import rank_zero_only

#: splits with at least this many rows show a bar per step of their setup
PROGRESS_MIN_ROWS = 100_000
#: files at least this large show ``datasets``' bar while it reads them
PROGRESS_MIN_BYTES = 32 * 2**20


def progress_wanted(rows: int) -> bool:
    """Bars for a split of ``rows`` rows: large enough, on the first process, and not switched off in ``datasets``."""
    return rows >= PROGRESS_MIN_ROWS and rank_zero_only.rank == 0 and datasets.is_progress_bar_enabled()


def progress_bar(total: int, description: str, shown: bool) -> tqdm:
    """A bar over ``total`` rows, or a silent one."""
    return tqdm(total=total, desc=description, unit=" rows", disable=not shown)


@contextmanager
def datasets_progress(shown: bool) -> Iterator[None]:
    """``datasets``' own bars (reading a file, ``map``) on or off for the duration, as they were afterwards."""
    was_enabled = datasets.is_progress_bar_enabled()
    if was_enabled and (not shown or rank_zero_only.rank != 0):
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
