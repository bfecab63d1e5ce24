"""A short fit on the CPU with nothing written or shown: no logger, checkpoints, progress bar or summary."""

from __future__ import annotations

from pathlib import Path

import lightning as L


def quiet_fit(model: L.LightningModule, data: L.LightningDataModule, tmp_path: Path, epochs: int = 2) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, data)
    return trainer
