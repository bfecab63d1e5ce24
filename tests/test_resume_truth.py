"""Resuming does what the README says: ``last.ckpt`` is the last epoch even when the metric stopped
improving, a run resumed into a version the user chose keeps its ``metrics.csv`` rows, and a run
resumed with another option than its checkpoint's is refused by name instead of recording a value
it did not train with."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from poolhead.cli import main

PAIRS, BATCH_SIZE = 16, 8
STEPS_PER_EPOCH = PAIRS // BATCH_SIZE
VERSION = 5
RUN = Path("runs") / "truth" / f"version_{VERSION}"


@pytest.fixture(autouse=True)
def one_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "feature-cache"))
    monkeypatch.setattr("sys.argv", ["poolhead"])
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_config(tmp_path: Path, tiny_model_dir: str, data_dir: Path, lr: float) -> Path:
    """A user's config with its own logger version; ``lr`` 1e-30 leaves the weights, so the metric, unchanged."""
    config = {
        "seed_everything": 7,
        "model": {"backbone": tiny_model_dir, "pooler": "attention", "pooler_kwargs": {"num_heads": 2}, "lr": lr},
        "data": {
            "path": str(data_dir / "stsb"),
            "limit_train_pairs": PAIRS,
            "limit_eval_pairs": 16,
            "batch_size": BATCH_SIZE,
        },
        "trainer": {
            "accelerator": "cpu",
            "max_epochs": 3,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": {
                "class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {"save_dir": "runs", "name": "truth", "version": VERSION},
            },
        },
    }
    path = tmp_path / "truth.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def metrics_rows() -> list[dict[str, str]]:
    with open(RUN / "metrics.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def last_checkpoint() -> dict:
    return torch.load(RUN / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_last_ckpt_is_the_last_epoch_when_the_metric_stopped_improving(tiny_model_dir, data_dir, tmp_path):
    config = write_config(tmp_path, tiny_model_dir, data_dir, lr=1e-30)
    assert main(["fit", "--config", str(config)]) == 0
    spearman = [float(row["val/spearman"]) for row in metrics_rows() if row["val/spearman"]]
    assert len(spearman) == 3 and len(set(spearman)) == 1  # no epoch after the first improved
    assert len(list((RUN / "checkpoints").glob("best-*.ckpt"))) == 1
    last = last_checkpoint()
    assert last["epoch"] == 2 and last["global_step"] == 3 * STEPS_PER_EPOCH


def test_resuming_into_a_chosen_version_keeps_its_metrics_rows(tiny_model_dir, data_dir, tmp_path):
    config = write_config(tmp_path, tiny_model_dir, data_dir, lr=1e-3)
    assert main(["fit", "--config", str(config), "--trainer.max_epochs", "1"]) == 0
    before = metrics_rows()
    assert any(row["val/spearman"] for row in before)
    resume = ["fit", "--config", str(config), "--trainer.max_epochs", "2", "--ckpt_path", "last"]
    assert main([*resume, "--trainer.logger.init_args.version", str(VERSION)]) == 0
    after = metrics_rows()
    assert after[: len(before)] == before
    assert len([row for row in after if row["val/spearman"]]) == 2
    assert last_checkpoint()["global_step"] == 2 * STEPS_PER_EPOCH


def test_resuming_with_another_option_is_refused_by_name(tiny_model_dir, data_dir, tmp_path, capsys):
    config = write_config(tmp_path, tiny_model_dir, data_dir, lr=1e-3)
    assert main(["fit", "--config", str(config), "--trainer.max_epochs", "1"]) == 0
    written = (RUN / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    capsys.readouterr()
    resume = ["fit", "--config", str(config), "--trainer.max_epochs", "2", "--ckpt_path", "last"]
    assert main([*resume, "--model.lr", "0.01"]) == 2
    error = capsys.readouterr().err
    assert "model.lr is 0.01 now but 0.001 in" in error and "resume with model.lr 0.001" in error
    assert (RUN / "checkpoints" / "last.ckpt").stat().st_mtime_ns == written  # nothing ran
    assert main([*resume, "--data.batch_size", "4"]) == 2
    assert "data.batch_size is 4 now but 8 in" in capsys.readouterr().err
    # What cannot change results may differ: here, the workers that load batches and where features are cached.
    assert main([*resume, "--data.num_workers", "0", "--model.cache_dir", str(tmp_path / "elsewhere")]) == 0
    assert last_checkpoint()["global_step"] == 2 * STEPS_PER_EPOCH


def test_resuming_from_a_checkpoint_file_compares_a_config_value_that_is_the_default(
    tiny_model_dir, data_dir, tmp_path, capsys
):
    trained = write_config(tmp_path, tiny_model_dir, data_dir, lr=1e-2)
    assert main(["fit", "--config", str(trained), "--trainer.max_epochs", "1"]) == 0
    checkpoint = str(RUN / "checkpoints" / "last.ckpt")
    capsys.readouterr()
    # 1e-3 is PoolingModule's default lr: the config names it, so the checkpoint's 1e-2 may not replace it.
    default_lr = Path(shutil.copy(write_config(tmp_path, tiny_model_dir, data_dir, lr=1e-3), tmp_path / "d.yaml"))
    assert main(["fit", "--config", str(default_lr), "--trainer.max_epochs", "2", "--ckpt_path", checkpoint]) == 2
    assert "model.lr is 0.001 now but 0.01 in" in capsys.readouterr().err
    resumed = write_config(tmp_path, tiny_model_dir, data_dir, lr=1e-2)  # the other direction: the same value
    assert main(["fit", "--config", str(resumed), "--trainer.max_epochs", "2", "--ckpt_path", checkpoint]) == 0
    assert last_checkpoint()["global_step"] == 2 * STEPS_PER_EPOCH
