"""Resuming a killed run where it stopped: same run folder, its metrics kept, the same random draws.

``poolhead fit --config C --ckpt_path last`` continues the latest run of that config:

- the CSV logger writes into the run folder (``version_<n>``) whose checkpoint is resumed,
  instead of opening ``version_<n+1>``, where Lightning finds no ``last.ckpt`` and silently starts
  over;
- that folder's ``metrics.csv`` keeps every earlier row (Lightning's writer deletes it and later
  fails on a header mismatch);
- a training step's random draws (dropout) depend only on the seed, the step and the process
  rank, so a run resumed at step ``k`` draws what the uninterrupted run drew at step ``k``.
"""

from __future__ import annotations

import csv
import os
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from poolhead.errors import UserFileNotFoundError

#: checkpoint key of the seed that the per-step random draws derive from
STEP_SEED_KEY = "poolhead_step_seed"
VERSION_FOLDER = re.compile(r"version_(\d+)")


def step_seed(module: Any) -> int:
    """The seed of the run: Lightning's ``seed_everything`` value, else one drawn once (kept in checkpoints)."""
    if getattr(module, "_step_seed", None) is None:
        seed = os.environ.get("PL_GLOBAL_SEED")
        module._step_seed = int(seed) if seed is not None else random.SystemRandom().randrange(2**31)
    return module._step_seed


@contextmanager
def step_random_state(module: Any) -> Iterator[None]:
    """Run a training step with torch's generator seeded from (seed, step, rank), then restore it.

    Resuming from a checkpoint cannot replay the draws made before it (data loaders, sanity
    checks); seeding each step makes the draws of step ``k`` the same in every run that reaches it.
    """
    device = module.device
    devices = [device] if device.type == "cuda" else []
    trainer = module.trainer
    seed = (step_seed(module) * 1_000_003 + trainer.global_step) * 1_009 + trainer.global_rank
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed % 2**63)
        yield


class HistoryKeepingWriter(ExperimentWriter):
    """Lightning's CSV writer that appends to an existing ``metrics.csv`` instead of deleting it."""

    def _check_log_dir_exists(self) -> None:
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            header = next(csv.reader(file), [])
        # The known columns: new ones are added by rewriting the header, old rows are kept.
        self.metrics_keys = sorted(header)


def resume_in_same_run(trainer: Any, ckpt_path: str | None) -> None:
    """Point the CSV logger of a resumed fit at the run folder of the checkpoint it resumes."""
    if not ckpt_path:
        return
    dirpaths = [cb.dirpath for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)]
    dirpath = next((d for d in dirpaths if d), None)
    for logger in trainer.loggers:
        if not isinstance(logger, CSVLogger) or logger._version is not None:
            continue  # a version the user chose is kept
        version = run_version(Path(logger.root_dir), str(ckpt_path), dirpath)
        if version is None:
            continue
        logger._version = version
        if trainer.is_global_zero:
            logger._experiment = HistoryKeepingWriter(logger.log_dir)


def run_version(root: Path, ckpt_path: str, dirpath: str | None) -> int | None:
    """The ``version_<n>`` under ``root`` that resuming from ``ckpt_path`` continues; None for a new run."""
    versions = sorted(int(m.group(1)) for p in _children(root) if (m := VERSION_FOLDER.fullmatch(p.name)))
    if ckpt_path != "last":
        path = Path(ckpt_path).resolve()
        inside = path.parent.name == "checkpoints" and path.parent.parent.parent == root.resolve()
        match = VERSION_FOLDER.fullmatch(path.parent.parent.name) if inside else None
        return int(match.group(1)) if match else None
    if dirpath:
        if not (Path(dirpath) / "last.ckpt").is_file():
            raise UserFileNotFoundError(
                f"--ckpt_path last: there is no last.ckpt in {dirpath}, so no run to resume; "
                f"drop --ckpt_path to start a new run"
            )
        return versions[-1] if versions else None
    resumable = [v for v in versions if (root / f"version_{v}" / "checkpoints" / "last.ckpt").is_file()]
    if not resumable:
        raise UserFileNotFoundError(
            f"--ckpt_path last: no run under {root} has a checkpoints/last.ckpt, so there is nothing to "
            f"resume; drop --ckpt_path to start a new run"
        )
    return resumable[-1]


def _children(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
