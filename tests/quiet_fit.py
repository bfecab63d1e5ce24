"""A CPU Trainer with nothing written or shown (no logger, checkpoints, progress bar or summary), a short fit
with it, and the checkpoint a training run would leave, written without training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L


def quiet_trainer(tmp_path: Path | None = None, **options: Any) -> L.Trainer:
    """The Trainer every test drives; ``options`` (a logger, callbacks, max_epochs ...) override the quiet defaults."""
    defaults = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": tmp_path,
    }
    return L.Trainer(**{**defaults, **options})


def quiet_fit(model: L.LightningModule, data: L.LightningDataModule, tmp_path: Path, epochs: int = 2) -> L.Trainer:
    trainer = quiet_trainer(tmp_path, max_epochs=epochs)
    trainer.fit(model, data)
    return trainer


def saved_checkpoint(model: L.LightningModule, path: Path, **options: Any) -> Path:
    """``model`` saved at ``path`` as a training run's checkpoint (hyperparameters and weights), untrained;
    ``options`` go to the Trainer that writes it (callbacks whose state the checkpoint carries ...)."""
    trainer = quiet_trainer(Path(path).parent, **options)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return Path(path)
