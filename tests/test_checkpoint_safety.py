"""No poolhead load path runs code from a checkpoint, even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1,
and a file that is not a whole checkpoint gets one sentence (never torch's advice to unpickle it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from quiet_fit import quiet_trainer, saved_checkpoint

from poolhead.cli import main
from poolhead.data import SentencePairDataModule
from poolhead.training.module import PoolingModule

SRC = Path(__file__).resolve().parents[1] / "src" / "poolhead"
pytestmark = pytest.mark.usefixtures("one_thread")


class WritesMarker:
    """Unpickling this object creates ``path``: the stand-in for a payload that runs code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def good_checkpoint(tiny_model_dir, tmp_path_factory) -> Path:
    model = PoolingModule(backbone=tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2})
    path = saved_checkpoint(model, tmp_path_factory.mktemp("good") / "head.ckpt")
    return path


@pytest.fixture
def crafted(good_checkpoint, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A real checkpoint plus a payload; the environment asks torch to unpickle anything."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "payload-ran"
    checkpoint = torch.load(good_checkpoint, map_location="cpu", weights_only=True)
    checkpoint["payload"] = WritesMarker(marker)
    path = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, path)
    return path, marker


def data_args(data_dir: Path) -> list[str]:
    return [f"--data.path={data_dir / 'stsb'}", "--data.limit_eval_pairs=16", "--trainer.accelerator=cpu"]


def cli_load_paths(path: Path, tiny_model_dir: str, data_dir: Path, out: Path) -> dict[str, list[str]]:
    backbone = f"--model.backbone={tiny_model_dir}"
    return {
        "export": ["export", str(path), str(out / "export")],
        "compare": ["compare", "--model", str(path), "--data", str(data_dir / "stsb"), "--output", str(out / "c")],
        "inspect": ["inspect", "a text", "--model", str(path), "--output", str(out / "i")],
        "predict": [
            "predict",
            "--model",
            str(path),
            "--input",
            str(data_dir / "stsb" / "test.csv"),
            "--column",
            "sentence1",
            "--output",
            str(out / "p"),
        ],  # fmt: skip
        "test": ["test", backbone, f"--ckpt_path={path}", *data_args(data_dir)],
        "validate": ["validate", backbone, f"--ckpt_path={path}", *data_args(data_dir)],
        "fit": ["fit", backbone, f"--ckpt_path={path}", "--trainer.max_epochs=1", *data_args(data_dir)],
    }


@pytest.mark.parametrize("command", ["export", "compare", "inspect", "predict", "test", "validate", "fit"])
def test_no_command_runs_code_from_a_checkpoint(command, crafted, tiny_model_dir, data_dir, tmp_path, capsys):
    path, marker = crafted
    assert main(cli_load_paths(path, tiny_model_dir, data_dir, tmp_path)[command]) == 2
    assert not marker.exists()
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "pickled Python objects" in line and "weights_only=False" not in line


def test_no_python_load_path_runs_code_from_a_checkpoint(crafted, tiny_model_dir, data_dir):
    from poolhead.evaluation.models import load_model_for_eval
    from poolhead.export import export_checkpoint

    path, marker = crafted
    with pytest.raises(ValueError, match="pickled Python objects"):
        PoolingModule.load_from_checkpoint(path, weights_only=False)
    with pytest.raises(ValueError, match="pickled Python objects"):
        export_checkpoint(path, path.parent / "out")
    with pytest.raises(ValueError, match="pickled Python objects"):
        load_model_for_eval(path)
    # The Trainer a Python user drives: PoolingModule makes it read --ckpt_path checkpoints safely.
    model = PoolingModule(backbone=tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2})
    data = SentencePairDataModule(data_dir / "stsb", tokenizer=tiny_model_dir, limit_eval_pairs=16)
    trainer = quiet_trainer()
    with pytest.raises(ValueError, match="pickled Python objects"):
        trainer.test(model, data, ckpt_path=path)
    assert not marker.exists()


def test_every_load_call_in_src_goes_through_the_safe_reader():
    """The class, not the examples: grep src/ for every way to unpickle a file."""
    calls = re.compile(
        r"torch\.load\(|pickle\.loads?\(|torch\.hub\.load|load_from_checkpoint\(|weights_only\s*=\s*False"
    )
    found = {
        f"{path.relative_to(SRC)}:{match.group(0)}"
        for path in SRC.rglob("*.py")
        for match in calls.finditer(path.read_text(encoding="utf-8"))
    }
    assert found == {
        "training/checkpoints.py:torch.load(",  # the one reader: weights_only=True, passed explicitly
        "training/module.py:load_from_checkpoint(",  # PoolingModule's override, reading through checkpoints.py
        "evaluation/models.py:load_from_checkpoint(",  # calls that override
    }
    source = (SRC / "training" / "checkpoints.py").read_text(encoding="utf-8")
    assert "weights_only=True" in source


@pytest.mark.parametrize("damage", ["truncated", "zeroed", "empty", "text", "tensor only"])
def test_a_damaged_or_foreign_file_given_to_export_is_one_sentence(damage, good_checkpoint, tmp_path, capsys):
    data = good_checkpoint.read_bytes()
    path = tmp_path / f"{damage}.ckpt"
    if damage == "tensor only":
        torch.save({"weights": torch.ones(3)}, path)
    else:
        damaged = {"truncated": data[: len(data) // 2], "zeroed": bytes(len(data)), "empty": b""}
        path.write_bytes(damaged.get(damage, b"sentence1,sentence2,score\n"))
    assert main(["export", str(path), str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"poolhead export: error: checkpoint {path}") or line.startswith(
        f"poolhead export: error: {path}"
    )
    assert "weights_only" not in line and "poolhead fit" in line or "another checkpoint" in line
