"""One measurement in a fresh Python process: its memory and its CPU time are its own.

The measuring side calls ``report(result)``, which prints one ``RESULT {json}`` line; the
launching side calls ``run_fresh(argv)`` (or ``start`` / ``finish`` to run several at once) and
gets those results back, each with ``process_s`` (wall-clock of the whole process, start-up and
imports included) and ``process_cpu_s`` (user + system CPU seconds of that process and of every
process it waited for, from ``wait4``: on a shared machine the wall-clock also counts the time
other processes held the cores, the CPU seconds only this work).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .memory import peak_rss_mib

REPO = Path(__file__).resolve().parents[2]
MARK = "RESULT "
#: Offline and quiet, whatever the launching shell has: the measurements must not reach the hub.
ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def report(result: dict, with_peak_memory: bool = True) -> None:
    """Print ``result`` for the launching process; adds this process's peak RSS (VmHWM) unless told not to."""
    if with_peak_memory:
        result = {"peak_rss_mib": peak_rss_mib(), **result}
    print(MARK + json.dumps(result), flush=True)


def parse_results(stdout: str) -> list[dict]:
    """Every ``RESULT {json}`` printed; two DDP processes can print onto one line of the shared stdout."""
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(piece)[0] for piece in stdout.split(MARK)[1:]]


@dataclass
class Running:
    label: str
    process: subprocess.Popen
    output: IO[str]
    started: float


def start(argv: list[str], label: str, log: Path | None = None, env: dict | None = None) -> Running:
    """Start ``python ARGV`` from the repository root; its output goes to ``log`` (or a scratch file),
    never to a pipe nobody reads, which would stall it."""
    output = open(log, "w+", encoding="utf-8") if log else tempfile.TemporaryFile("w+", encoding="utf-8")
    environment = {**os.environ, **ENVIRONMENT, **(env or {})}
    path = os.pathsep.join([str(REPO / "scripts"), environment.get("PYTHONPATH", "")])
    environment["PYTHONPATH"] = path.rstrip(os.pathsep)
    process = subprocess.Popen(
        [sys.executable, *argv], stdout=output, stderr=subprocess.STDOUT, env=environment, cwd=REPO, text=True
    )
    return Running(label, process, output, time.perf_counter())


def finish(running: Running) -> list[dict]:
    """Wait for a started measurement; its results, each with the process's wall-clock and CPU seconds."""
    _, status, usage = os.wait4(running.process.pid, 0)
    running.process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - running.started
    running.output.seek(0)
    text = running.output.read()
    running.output.close()
    results = parse_results(text)
    if running.process.returncode or not results:
        sys.stderr.write(text[-6000:])
        raise SystemExit(f"{running.label} failed with exit code {running.process.returncode}")
    for result in results:
        result.update(process_s=elapsed, process_cpu_s=usage.ru_utime + usage.ru_stime)
    return results


def run_fresh(argv: list[str], label: str, log: Path | None = None, env: dict | None = None) -> list[dict]:
    """``python ARGV`` in a fresh process, waited for; what it reported (one result per process of a DDP run)."""
    return finish(start(argv, label, log, env))
