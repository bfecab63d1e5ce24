"""Interleaved repeats: every method runs once per repeat, the first one rotating, so that the drift
of a shared machine between repeats hits all of them alike; each run's wall-clock and CPU seconds."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable


def cpu_seconds() -> float:
    """CPU seconds of this process (every thread) and of the child processes it has waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds) of ``run()``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    run()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def interleaved(
    runs: dict[str, Callable[[], object]], repeats: int, before: Callable[[str], None] | None = None
) -> dict[str, dict[str, list[float]]]:
    """Time each of ``runs`` ``repeats`` times, interleaved; ``before(name)`` runs untimed before each.

    Returns ``{"seconds": {name: [...]}, "cpu_seconds": {name: [...]}}``, one entry per repeat.
    """
    names = list(runs)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            if before:
                before(name)
            wall, used = timed(runs[name])
            seconds[name].append(wall)
            cpu[name].append(used)
            print(f"  run {repeat + 1}/{repeats} {name}: {wall:.1f} s ({used:.1f} s CPU)", flush=True)
    return {"seconds": seconds, "cpu_seconds": cpu}


def per_repeat_ratios(values: dict[str, list[float]], numerator: str, denominator: str) -> list[float]:
    """``numerator / denominator`` within each repeat: the two ran back to back, so drift cancels."""
    return [a / b for a, b in zip(values[numerator], values[denominator], strict=True)]


def medians(values: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(runs) for name, runs in values.items()}
