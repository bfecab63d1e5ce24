"""Resuming a killed run where it stopped: same run folder, its metrics kept, the same random draws.

``poolhead fit --config C --ckpt_path last`` continues the latest run of that config:

- the CSV logger writes into the run folder (``version_<n>``) whose checkpoint is resumed,
  instead of opening ``version_<n+1>``, where Lightning finds no ``last.ckpt`` and silently starts
  over;
- that folder's ``metrics.csv`` keeps every earlier row (Lightning's writer deletes it and later
  fails on a header mismatch), also in a version the user chose;
- a model or data option that differs from the checkpoint's is refused: the run would continue
  the checkpoint's optimizer state while its config states the new value;
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

from poolhead.errors import UserFileNotFoundError, UserValueError
from poolhead.training.checkpoints import read_checkpoint

#: checkpoint key of the seed that the per-step random draws derive from
STEP_SEED_KEY = "poolhead_step_seed"
VERSION_FOLDER = re.compile(r"version_(\d+)")
#: options that cannot change what a run computes (paths of moved folders, caching, memory, workers),
#: and dataset_losses, which a mixture's data.datasets (compared) fills in as the fit starts: they may
#: differ between a checkpoint and the run that resumes it. data.max_length follows model.max_length (a link),
#: which is compared as the length the backbone resolved; the data module keeps the value as given (None)
ENGINEERING_OPTIONS = {
    "model": {
        "backbone",
        "cache",
        "cache_dir",
        "forward_chunk_size",
        "gradient_checkpointing",
        "_instantiator",
        "dataset_losses",
    },
    "data": {"tokenizer", "max_length", "num_workers", "eval_batch_size", "num_proc", "data_root"},
}


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
    """Point the CSV logger of a resumed fit at the run folder of the checkpoint it resumes, keeping its rows."""
    if not ckpt_path:
        return
    dirpath = _checkpoint_dirpath(trainer)
    for logger in trainer.loggers:
        if not isinstance(logger, CSVLogger):
            continue
        if logger._version is None:  # else a version the user chose (--trainer.logger.init_args.version) is kept
            version = run_version(Path(logger.root_dir), str(ckpt_path), dirpath)
            if version is None:
                continue
            logger._version = version
        if trainer.is_global_zero:
            logger._experiment = HistoryKeepingWriter(logger.log_dir)


def check_resumed_options(trainer: Any, ckpt_path: str | None, model: Any, datamodule: Any) -> None:
    """Refuse to resume a checkpoint with other model or data options than it was trained with.

    The optimizer state, the schedule and the history come from the checkpoint: a run resumed with a new
    ``lr`` would continue the old one while config.yaml, the hyper-parameters and the model card state
    the new value. Options that cannot change results (:data:`ENGINEERING_OPTIONS`) may differ.
    """
    path = resumed_checkpoint(trainer, ckpt_path)
    if path is None:
        return
    checkpoint = read_checkpoint(path)
    sections = (("model", "hyper_parameters", model), ("data", "datamodule_hyper_parameters", datamodule))
    for section, key, component in sections:
        before, now = checkpoint.get(key) or {}, dict(getattr(component, "hparams", None) or {})
        # Only options both know: one added to poolhead since the checkpoint ran at its default.
        for name in sorted((set(before) & set(now)) - ENGINEERING_OPTIONS[section]):
            if before[name] != now[name]:
                raise UserValueError(
                    f"--ckpt_path {ckpt_path}: {section}.{name} is {now[name]!r} now but {before[name]!r} in "
                    f"{path}, whose optimizer state and history were made with it; resume with {section}.{name} "
                    f"{before[name]!r}, or start a new run without --ckpt_path"
                )


def resumed_checkpoint(trainer: Any, ckpt_path: str | None) -> Path | None:
    """The file a fit resumes from (``last``: the run folder's ``checkpoints/last.ckpt``), or None."""
    if not ckpt_path:
        return None
    if str(ckpt_path) != "last":
        path = Path(ckpt_path)
    elif (dirpath := _checkpoint_dirpath(trainer)) is not None:
        path = Path(dirpath) / "last.ckpt"
    elif trainer.loggers:  # ModelCheckpoint's default folder: <the logger's run folder>/checkpoints
        path = Path(trainer.loggers[0].log_dir) / "checkpoints" / "last.ckpt"
    else:
        return None
    return path if path.is_file() else None


def _checkpoint_dirpath(trainer: Any) -> str | None:
    dirpaths = [cb.dirpath for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)]
    return next((d for d in dirpaths if d), None)


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
