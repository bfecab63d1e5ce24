"""Run a test file as a Lightning DDP job in a fresh process and read what each rank wrote.

The test files that use it are their own training job: run as a script, the file trains, and
Lightning's ``ddp`` strategy re-executes it once per extra process. Each rank writes
``rank<r>.json`` into ``results``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def launch_ddp_job(
    script: str, args: list[str], results: Path, world_size: int, timeout_s: int, env: dict | None = None
) -> list:
    """``python script *args`` with a clean rank environment; the ``rank<r>.json`` of every rank."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    environment.pop("LOCAL_RANK", None)  # the launcher must start as rank 0, not inherit a rank
    command = [sys.executable, str(Path(script).resolve()), *args]
    try:
        job = subprocess.run(command, check=False, env=environment, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the DDP job did not finish in {timeout_s} s (a process waits in a collective?):\n{error.stderr}")
    assert job.returncode == 0, job.stderr[-5000:]
    return [json.loads((results / f"rank{r}.json").read_text(encoding="utf-8")) for r in range(world_size)]
