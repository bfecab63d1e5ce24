"""``validate``/``test --ckpt_path``: the checkpoint describes the trained model. A config or command line
naming another pooler, loss or backbone is refused in one sentence naming both values (``--model.backbone``
typed stays the override for a folder that moved, if it fits the head); a learned head is never scored
untrained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from quiet_fit import saved_checkpoint
from standins import tiny_model_folder

from poolhead.cli import main
from poolhead.training.module import PoolingModule

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def feature_cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "feature-cache"))
    monkeypatch.setattr("sys.argv", ["poolhead"])


@pytest.fixture
def attention_checkpoint(tmp_path) -> tuple[Path, str]:
    torch.manual_seed(3)
    backbone = tiny_model_folder(tmp_path / "backbone")
    model = PoolingModule(backbone=backbone, pooler="attention", pooler_kwargs={"num_heads": 2})
    return saved_checkpoint(model, tmp_path / "head.ckpt"), backbone


def only_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("poolhead ")]
    return line


def test_command(config: Path, data_dir, tmp_path, *extra: str) -> list[str]:
    return ["test", f"--config={config}", "--data.limit_eval_pairs=16", "--trainer.accelerator=cpu",
            "--trainer.logger=false", "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}", f"--data.path={data_dir / 'stsb'}", *extra]  # fmt: skip


test_command.__test__ = False  # a helper, not a test


def write_config(tmp_path: Path, model: str) -> Path:
    config = tmp_path / "run.yaml"
    config.write_text(f"model:\n{model}", encoding="utf-8")
    return config


def test_a_config_naming_another_pooler_is_refused(attention_checkpoint, data_dir, tmp_path, capsys):
    checkpoint, backbone = attention_checkpoint
    ckpt = f"--ckpt_path={checkpoint}"
    mean = write_config(tmp_path, f"  backbone: {backbone}\n  pooler: mean\n")
    assert main(test_command(mean, data_dir, tmp_path, ckpt)) == 2
    line = only_line(capsys)
    assert "model.pooler" in line and "'attention'" in line and "'mean'" in line
    typed = write_config(tmp_path, f"  backbone: {backbone}\n")
    assert main(test_command(typed, data_dir, tmp_path, ckpt, "--model.pooler=mean")) == 2
    assert "'mean'" in only_line(capsys)
    heads = write_config(tmp_path, f"  backbone: {backbone}\n  pooler_kwargs: {{num_heads: 4}}\n")
    assert main(test_command(heads, data_dir, tmp_path, ckpt)) == 2  # the default pooler, other options
    assert "num_heads" in only_line(capsys)
    # The run's own options (or none at all) agree with the checkpoint: it is scored.
    same = write_config(tmp_path, f"  backbone: {backbone}\n  pooler: attention\n  pooler_kwargs: {{num_heads: 2}}\n")
    assert main(test_command(same, data_dir, tmp_path, ckpt)) == 0


def test_a_config_naming_another_backbone_or_loss_is_refused(
    attention_checkpoint, tiny_model_dir, data_dir, tmp_path, capsys
):
    checkpoint, backbone = attention_checkpoint
    other = write_config(tmp_path, f"  backbone: {tiny_model_dir}\n")
    assert main(test_command(other, data_dir, tmp_path, f"--ckpt_path={checkpoint}")) == 2
    line = only_line(capsys)
    assert f"model.backbone '{backbone}'" in line and f"sets '{tiny_model_dir}'" in line
    loss = write_config(tmp_path, f"  backbone: {backbone}\n  loss: cosine_mse\n")
    assert main(test_command(loss, data_dir, tmp_path, f"--ckpt_path={checkpoint}")) == 2
    assert "'cosent'" in only_line(capsys)


def test_an_option_given_at_its_default_value_is_compared_with_the_checkpoint(data_dir, tmp_path, capsys):
    backbone = tiny_model_folder(tmp_path / "backbone")
    model = PoolingModule(backbone=backbone, pooler="attention", pooler_kwargs={"num_heads": 2}, loss="cosine_mse")
    saved_checkpoint(model, tmp_path / "mse.ckpt")
    ckpt = f"--ckpt_path={tmp_path / 'mse.ckpt'}"
    # cosent is PoolingModule's default loss: naming it, in a config file or typed, still says which loss is meant.
    default_loss = write_config(tmp_path, f"  backbone: {backbone}\n  loss: cosent\n")
    assert main(test_command(default_loss, data_dir, tmp_path, ckpt)) == 2
    assert "model.loss 'cosine_mse' but the config sets 'cosent'" in only_line(capsys)
    plain = write_config(tmp_path, f"  backbone: {backbone}\n")
    assert main(test_command(plain, data_dir, tmp_path, ckpt, "--model.loss=cosent")) == 2
    assert "model.loss 'cosine_mse' but the config sets 'cosent'" in only_line(capsys)
    # The other direction: the checkpoint's own value, given explicitly, is scored; so is an option given nowhere.
    same = write_config(tmp_path, f"  backbone: {backbone}\n  loss: cosine_mse\n")
    assert main(test_command(same, data_dir, tmp_path, ckpt)) == 0
    assert main(test_command(plain, data_dir, tmp_path, ckpt)) == 0


def test_a_typed_backbone_of_another_hidden_size_is_named_as_such(
    attention_checkpoint, minilm_path, data_dir, tmp_path, capsys
):
    checkpoint, backbone = attention_checkpoint
    config = write_config(tmp_path, f"  backbone: {backbone}\n")
    args = test_command(config, data_dir, tmp_path, f"--ckpt_path={checkpoint}", f"--model.backbone={minilm_path}")
    assert main(args) == 2
    line = only_line(capsys)
    assert "hidden size 384" in line and "hidden size 32" in line and "set hidden_size" not in line


def test_test_without_a_checkpoint_refuses_an_untrained_head(attention_checkpoint, data_dir, tmp_path, capsys):
    _, backbone = attention_checkpoint
    config = write_config(tmp_path, f"  backbone: {backbone}\n")
    assert main(test_command(config, data_dir, tmp_path)) == 2
    line = only_line(capsys)
    assert "never trained" in line and "--ckpt_path" in line
    assert main(test_command(config, data_dir, tmp_path, "--model.pooler=mean")) == 0  # nothing to train
