"""Small rough edges, each met as a user meets it: one sentence naming the value and the fix, no traceback."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from synthetic_pairs import LABEL_HEADER, write_rows
from test_user_errors import the_error as one_error_line  # the one check of a command's error line

from poolhead.cli import main
from poolhead.data import SentencePairDataModule
from poolhead.errors import UserValueError

pytestmark = pytest.mark.usefixtures("one_thread")


def pairs(count: int, start: int = 0) -> list[tuple]:
    return [(f"sentence {i} about cats", f"sentence {i} about dogs", (i % 5) / 4) for i in range(start, start + count)]


def predict(source: Path, tmp_path: Path, *options: str) -> int:
    # The corpus is checked before the model is loaded: no model is needed to meet these errors.
    argv = ["predict", "--model", str(tmp_path / "model"), "--input", str(source), "--output", str(tmp_path / "out")]
    return main([*argv, "--accelerator", "cpu", "--no-progress", *options])


@pytest.mark.parametrize("invisible", ["\u200b", "\u200b\u200c\u200d", "\ufeff \u2060"])
def test_a_sentence_of_zero_width_characters_is_treated_as_empty(tmp_path, tiny_model_dir, invisible):
    folder = tmp_path / "data"
    write_rows(folder / "train.csv", [*pairs(6), (invisible, "a visible sentence", 0.5)])
    data = SentencePairDataModule(str(folder), tokenizer=tiny_model_dir, validation_split=None)
    with pytest.raises(UserValueError, match=r"1 empty or whitespace-only sentence\(s\): data row 7 column sentence1"):
        data.setup("fit")
    skipping = SentencePairDataModule(
        str(folder), tokenizer=tiny_model_dir, validation_split=None, empty_sentences="skip"
    )
    skipping.setup("fit")
    assert len(skipping.pairs["train"]) == 6


def test_predict_refuses_repeated_and_missing_ids(tmp_path, capsys):
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("doc_id,text\na,One text.\nb,Two text.\na,Three text.\n", encoding="utf-8")
    assert predict(repeated, tmp_path, "--id-column", "doc_id") == 2
    assert "--id-column 'doc_id' has 1 repeated id(s), e.g. 'a' (2 times)" in one_error_line(capsys, "predict")

    missing = tmp_path / "missing.parquet"
    pq.write_table(pa.table({"doc_id": [1.0, float("nan"), 3.0], "text": ["One.", "Two.", "Three."]}), missing)
    assert predict(missing, tmp_path, "--id-column", "doc_id") == 2
    line = one_error_line(capsys, "predict")
    assert "--id-column 'doc_id' is missing (empty or NaN) in 1 row(s), the first being row 1" in line


def test_predict_refuses_an_input_without_rows_in_one_sentence(tmp_path, capsys):
    header_only = tmp_path / "header.csv"
    header_only.write_text("doc_id,text\n", encoding="utf-8")
    assert predict(header_only, tmp_path) == 2
    assert "header.csv holds only a header line" in one_error_line(capsys, "predict")
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), empty)
    assert predict(empty, tmp_path) == 2
    assert "empty.parquet holds no rows" in one_error_line(capsys, "predict")


def test_a_mixture_member_with_one_positive_pair_is_refused(tmp_path, tiny_model_dir):
    many, one = tmp_path / "many", tmp_path / "one"
    write_rows(many / "train.csv", pairs(8))
    rows = [("a cat sleeps", "a cat is sleeping", 1), *[(f"text {i}", f"other {i}", 0) for i in range(5)]]
    write_rows(one / "train.csv", rows, LABEL_HEADER)
    mixture = [{"path": str(many)}, {"path": str(one), "positives_only": True, "loss": "in_batch_negatives"}]
    data = SentencePairDataModule(datasets=mixture, tokenizer=tiny_model_dir, validation_split=None)
    with pytest.raises(UserValueError, match=r"dataset 'one': its training split .* has 1 pair\(s\) labelled 1"):
        data.setup("fit")


def test_the_offline_error_for_a_hub_data_id_names_data_root(tmp_path, tiny_model_dir, monkeypatch):
    import datasets.config

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    data = SentencePairDataModule("someorg/not-cached", tokenizer=tiny_model_dir, validation_split=None)
    with pytest.raises(UserValueError, match=r"'someorg/not-cached' is neither .* --data.data_root"):
        data.setup("fit")


def test_push_without_a_network_is_one_sentence(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    from poolhead.export import export_sentence_transformer

    folder = export_sentence_transformer(tiny_model_dir, "mean", tmp_path / "model")
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused at once
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setenv("HF_ENDPOINT", closed)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", closed)
    assert main(["push", str(folder), "my-org/tiny"]) == 2
    assert "could not reach the Hugging Face hub" in one_error_line(capsys, "push")


@pytest.mark.parametrize(("option", "value"), [("max_epochs", "-3"), ("max_epochs", "-7")])
def test_a_bad_trainer_number_is_one_sentence(option, value, tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "feature-cache"))
    monkeypatch.setattr("sys.argv", ["poolhead"])
    folder = tmp_path / "scores"
    write_rows(folder / "train.csv", pairs(8))
    argv = ["fit", f"--model.backbone={tiny_model_dir}", f"--data.path={folder}", "--data.validation_split=null",
            "--trainer.accelerator=cpu", f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
            f"--trainer.{option}={value}"]  # fmt: skip
    assert main(argv) == 2
    line = one_error_line(capsys, "fit")
    assert f"--trainer option: `{option}` must be" in line and f"You passed in {value}" in line
