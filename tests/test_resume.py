"""Resuming as README documents it: ``poolhead fit --config C`` killed with SIGKILL mid-epoch, then
``poolhead fit --config C --ckpt_path last`` continues the same run folder, keeps its metrics history
and ends where an uninterrupted run ends, with a dropout head; the checkpoints on disk are whole and
load without unpickling code."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml

from poolhead.cli import main
from poolhead.training.module import PoolingModule

# 64 pairs / 16 per batch = 4 steps per epoch; a checkpoint every 3 steps lands mid-epoch.
STEPS_PER_EPOCH, EPOCHS, CHECKPOINT_EVERY = 4, 3, 3
PAUSE_AT_STEP = 7  # epoch 1, third batch; the last checkpoint (step 6) is one step behind
RUN = Path("runs") / "tiny-dropout" / "version_0"

PAUSE_CALLBACK = textwrap.dedent(
    '''
    import time
    from pathlib import Path

    import lightning as L


    class PauseOnce(L.Callback):
        """The first time a run reaches `step`, say so in `marker` and wait there to be killed."""

        def __init__(self, step: int, marker: str) -> None:
            self.step, self.marker = step, Path(marker)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == self.step and not self.marker.exists():
                self.marker.write_text(str(batch_idx))
                time.sleep(600)
    '''
)


@pytest.fixture(autouse=True)
def one_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "feature-cache"))
    monkeypatch.setattr("sys.argv", ["poolhead"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def data_config(data_dir: Path, data: str) -> tuple[dict, dict]:
    """One data set (STS-B), or a mixture of STS-B scores and MSRP paraphrases (2 + 2 batches an epoch)."""
    if data == "stsb":
        return {"path": str(data_dir / "stsb"), "limit_train_pairs": STEPS_PER_EPOCH * 16}, {}
    datasets = [
        {"name": "stsb", "path": str(data_dir / "stsb"), "loss": "cosent"},
        {"name": "msrp", "path": str(data_dir / "msrp"), "loss": "in_batch_negatives", "positives_only": True},
    ]
    return {"datasets": datasets, "limit_train_pairs": STEPS_PER_EPOCH * 8}, {"monitor": "val/combined"}


def write_config(folder: Path, tiny_model_dir: str, data_dir: Path, marker: Path, data: str = "stsb") -> Path:
    """A config as a user writes one: a dropout head, its CSV logger under runs/, checkpoints every 3 steps."""
    config = {
        "seed_everything": 7,
        "model": {
            "backbone": tiny_model_dir,
            "pooler": "attention",
            "pooler_kwargs": {"num_heads": 2, "dropout": 0.5},
            "lr": 0.05,  # large steps: a different batch or dropout draw shows in the final weights
        },
        "data": {**data_config(data_dir, data)[0], "limit_eval_pairs": 32, "batch_size": 16},
        "trainer": {
            "accelerator": "cpu",
            "max_epochs": EPOCHS,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": {
                "class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {"save_dir": "runs", "name": "tiny-dropout"},
            },
            "callbacks": [
                {"class_path": "pause_callback.PauseOnce", "init_args": {"step": PAUSE_AT_STEP, "marker": str(marker)}}
            ],
        },
        "checkpoint": {"every_n_train_steps": CHECKPOINT_EVERY, **data_config(data_dir, data)[1]},
        "early_stopping": data_config(data_dir, data)[1],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny_dropout.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def metrics_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / RUN / "metrics.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def kill_at_pause(command: list[str], cwd: Path, callback_dir: Path, marker: Path) -> None:
    """Run ``command`` in a child process and SIGKILL it once it reports the pause step."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(callback_dir), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = "1"
    child = subprocess.Popen(
        [sys.executable, "-m", "poolhead.cli", *command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, f"the run ended before the pause:\n{child.stdout.read().decode()[-3000:]}"
            assert time.monotonic() < deadline, "the run did not reach the pause step in 120 s"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("data", ["stsb", "mixture"])
def test_a_killed_run_resumes_with_ckpt_path_last_as_readme_shows(
    tiny_model_dir, data_dir, tmp_path, monkeypatch, data
):
    metric = "val/spearman" if data == "stsb" else "val/combined"
    callback_dir = tmp_path / "callback"
    callback_dir.mkdir()
    (callback_dir / "pause_callback.py").write_text(PAUSE_CALLBACK, encoding="utf-8")
    monkeypatch.syspath_prepend(str(callback_dir))

    # The reference: the same config run without interruption (its pause marker exists: no pause).
    uninterrupted = tmp_path / "uninterrupted"
    (tmp_path / "no-pause").write_text("")
    config = write_config(uninterrupted, tiny_model_dir, data_dir, tmp_path / "no-pause", data)
    monkeypatch.chdir(uninterrupted)
    assert main(["fit", "--config", str(config)]) == 0

    killed = tmp_path / "killed"
    marker = tmp_path / "paused"
    config = write_config(killed, tiny_model_dir, data_dir, marker, data)
    kill_at_pause(["fit", "--config", str(config)], killed, callback_dir, marker)
    assert marker.read_text() == str(PAUSE_AT_STEP - STEPS_PER_EPOCH)  # killed inside epoch 1
    before = metrics_rows(killed)
    assert any(row[metric] for row in before)  # epoch 0 was validated before the kill

    # Whatever the kill interrupted, every checkpoint on disk is whole and loads without unpickling code.
    checkpoints = sorted((killed / RUN / "checkpoints").iterdir())
    assert checkpoints and all(p.suffix == ".ckpt" for p in checkpoints)
    for path in checkpoints:
        torch.load(path, map_location="cpu", weights_only=True)
    last = torch.load(killed / RUN / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 6 and last["epoch"] == 1
    PoolingModule.load_from_checkpoint(killed / RUN / "checkpoints" / "last.ckpt", map_location="cpu")

    monkeypatch.chdir(killed)
    assert main(["fit", "--config", str(config), "--ckpt_path", "last"]) == 0

    # The same run folder, not version_1; every row written before the kill is still there.
    assert [p.name for p in (killed / "runs" / "tiny-dropout").iterdir()] == ["version_0"]
    after = metrics_rows(killed)
    assert after[: len(before)] == before
    assert len(after) > len(before)
    # The same batches and the same dropout draws: the head ends with the uninterrupted run's weights.
    ends = [
        torch.load(folder / RUN / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        for folder in (uninterrupted, killed)
    ]
    assert ends[1]["global_step"] == ends[0]["global_step"] == EPOCHS * STEPS_PER_EPOCH
    torch.testing.assert_close(ends[1]["state_dict"], ends[0]["state_dict"])
    final = [float(r[metric]) for r in metrics_rows(uninterrupted) if r[metric]][-1]
    assert [float(r[metric]) for r in after if r[metric]][-1] == pytest.approx(final, abs=1e-4)

    # Running the resume command again (the run is complete) keeps the history and does not crash.
    assert main(["fit", "--config", str(config), "--ckpt_path", "last"]) == 0
    assert metrics_rows(killed)[: len(after)] == after
