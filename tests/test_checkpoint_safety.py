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


# --- names inside a checkpoint: no module is imported because a file names it -----------------------


@pytest.fixture
def evil_package(tmp_path, monkeypatch) -> Path:
    """An installed top-level package whose import creates a marker: the stand-in for ``venv.__main__``."""
    site = tmp_path / "site"
    (site / "evil_models").mkdir(parents=True)
    marker = tmp_path / "package-imported"
    (site / "evil_models" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (site / "evil_models" / "sub.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(site))
    return marker


def crafted_options(good_checkpoint: Path, folder: Path, **options) -> Path:
    checkpoint = torch.load(good_checkpoint, map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"].update(options)
    path = folder / "crafted-options.ckpt"
    torch.save(checkpoint, path)
    return path


CRAFTED_NAMES = {
    "package backbone": ({"backbone": "package:evil_models"}, "holds no model folder"),
    "dotted package backbone": ({"backbone": "package:evil_models.sub"}, "no dots"),
    "instantiator": ({"_instantiator": "evil_models.sub.run"}, "would import"),
    "class path": ({"_class_path": "evil_models.sub.Module"}, "would import"),
    "pooler class path": ({"pooler": {"class_path": "evil_models.sub.Pooler", "init_args": {}}}, "would import"),
}
# fit/validate/test take the backbone from their config or command line, which wins over the checkpoint's.
CASES = [(command, name) for command in ["export", "compare", "inspect", "predict"] for name in CRAFTED_NAMES] + [
    (command, name) for command in ["test", "validate", "fit"] for name in CRAFTED_NAMES if "backbone" not in name
]


@pytest.mark.parametrize(("command", "name"), CASES)
def test_no_command_imports_a_module_a_checkpoint_names(
    command, name, evil_package, good_checkpoint, tiny_model_dir, data_dir, tmp_path, capsys
):
    options, message = CRAFTED_NAMES[name]
    path = crafted_options(good_checkpoint, tmp_path, **options)
    assert main(cli_load_paths(path, tiny_model_dir, data_dir, tmp_path)[command]) == 2
    assert not evil_package.exists(), f"{command} imported the module a checkpoint named ({name})"
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line


@pytest.mark.parametrize("name", sorted(CRAFTED_NAMES))
def test_no_python_load_path_imports_a_module_a_checkpoint_names(name, evil_package, good_checkpoint, tmp_path):
    from poolhead.evaluation.models import load_model_for_eval
    from poolhead.export import export_checkpoint

    options, message = CRAFTED_NAMES[name]
    path = crafted_options(good_checkpoint, tmp_path, **options)
    for load in (PoolingModule.load_from_checkpoint, load_model_for_eval, lambda p: export_checkpoint(p, tmp_path)):
        with pytest.raises(ValueError, match=message):
            load(path)
    assert not evil_package.exists()


def test_a_packaged_model_is_found_without_running_its_package(tiny_model_dir, tmp_path, monkeypatch):
    import shutil

    from poolhead.backbone import load_backbone

    site = tmp_path / "site"
    marker = tmp_path / "package-imported"
    shutil.copytree(tiny_model_dir, site / "standin_model_package" / "model")
    (site / "standin_model_package" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(site))
    backbone = load_backbone("package:standin_model_package")
    assert backbone.hidden_size == 32
    assert not marker.exists()


def test_a_checkpoint_does_not_choose_where_the_cache_is_written(
    good_checkpoint, tiny_model_dir, data_dir, tmp_path, monkeypatch
):
    chosen_by_file = tmp_path / "chosen-by-the-checkpoint"
    ours = tmp_path / "ours"
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(ours))
    path = crafted_options(good_checkpoint, tmp_path, cache_dir=str(chosen_by_file))
    args = ["test", f"--model.backbone={tiny_model_dir}", f"--ckpt_path={path}", *data_args(data_dir)]
    assert main([*args, f"--trainer.default_root_dir={tmp_path / 'runs'}"]) == 0
    assert not chosen_by_file.exists()
    assert any(ours.rglob("*.safetensors"))
