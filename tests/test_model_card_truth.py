"""The model card tells the truth: a mixture's card lists every data set with the loss it trained with,
and no card names a path of the machine that made it (a local folder becomes its folder name)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from quiet_fit import saved_checkpoint

from poolhead.cli import main
from poolhead.training.module import PoolingModule

pytestmark = pytest.mark.usefixtures("one_thread")


def checkpoint_of_a_fit(tiny_model_dir: str, path: Path, data: dict, **hparams) -> Path:
    """A head checkpoint carrying the data module's hyperparameters, as ``poolhead fit`` writes it."""
    model = PoolingModule(backbone=tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2}, **hparams)
    saved_checkpoint(model, path)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["datamodule_hyper_parameters"] = data
    torch.save(checkpoint, path)
    return path


def exported_card(checkpoint: Path, out: Path) -> str:
    assert main(["export", str(checkpoint), str(out)]) == 0
    return (out / "README.md").read_text(encoding="utf-8")


def test_a_mixture_card_lists_every_data_set_with_its_loss(tiny_model_dir, data_dir, tmp_path):
    mixture = {
        "path": None,
        "datasets": [
            {"name": "stsb", "path": str(data_dir / "stsb")},
            {"name": "nli", "path": "sentence-transformers/all-nli", "loss": "in_batch_negatives",
             "loss_kwargs": {"scale": 20.0}},
        ],
        "train_split": "train",
        "batch_size": 16,
    }  # fmt: skip
    card = exported_card(checkpoint_of_a_fit(tiny_model_dir, tmp_path / "mix.ckpt", mixture), tmp_path / "out")
    assert "| Training data: stsb | stsb (split 'train'), loss cosent |" in card
    assert "| Training data: nli | sentence-transformers/all-nli (split 'train'), loss in_batch_negatives" in card
    assert "None" not in card and "| Loss | cosent |" not in card  # no single loss claimed for the mixture
    assert "datasets:\n- sentence-transformers/all-nli" in card  # the hub data set in the front matter


def test_a_card_names_no_path_of_the_machine_that_made_it(tiny_model_dir, data_dir, tmp_path):
    data = {"path": str(data_dir / "stsb"), "train_split": "train", "batch_size": 16}
    card = exported_card(checkpoint_of_a_fit(tiny_model_dir, tmp_path / "one.ckpt", data), tmp_path / "out")
    assert "| Training data | stsb (split 'train') |" in card and "| Loss | cosent |" in card
    assert f"the local model `{Path(tiny_model_dir).name}`" in card
    for machine_path in (tiny_model_dir, str(data_dir), str(tmp_path), str(Path.home())):
        assert machine_path not in card


def test_a_card_exported_now_pushes_as_it_is(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    from test_hub import RecordedHub

    data = {"path": str(data_dir / "stsb"), "train_split": "train", "batch_size": 16, "limit_train_pairs": 40}
    card = exported_card(checkpoint_of_a_fit(tiny_model_dir, tmp_path / "one.ckpt", data), tmp_path / "out")
    hub = RecordedHub(monkeypatch)
    assert main(["push", str(tmp_path / "out"), "my-org/tiny-attention"]) == 0  # its card holds nothing to refuse
    assert hub.uploads[0]["files"]["README.md"].decode("utf-8") == card
