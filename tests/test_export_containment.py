"""Nothing inside an export may point outside it, and every poolhead loader refuses every such way:
modules.json paths, symlinks (files and folders), paths in module configs, code references."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from standins import tiny_attention_export

from poolhead import Encoder
from poolhead.backbone import load_backbone
from poolhead.errors import UserError
from poolhead.evaluation.models import load_model_for_eval
from poolhead.export import load_sentence_transformer, with_pooler


@pytest.fixture(scope="module")
def export(tiny_model_dir, tmp_path_factory) -> Path:
    return tiny_attention_export(tiny_model_dir, tmp_path_factory.mktemp("export") / "model")


def edit_json(path: Path, change) -> None:
    content = json.loads(path.read_text(encoding="utf-8"))
    change(content)
    path.write_text(json.dumps(content), encoding="utf-8")


def symlinked_file(folder: Path, outside: Path) -> None:
    weights = folder / "1_PoolheadPooling" / "model.safetensors"
    shutil.move(weights, outside / "model.safetensors")
    weights.symlink_to(outside / "model.safetensors")


def symlinked_folder(folder: Path, outside: Path) -> None:
    shutil.move(folder / "1_PoolheadPooling", outside / "pooling")
    (folder / "1_PoolheadPooling").symlink_to(outside / "pooling", target_is_directory=True)


def module_path(folder: Path, outside: Path) -> None:
    shutil.copytree(folder / "1_PoolheadPooling", outside / "pooling")
    edit_json(folder / "modules.json", lambda modules: modules[1].update(path=str(outside / "pooling")))


def config_path(folder: Path, outside: Path) -> None:
    # sentence-transformers passes processor_kwargs on to the tokenizer: a file from anywhere.
    edit_json(
        folder / "sentence_bert_config.json", lambda c: c.update(processor_kwargs={"tokenizer_file": "../t.json"})
    )


def config_absolute_dir(folder: Path, outside: Path) -> None:
    edit_json(folder / "sentence_bert_config.json", lambda c: c.update(model_kwargs={"cache_dir": str(outside)}))


def code_in_another_repo(folder: Path, outside: Path) -> None:
    edit_json(folder / "config.json", lambda c: c.update(auto_map={"AutoModel": "someone/else--modeling.Model"}))


def code_outside(folder: Path, outside: Path) -> None:
    edit_json(folder / "modules.json", lambda modules: modules[1].update(type="../evil/st_module.PoolheadPooling"))


TAMPERINGS = [symlinked_file, symlinked_folder, module_path, config_path, config_absolute_dir,
              code_in_another_repo, code_outside]  # fmt: skip
LOADERS = {
    "poolhead.load": lambda folder: load_sentence_transformer(folder, device="cpu"),
    "load_backbone": lambda folder: load_backbone(str(folder)),
    "Encoder": lambda folder: Encoder(str(folder), device="cpu"),
    "with_pooler": lambda folder: with_pooler(str(folder), "mean"),
    "compare / inspect": lambda folder: load_model_for_eval(str(folder), device="cpu"),
}


@pytest.mark.parametrize("loader", list(LOADERS))
@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: f.__name__)
def test_every_loader_refuses_every_way_out(export, tmp_path, tamper, loader):
    folder, outside = tmp_path / "model", tmp_path / "outside"
    shutil.copytree(export, folder)
    outside.mkdir()
    tamper(folder, outside)
    with pytest.raises(UserError, match="outside|another repository"):
        LOADERS[loader](folder)


def test_the_untouched_export_loads_with_every_loader(export):
    for name, load in LOADERS.items():
        if name != "with_pooler":  # sentence-transformers' own loader refuses the head's in-folder code
            load(export)
