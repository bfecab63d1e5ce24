"""A checkpoint written before the training modules moved into ``poolhead/training/`` still loads,
resumes, exports and compares; the class names a checkpoint holds are checked, never imported.

``fixtures/pre_training_room.ckpt``: a frozen tiny BERT (``torch.manual_seed(0)``, then
``standins.tiny_model_folder``) under an attention head, max_length 64, one epoch on 40 STS-B
pairs, written by the pre-move code. Its hyperparameters say ``backbone: 'tiny'``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from standins import tiny_model_folder

import poolhead
from poolhead.cli import main
from poolhead.errors import UserValueError
from poolhead.training.checkpoints import read_checkpoint
from poolhead.training.module import PoolingModule
from poolhead.training.rebuild import module_from_checkpoint

FIXTURE = Path(__file__).parent / "fixtures" / "pre_training_room.ckpt"
TEXTS = ["A man is playing a guitar.", "Two dogs run through a field of tall grass."]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def seeded_tiny(tmp_path_factory) -> str:
    """The backbone the fixture was trained on, rebuilt: its fingerprint must match the checkpoint's."""
    torch.manual_seed(0)
    return tiny_model_folder(tmp_path_factory.mktemp("seeded") / "tiny")


def with_class_path(tmp_path: Path, class_path: str) -> Path:
    """The fixture as LightningCLI saves a model given as ``class_path:``, naming ``class_path``."""
    checkpoint = read_checkpoint(FIXTURE)
    checkpoint["hyper_parameters"]["_class_path"] = class_path
    path = tmp_path / "with_class_path.ckpt"
    torch.save(checkpoint, path)
    return path


def data_args(data_dir: Path) -> list[str]:
    return [
        f"--data.path={data_dir / 'stsb'}",
        "--data.limit_train_pairs=40",
        "--data.limit_eval_pairs=16",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
    ]


def embed(module: PoolingModule) -> torch.Tensor:
    encoder = poolhead.Encoder(module.backbone, pooler=module.pooler, normalize=module.normalize, device="cpu")
    return encoder.encode(TEXTS)


def test_it_loads_through_both_python_paths_to_the_same_model(seeded_tiny):
    rebuilt = module_from_checkpoint(FIXTURE, backbone=seeded_tiny)
    loaded = PoolingModule.load_from_checkpoint(FIXTURE, backbone=seeded_tiny, map_location="cpu").eval()

    assert rebuilt.pooler.name == "attention" and rebuilt.backbone.max_length == 64
    torch.testing.assert_close(embed(rebuilt), embed(loaded))
    trained = read_checkpoint(FIXTURE)["state_dict"]
    torch.testing.assert_close(rebuilt.state_dict()["pooler.scorer.weight"], trained["pooler.scorer.weight"])


def test_another_backbone_is_refused_by_its_fingerprint(tiny_model_dir):
    with pytest.raises(UserValueError, match="fingerprint 5ae5c6f2"):
        module_from_checkpoint(FIXTURE, backbone=tiny_model_dir)


def test_it_exports_with_the_backbone_override_and_the_export_embeds_as_the_checkpoint(seeded_tiny, tmp_path):
    out = tmp_path / "export"

    assert main(["export", str(FIXTURE), str(out), "--backbone", seeded_tiny]) == 0

    exported = poolhead.load(out, device="cpu").encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(exported.cpu(), embed(module_from_checkpoint(FIXTURE, backbone=seeded_tiny)))


def test_it_compares_beside_the_fixed_strategies(seeded_tiny, data_dir, tmp_path, monkeypatch):
    # compare has no backbone option: the saved relative path 'tiny' is found from the working folder.
    monkeypatch.chdir(Path(seeded_tiny).parent)
    args = ["compare", "--model", str(FIXTURE), "--data", str(data_dir / "stsb"), "--limit", "16"]

    assert main([*args, "--resamples", "50", "--output", str(tmp_path / "c")]) == 0

    rows = list(csv_rows(tmp_path / "c" / "comparison.csv"))
    model = [row for row in rows if row["kind"] == "model"]
    assert [(row["name"], row["strategy"]) for row in model] == [("pre_training_room", "attention")]
    assert {row["strategy"] for row in rows if row["kind"] == "fixed"} >= {"mean", "cls"}


def csv_rows(path: Path):
    import csv

    with path.open(encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def test_it_resumes_and_tests_with_the_backbone_override(seeded_tiny, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    backbone = f"--model.backbone={seeded_tiny}"

    assert main(["test", backbone, f"--ckpt_path={FIXTURE}", *data_args(data_dir)]) == 0
    # A resume must run what the checkpoint ran: its config, max_length and 40-pair data folder.
    (tmp_path / "data").mkdir()
    for split in ("train", "validation", "test"):
        lines = (data_dir / "stsb" / f"{split}.csv").read_text(encoding="utf-8").splitlines()[:41]
        (tmp_path / "data" / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    fit = ["fit", "--config=minilm_attention_stsb", backbone, "--model.max_length=64", "--data.path=data"]
    assert main([*fit, f"--ckpt_path={FIXTURE}", "--trainer.max_epochs=2", "--trainer.accelerator=cpu"]) == 0

    resumed = read_checkpoint(next(tmp_path.glob("runs/**/last.ckpt")))
    # one more epoch of the same 40 pairs: twice the fixture's steps
    assert resumed["global_step"] == 2 * read_checkpoint(FIXTURE)["global_step"]


def test_the_old_class_path_maps_to_the_new_place(seeded_tiny, data_dir, tmp_path, monkeypatch):
    path = with_class_path(tmp_path, "poolhead.module.PoolingModule")
    monkeypatch.chdir(tmp_path)

    assert main(["test", f"--model.backbone={seeded_tiny}", f"--ckpt_path={path}", *data_args(data_dir)]) == 0
    loaded = PoolingModule.load_from_checkpoint(path, backbone=seeded_tiny, map_location="cpu")
    assert type(loaded) is PoolingModule


@pytest.fixture
def planted_module(tmp_path, monkeypatch) -> Path:
    """An importable module that leaves a marker file when imported: the stand-in for foreign code."""
    marker = tmp_path / "imported"
    (tmp_path / "planted.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom poolhead.training.module import PoolingModule as Model\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    sys.modules.pop("planted", None)


def test_any_other_class_path_is_refused_without_importing_it(
    planted_module, seeded_tiny, data_dir, tmp_path, monkeypatch, capsys
):
    path = with_class_path(tmp_path, "planted.Model")
    monkeypatch.chdir(tmp_path)

    assert main(["test", f"--model.backbone={seeded_tiny}", f"--ckpt_path={path}", *data_args(data_dir)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [error[0]] and "names _class_path 'planted.Model'" in error[0]
    for load in (PoolingModule.load_from_checkpoint, module_from_checkpoint):
        with pytest.raises(UserValueError, match="would import"):
            load(path, backbone=seeded_tiny)
    assert not planted_module.exists()
