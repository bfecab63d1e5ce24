"""What every measurement in scripts/ shares: a fresh process, interleaved repeats with wall-clock
and CPU time, peak memory, the data root, and the record it writes on docs/results.md.

``python scripts/measure.py --list`` names every measurement and the record it writes.
"""

from __future__ import annotations

import argparse

from .data import DEFAULT_DATA_ROOT, add_data_root, data_folder, numbered, stsb_sentences, validation_as_evaluation
from .fresh import report, run_fresh
from .memory import current_rss_mib, peak_rss_mib, process_memory
from .results_page import printed_text, record, text_block
from .timing import interleaved, medians, per_repeat_ratios, timed

#: Options that steer a run but are not its inputs (where to write, which child process it is).
NOT_INPUTS = {"json", "child", "run_one", "work", "slice", "only", "output"}


def inputs_of(args: argparse.Namespace) -> dict:
    """The settings a record's figures were measured with."""
    return {key: value for key, value in vars(args).items() if key not in NOT_INPUTS}


__all__ = [
    "DEFAULT_DATA_ROOT", "add_data_root", "current_rss_mib", "data_folder", "inputs_of", "interleaved", "medians",
    "numbered", "peak_rss_mib", "per_repeat_ratios", "printed_text", "process_memory", "record", "report",
    "run_fresh", "stsb_sentences", "text_block", "timed", "validation_as_evaluation",
]  # fmt: skip
