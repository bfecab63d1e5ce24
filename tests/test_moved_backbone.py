"""A checkpoint trained on a local backbone folder that has since moved: a clear error, and the fix it
names (``--model.backbone NEW`` for test, ``--backbone NEW`` for export) works, still guarded by the
backbone's weights fingerprint."""

from __future__ import annotations

import shutil

import pytest
import torch
from quiet_fit import saved_checkpoint
from standins import tiny_model_folder

from poolhead.cli import main
from poolhead.training.module import PoolingModule


@pytest.fixture
def moved(tmp_path, one_thread):
    """A head checkpoint whose backbone folder was moved from ``old`` to ``new`` after training."""
    torch.manual_seed(3)
    old = tiny_model_folder(tmp_path / "old")
    model = PoolingModule(backbone=old, pooler="attention", pooler_kwargs={"num_heads": 2})
    checkpoint = saved_checkpoint(model, tmp_path / "head.ckpt")
    new = tmp_path / "new"
    shutil.move(old, new)
    return checkpoint, old, new


def only_line(capsys) -> str:
    """The error line, alone: no traceback (Lightning's INFO lines and progress bars share stderr)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("poolhead ")]
    return line


def test_export_names_the_moved_folder_and_takes_the_new_one(moved, tmp_path, capsys):
    checkpoint, old, new = moved
    assert main(["export", str(checkpoint), str(tmp_path / "out")]) == 2
    line = only_line(capsys)
    assert f"backbone folder {old} does not exist" in line and "--backbone PATH" in line
    assert main(["export", str(checkpoint), str(tmp_path / "out"), "--backbone", str(new)]) == 0
    assert (tmp_path / "out" / "modules.json").is_file()


def test_test_takes_model_backbone_with_ckpt_path(moved, data_dir, tiny_model_dir, tmp_path, capsys):
    checkpoint, old, new = moved
    config = tmp_path / "run.yaml"  # the run's config, as README's `poolhead test --config ... --ckpt_path ...`
    config.write_text(f"model:\n  backbone: {old}\ndata:\n  path: {data_dir / 'stsb'}\n", encoding="utf-8")
    args = ["test", f"--config={config}", f"--ckpt_path={checkpoint}", "--data.limit_eval_pairs=16",
            "--trainer.accelerator=cpu", "--trainer.logger=false", "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}"]  # fmt: skip
    assert main(args) == 2
    line = only_line(capsys)
    assert f"backbone folder {old} does not exist" in line and "--model.backbone PATH" in line
    assert main([*args, f"--model.backbone={new}"]) == 0
    capsys.readouterr()
    # Other weights at the new path: the fingerprint check still refuses them.
    assert main([*args, f"--model.backbone={tiny_model_dir}"]) == 2
    assert "fingerprint" in only_line(capsys)
