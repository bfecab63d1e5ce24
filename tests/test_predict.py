"""``poolhead predict``: a corpus to embedding shards on Lightning's Trainer.predict.

The shards hold exactly what ``SentenceTransformer.encode`` gives for the same texts, a rerun
skips the shards already written, and two DDP processes (gloo on CPU) each write one shard whose
union is the single-process output.

Run as a script, this file is the two-process job itself: Lightning's ``ddp`` strategy re-executes
it once per extra process (``python tests/test_predict.py EXPORT CORPUS OUT_DIR``).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from ddp_job import launch_ddp_job
from quiet_fit import saved_checkpoint
from standins import tiny_attention_export

NUM_TEXTS = 37  # odd: the second shard is shorter, and nothing may be repeated to even them out
SHARD_SIZE = 19
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def tiny_export(tiny_model_dir, tmp_path_factory) -> Path:
    return tiny_attention_export(tiny_model_dir, tmp_path_factory.mktemp("predict") / "export")


@pytest.fixture(scope="module")
def corpus_csv(data_dir, tmp_path_factory) -> tuple[Path, list[str]]:
    with open(data_dir / "stsb" / "test.csv", newline="", encoding="utf-8") as handle:
        texts = [row["sentence1"] for row in csv.DictReader(handle)][:NUM_TEXTS]
    path = tmp_path_factory.mktemp("corpus") / "corpus.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["doc_id", "text"])
        writer.writerows([f"doc-{i}", text] for i, text in enumerate(texts))
    return path, texts


def encode(export: Path, corpus: Path, out_dir: Path, **options):
    from poolhead.corpus import encode_corpus

    return encode_corpus(
        str(export),
        str(corpus),
        out_dir,
        id_column="doc_id",
        batch_size=8,
        accelerator="cpu",
        progress=False,
        **{"devices": 1, "shard_size": SHARD_SIZE, **options},
    )


def test_predict_writes_what_encode_gives_and_a_rerun_skips_finished_shards(
    tiny_export, corpus_csv, tmp_path, one_thread
):
    import poolhead
    from poolhead.corpus import read_embeddings

    corpus, texts = corpus_csv
    manifest = encode(tiny_export, corpus, tmp_path / "out")
    assert manifest["complete"] and manifest["num_rows"] == NUM_TEXTS
    assert [s["file"] for s in manifest["shards"]] == ["shard-00000.parquet", "shard-00001.parquet"]
    ids, embeddings = read_embeddings(tmp_path / "out")
    assert ids == [f"doc-{i}" for i in range(NUM_TEXTS)]
    expected = poolhead.load(tiny_export, device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)

    # A run stopped after its first shard: the rerun writes only the missing one.
    first, second = (tmp_path / "out" / s["file"] for s in manifest["shards"])
    second.unlink()
    first_written = first.stat().st_mtime_ns
    assert encode(tiny_export, corpus, tmp_path / "out")["complete"]
    assert first.stat().st_mtime_ns == first_written and second.is_file()
    np.testing.assert_array_equal(read_embeddings(tmp_path / "out")[1], embeddings)


def test_predict_refuses_to_resume_with_other_settings(tiny_export, corpus_csv, tmp_path, one_thread):
    encode(tiny_export, corpus_csv[0], tmp_path / "out")
    with pytest.raises(ValueError, match=r"made with other settings \(shard_size differ\); give a new output folder"):
        encode(tiny_export, corpus_csv[0], tmp_path / "out", shard_size=SHARD_SIZE + 1)


def test_predict_safetensors_shards_and_cli(tiny_export, corpus_csv, tmp_path, one_thread, capsys):
    from poolhead.cli import main
    from poolhead.corpus import read_embeddings

    out = tmp_path / "out"
    argv = [
        "predict",
        "--model",
        str(tiny_export),
        "--input",
        str(corpus_csv[0]),
        "--output",
        str(out),
        "--format",
        "safetensors",
        "--shard-size",
        "100",
        "--accelerator",
        "cpu",
        "--devices",
        "1",
        "--no-progress",
    ]
    assert main(argv) == 0
    assert f"{NUM_TEXTS} texts, 1 shards" in capsys.readouterr().out
    ids, embeddings = read_embeddings(out)
    assert ids == list(range(NUM_TEXTS)) and embeddings.shape == (NUM_TEXTS, 32)
    assert main([*argv[:3], "--input", str(corpus_csv[0]), "--output", str(tmp_path / "bad"), "--column", "body"]) == 2
    assert "column 'body' not found (columns: doc_id, text); set --column" in capsys.readouterr().err


HUB_CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.csv
  - split: test
    path: data/test.csv
---
# corpus: the texts of corpus.csv as a hub dataset repository, the train split in two files
"""


@pytest.fixture
def hub_corpus(corpus_csv, tmp_path, monkeypatch) -> Path:
    """``someorg/corpus`` on an offline machine: the rows of corpus.csv, as datasets keeps a hub dataset it loaded.

    Returns the folder laid out as the hub repository (train = corpus.csv's rows in two files, test = 3 others).
    """
    import datasets.config
    import huggingface_hub.constants
    from standins import hub_dataset_cache_standin

    home = tmp_path / "hf"
    # datasets and huggingface_hub read these at import: their module constants are patched too.
    for variable, value in {
        "HF_HOME": home,
        "HF_DATASETS_CACHE": home / "datasets",
        "HF_HUB_CACHE": home / "hub",
    }.items():
        monkeypatch.setenv(variable, str(value))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    with open(corpus_csv[0], newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    repository = tmp_path / "repository" / "corpus"
    (repository / "data").mkdir(parents=True)
    (repository / "README.md").write_text(HUB_CARD, encoding="utf-8")
    tests = [[f"t-{i}", "A test text."] for i in range(3)]  # ids are unique, as predict requires
    parts = {"train-00000.csv": rows[:20], "train-00001.csv": rows[20:], "test.csv": tests}
    for name, part in parts.items():
        with open(repository / "data" / name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([header, *part])
    hub_dataset_cache_standin(home / "datasets", "someorg/corpus", repository)
    return repository


def predict_command(export: Path, source: str, out: Path, *options: str) -> list[str]:
    return ["predict", "--model", str(export), "--input", source, "--output", str(out), "--id-column", "doc_id",
            "--batch-size", "8", "--shard-size", str(SHARD_SIZE), "--accelerator", "cpu", "--devices", "1",
            "--no-progress", *options]  # fmt: skip


def test_predict_reads_a_hub_dataset_offline_as_it_reads_a_local_file(
    tiny_export, corpus_csv, hub_corpus, tmp_path, one_thread, capsys
):
    from poolhead.cli import main
    from poolhead.corpus import read_embeddings

    assert main(predict_command(tiny_export, "someorg/corpus", tmp_path / "hub")) == 0
    assert f"{NUM_TEXTS} texts, 2 shards" in capsys.readouterr().out
    encode(tiny_export, corpus_csv[0], tmp_path / "local")
    hub_ids, hub_embeddings = read_embeddings(tmp_path / "hub")
    local_ids, local_embeddings = read_embeddings(tmp_path / "local")
    assert hub_ids == local_ids == [f"doc-{i}" for i in range(NUM_TEXTS)]
    np.testing.assert_allclose(hub_embeddings, local_embeddings, atol=1e-6, rtol=0)

    # The repository folder itself reads as the hub id does; --split picks another split.
    assert main(predict_command(tiny_export, str(hub_corpus), tmp_path / "folder")) == 0
    np.testing.assert_allclose(read_embeddings(tmp_path / "folder")[1], local_embeddings, atol=1e-6, rtol=0)
    assert main(predict_command(tiny_export, "someorg/corpus", tmp_path / "test", "--split", "test")) == 0
    assert read_embeddings(tmp_path / "test")[0] == ["t-0", "t-1", "t-2"]
    capsys.readouterr()
    assert main(predict_command(tiny_export, "someorg/elsewhere", tmp_path / "missing")) == 2
    assert "'someorg/elsewhere' is not a local file, and its split 'train' does not load" in capsys.readouterr().err


def run_ddp_job(export: str, corpus: str, out_dir: str) -> None:
    import torch

    import poolhead.corpus.writer as writer

    torch.set_num_threads(1)
    written = []
    original = writer.EmbeddingShardWriter.write_shard

    def recording_write_shard(self, shard, parts):
        written.append(shard)
        return original(self, shard, parts)

    writer.EmbeddingShardWriter.write_shard = recording_write_shard
    encode(Path(export), Path(corpus), Path(out_dir), devices=2, strategy="ddp")
    rank = int(os.environ.get("LOCAL_RANK", 0))
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(written), encoding="utf-8")


def test_two_ddp_processes_write_one_shard_each_and_together_the_single_process_output(
    tiny_export, corpus_csv, tmp_path, one_thread
):
    from poolhead.corpus import read_embeddings

    args = [str(tiny_export), str(corpus_csv[0]), str(tmp_path / "ddp")]
    by_rank = launch_ddp_job(__file__, args, tmp_path / "ddp", 2, TIMEOUT_S)
    assert by_rank == [[0], [1]]

    encode(tiny_export, corpus_csv[0], tmp_path / "single")
    ddp_ids, ddp_embeddings = read_embeddings(tmp_path / "ddp")
    single_ids, single_embeddings = read_embeddings(tmp_path / "single")
    assert ddp_ids == single_ids
    np.testing.assert_allclose(ddp_embeddings, single_embeddings, atol=1e-6)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    run_ddp_job(*sys.argv[1:4])


def test_predict_from_a_checkpoint_gives_what_its_export_gives(tiny_model_dir, corpus_csv, tmp_path, one_thread):

    from poolhead.corpus import read_embeddings
    from poolhead.export import export_checkpoint
    from poolhead.training.module import PoolingModule

    model = PoolingModule(backbone=tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2})
    saved_checkpoint(model, tmp_path / "best.ckpt")
    export = export_checkpoint(tmp_path / "best.ckpt", tmp_path / "export")

    encode(tmp_path / "best.ckpt", corpus_csv[0], tmp_path / "from-ckpt")
    encode(export, corpus_csv[0], tmp_path / "from-export")
    np.testing.assert_allclose(
        read_embeddings(tmp_path / "from-ckpt")[1], read_embeddings(tmp_path / "from-export")[1], atol=1e-5
    )
