"""``poolhead predict`` resumes an output folder only when it would write the same vectors: the
manifest records the model's fingerprint (every module's weights and options), the input's content
hash and the options that change vectors, and a rerun that differs in any of them is refused in
one sentence naming what changed. The same content under a new path is the same output."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from standins import tiny_attention_export
from test_predict import NUM_TEXTS, SHARD_SIZE, corpus_csv, encode  # noqa: F401 (fixture)

from poolhead.errors import UserValueError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def export(tiny_model_dir, tmp_path) -> Path:
    return tiny_attention_export(tiny_model_dir, tmp_path / "export")


def write_corpus(path: Path, texts: list[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["doc_id", "text"])
        writer.writerows([f"doc-{i}", text] for i, text in enumerate(texts))
    return path


def test_a_head_re_exported_at_the_same_path_is_not_reported_complete(export, corpus_csv, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    assert encode(export, corpus_csv[0], out)["complete"]
    # A retrained head exported over the old one: the backbone's weights are unchanged, the head's are not.
    head_file = export / "1_PoolheadPooling" / "model.safetensors"
    weights = load_file(head_file)
    name = sorted(weights)[0]
    weights[name] = weights[name] + 0.5
    save_file(weights, head_file)
    with pytest.raises(UserValueError, match=r"holds an encoding made with other settings \(the model's weights"):
        encode(export, corpus_csv[0], out)


def test_an_input_edited_in_place_with_as_many_rows_is_not_reported_complete(export, corpus_csv, tmp_path):  # noqa: F811
    corpus = write_corpus(tmp_path / "corpus.csv", corpus_csv[1])
    out = tmp_path / "out"
    assert encode(export, corpus, out)["complete"]
    write_corpus(corpus, [*corpus_csv[1][:-1], "an edited last text"])
    with pytest.raises(UserValueError, match=r"other settings \(the input's texts or ids differ\); give a new"):
        encode(export, corpus, out)


def test_a_changed_precision_is_refused_by_name(export, corpus_csv, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    encode(export, corpus_csv[0], out)
    with pytest.raises(UserValueError, match=r"other settings \(precision differ\)"):
        encode(export, corpus_csv[0], out, precision="bf16-mixed")


@pytest.mark.parametrize(("first", "rerun"), [("32", "32-true"), ("32-true", 32), (None, "32")])
def test_two_spellings_of_one_precision_resume_the_output(export, corpus_csv, tmp_path, first, rerun):  # noqa: F811
    out = tmp_path / "out"
    manifest = encode(export, corpus_csv[0], out, **({"precision": first} if first else {}))
    assert manifest["settings"]["precision"] == "32-true"  # Lightning's one spelling is recorded
    (out / manifest["shards"][1]["file"]).unlink()  # a run stopped after its first shard
    first_shard = out / manifest["shards"][0]["file"]
    written = first_shard.stat().st_mtime_ns
    assert encode(export, corpus_csv[0], out, precision=rerun)["complete"]
    assert first_shard.stat().st_mtime_ns == written  # resumed, not redone


def test_a_manifest_written_with_precision_32_resumes_as_32_true(export, corpus_csv, tmp_path):  # noqa: F811
    from poolhead.corpus.writer import read_manifest, write_manifest

    out = tmp_path / "out"
    manifest = encode(export, corpus_csv[0], out)
    old = read_manifest(out)
    write_manifest(out, {**old, "settings": {**old["settings"], "precision": "32"}, "complete": False})
    (out / manifest["shards"][1]["file"]).unlink()
    assert encode(export, corpus_csv[0], out, precision="32-true")["complete"]


def test_the_same_model_and_texts_under_new_paths_resume_the_output(export, corpus_csv, tmp_path):  # noqa: F811
    from poolhead.corpus import read_embeddings

    out = tmp_path / "out"
    manifest = encode(export, corpus_csv[0], out)
    assert len(manifest["settings"]["model_sha256"]) == len(manifest["settings"]["input_sha256"]) == 64
    first = out / manifest["shards"][0]["file"]
    written = first.stat().st_mtime_ns
    (out / manifest["shards"][1]["file"]).unlink()  # a run stopped after its first shard
    moved_model = Path(shutil.copytree(export, tmp_path / "moved-export"))
    moved_corpus = Path(shutil.copy(corpus_csv[0], tmp_path / "renamed.csv"))
    assert encode(moved_model, moved_corpus, out)["complete"]
    assert first.stat().st_mtime_ns == written
    assert len(read_embeddings(out)[0]) == NUM_TEXTS


def test_the_cli_refuses_in_one_sentence(export, corpus_csv, tmp_path, capsys):  # noqa: F811
    from poolhead.cli import main

    out = tmp_path / "out"
    corpus = write_corpus(tmp_path / "corpus.csv", corpus_csv[1])
    argv = ["predict", "--model", str(export), "--input", str(corpus), "--output", str(out), "--id-column", "doc_id"]
    argv += ["--accelerator", "cpu", "--devices", "1", "--shard-size", str(SHARD_SIZE), "--no-progress"]
    assert main(argv) == 0
    write_corpus(corpus, list(reversed(corpus_csv[1])))
    capsys.readouterr()
    assert main(argv) == 2
    printed = capsys.readouterr().err
    (error,) = [line for line in printed.splitlines() if line.startswith("poolhead")]
    assert "the input's texts or ids differ" in error and "give a new output folder" in error
    assert "Traceback" not in printed
