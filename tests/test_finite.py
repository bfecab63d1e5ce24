"""A non-finite number is never a result: a diverged fit stops at its first NaN, and compare, predict,
export and push refuse NaN weights or embeddings, naming where they came from."""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning as L
import pytest
import torch

from poolhead.cli import main
from poolhead.training.checkpoints import read_checkpoint
from poolhead.training.finite import nonfinite_tensors
from poolhead.training.module import PoolingModule

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def feature_cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "feature-cache"))
    monkeypatch.setattr("sys.argv", ["poolhead"])


def only_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("poolhead ")]
    return line


def poison(module: torch.nn.Module) -> None:
    """Every weight of ``module`` NaN: what a diverged fit leaves behind."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.fill_(float("nan"))


def test_a_diverging_fit_stops_at_its_first_nan_and_saves_no_nan_checkpoint(
    tiny_model_dir, data_dir, tmp_path, capsys
):
    runs = tmp_path / "runs"
    fit = ["fit", f"--model.backbone={tiny_model_dir}", "--model.pooler_kwargs={num_heads: 2}",
           "--model.lr=1e30", "--model.warmup_ratio=0", f"--data.path={data_dir / 'stsb'}",
           "--data.limit_train_pairs=64", "--data.limit_eval_pairs=32", "--data.batch_size=16",
           "--trainer.max_epochs=3", "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false",
           f"--trainer.logger.init_args.save_dir={runs}", f"--trainer.default_root_dir={tmp_path}"]  # fmt: skip
    assert main(fit) == 2
    line = only_line(capsys)
    assert "training stopped at step" in line and "--model.lr" in line
    saved = list(runs.rglob("*.ckpt"))
    for path in saved:  # nothing non-finite on disk: a best/last checkpoint would be exported
        assert nonfinite_tensors(read_checkpoint(path)["state_dict"]) == [], path


def test_a_checkpoint_with_nan_weights_is_never_written(tiny_model_dir, tmp_path):
    model = PoolingModule(backbone=tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2})
    poison(model.pooler)
    callbacks = model.configure_callbacks()  # what fit adds to the trainer's callbacks
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=callbacks)
    trainer.strategy.connect(model)
    with pytest.raises(ValueError, match="pooler.scorer.weight"):
        trainer.save_checkpoint(tmp_path / "nan.ckpt")
    assert not (tmp_path / "nan.ckpt").exists()
