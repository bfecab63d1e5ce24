"""A max_seq_length the backbone cannot embed is refused where it is set and where a folder holding it loads.

Without the check a folder with max_seq_length 100000 loads and encodes short texts, then crashes inside
torch or onnxruntime on the first text longer than the backbone's position table.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from standins import minilm_tokenizer

import poolhead
from poolhead.backbone import load_backbone
from poolhead.errors import UserValueError
from poolhead.export import export_sentence_transformer, save_sentence_transformer, to_sentence_transformer

HUGE = 100000
LONG_TEXT = " ".join(["word"] * 600)  # beyond the tiny models' 128 positions


def set_json_key(path: Path, key: str, value) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**config, key: value}), encoding="utf-8")


@pytest.fixture(scope="module")
def tiny_backbone(tiny_model_dir):
    return load_backbone(tiny_model_dir)


@pytest.fixture
def export(tiny_backbone, tmp_path):
    return export_sentence_transformer(tiny_backbone, "mean", tmp_path / "export")


def test_loading_a_folder_with_a_huge_max_seq_length_names_the_value_the_limit_and_the_file(export):
    set_json_key(export / "sentence_bert_config.json", "max_seq_length", HUGE)
    with pytest.raises(UserValueError, match=rf"max_seq_length {HUGE}.*\(128 positions\).*sentence_bert_config"):
        poolhead.load(export, device="cpu")


def test_the_onnx_backend_refuses_a_huge_max_seq_length_instead_of_crashing_in_onnxruntime(export):
    pytest.importorskip("onnxruntime")
    from poolhead.export.onnx import export_onnx

    export_onnx(export)
    assert poolhead.load(export, backend="onnx").encode([LONG_TEXT]).shape == (1, 32)  # truncated to 128
    set_json_key(export / "onnx" / "poolhead_onnx.json", "max_seq_length", HUGE)
    with pytest.raises(UserValueError, match=rf"max_seq_length {HUGE}.*\(128 positions\).*poolhead_onnx\.json"):
        poolhead.load(export, backend="onnx")


def test_saving_a_model_with_a_huge_max_seq_length_is_refused_and_writes_nothing(tiny_backbone, tmp_path):
    model = to_sentence_transformer(tiny_backbone, "mean")
    model.max_seq_length = HUGE
    with pytest.raises(UserValueError, match=rf"max_seq_length {HUGE}.*\(128 positions\).*max_seq_length = 128"):
        save_sentence_transformer(model, tmp_path / "export")
    assert list(tmp_path.iterdir()) == []


def test_exporting_a_backbone_whose_max_length_was_raised_is_refused(tiny_backbone, tmp_path):
    with pytest.raises(UserValueError, match=rf"max_length={HUGE}.*\(128 positions\)"):
        export_sentence_transformer(replace(tiny_backbone, max_length=HUGE), "mean", tmp_path / "export")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory) -> str:
    """A random RoBERTa with 130 position rows: positions start at padding_idx + 1 = 2, so 128 tokens fit."""
    from transformers import RobertaConfig, RobertaModel

    tokenizer = minilm_tokenizer()
    config = RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=130, pad_token_id=1)  # fmt: skip
    folder = tmp_path_factory.mktemp("tiny-roberta")
    RobertaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_roberta_position_offset_counts_against_the_limit(tiny_roberta, tmp_path):
    backbone = load_backbone(tiny_roberta)
    assert backbone.max_length == 128
    folder = export_sentence_transformer(backbone, "mean", tmp_path / "export")
    assert poolhead.load(folder, device="cpu").encode([LONG_TEXT]).shape == (1, 32)  # 128 tokens do fit
    set_json_key(folder / "sentence_bert_config.json", "max_seq_length", 129)
    with pytest.raises(UserValueError, match=r"max_seq_length 129.*\(128 positions\)"):
        poolhead.load(folder, device="cpu")
