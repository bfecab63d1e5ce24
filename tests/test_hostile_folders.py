"""A model folder is checked before anything is allocated: the saved head's config against the backbone
(hidden size, layer indices), the tokenizer against the embedding table, and the weights' shapes (read from
the safetensors header) against the config. Each refusal is one sentence naming the file and the value."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer

from poolhead.backbone import load_backbone
from poolhead.errors import UserValueError
from poolhead.evaluation.models import load_model_for_eval
from poolhead.export import export_sentence_transformer, load_sentence_transformer
from poolhead.export.st_module import PoolheadPooling

HEAD = "1_PoolheadPooling"


@pytest.fixture(scope="module")
def export(tiny_model_dir, tmp_path_factory) -> Path:
    return export_sentence_transformer(tiny_model_dir, {"name": "attention"}, tmp_path_factory.mktemp("e") / "m")


@pytest.fixture
def folder(export, tmp_path) -> Path:
    shutil.copytree(export, tmp_path / "model")
    return tmp_path / "model"


def set_head(folder: Path, replace: bool = False, **options) -> None:
    config_file = folder / HEAD / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["pooler_config"] = {**({} if replace else config["pooler_config"]), **options}
    config_file.write_text(json.dumps(config), encoding="utf-8")


def test_the_untouched_export_loads(export):
    assert load_sentence_transformer(export, device="cpu").encode(["a sentence"]).shape == (1, 32)


@pytest.mark.parametrize("hidden_size", [10**6, 50_000, 64])
def test_a_head_of_another_hidden_size_is_refused_naming_both_sizes(folder, hidden_size):
    set_head(folder, hidden_size=hidden_size)
    expected = rf"{HEAD}/config.json sets the head's hidden_size to {hidden_size} but the backbone's hidden size is 32"
    with pytest.raises(UserValueError, match=expected):
        load_sentence_transformer(folder, device="cpu")
    with pytest.raises(UserValueError, match=expected):  # compare / inspect / predict load the same way
        load_model_for_eval(str(folder), device="cpu")


def test_a_layer_the_backbone_does_not_have_is_refused(folder):
    set_head(folder, score_layer=7)  # the tiny backbone gives 3 hidden states
    with pytest.raises(UserValueError, match=rf"{HEAD}/config.json: .*reads layers \[7, -1\] but the backbone gives 3"):
        load_sentence_transformer(folder, device="cpu")


def test_weights_of_another_shape_are_refused_from_the_header(folder):
    save_file({"scorer.weight": torch.zeros(2, 32)}, folder / HEAD / "model.safetensors")
    with pytest.raises(UserValueError, match=r"not hold the weights .*scorer.weight has shape \(2, 32\), expected"):
        load_sentence_transformer(folder, device="cpu")


def test_weights_that_are_not_safetensors_are_refused(folder):
    (folder / HEAD / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(UserValueError, match="model.safetensors is not a readable safetensors file"):
        load_sentence_transformer(folder, device="cpu")


def test_a_huge_head_is_refused_without_allocating_it(folder):
    """Loaded on its own (as sentence-transformers does with trust_remote_code), a config describing a head of
    terabytes is compared with the weights' header on the meta device, never built in memory."""
    set_head(folder, replace=True, name="latent_attention", hidden_size=10**6)
    with pytest.raises(UserValueError, match=r"does not hold the weights of the head .*'latent_attention'"):
        PoolheadPooling.load(str(folder), subfolder=HEAD)


def test_a_tokenizer_larger_than_the_embedding_table_is_refused(folder):
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_tokens([f"newtoken{i}" for i in range(5)])
    tokenizer.save_pretrained(folder)
    expected = r"the tokenizer in .* has 30527 tokens but the backbone's embedding table has 30522 rows"
    with pytest.raises(UserValueError, match=expected):
        load_sentence_transformer(folder, device="cpu")
    with pytest.raises(UserValueError, match=expected):
        load_backbone(str(folder))
