"""Small defects found by reading the code, each with the check a user would make."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from poolhead import Encoder
from poolhead.backbone import load_backbone

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")


def test_star_import_stays_light():
    code = (
        "from poolhead import *; import sys; print(sorted({'lightning', 'sentence_transformers'} & set(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "[]"


def test_an_encoder_leaves_the_backbone_it_is_given_as_it_was(tiny_model_dir):
    backbone = load_backbone(tiny_model_dir)
    limit = backbone.max_length

    encoder = Encoder(backbone, max_length=8)

    assert encoder.max_length == 8 and backbone.max_length == limit


def test_no_attributes_that_never_fill(tiny_model_dir):
    from poolhead.data import SentencePairDataModule
    from poolhead.training.module import PoolingModule

    # PoolingModule.metrics stayed {} (the metrics live in val_metrics / test_metrics);
    # SentencePairDataModule.sentence_features had no caller.
    assert not hasattr(PoolingModule(tiny_model_dir, pooler="mean"), "metrics")
    assert not hasattr(SentencePairDataModule, "sentence_features")


def test_a_broken_poolhead_export_surfaces_instead_of_falling_back(tiny_model_dir, tmp_path, monkeypatch):
    from poolhead.evaluation import load_model_for_eval
    from poolhead.export import export_sentence_transformer

    folder = export_sentence_transformer(tiny_model_dir, "mean", tmp_path / "mean")
    monkeypatch.setitem(sys.modules, "poolhead.export", None)  # its import now fails

    with pytest.raises(ImportError):
        load_model_for_eval(folder)


def write_pairs(path: Path, count: int) -> None:
    # Ordered like STS-B's genres: the first rows alone are not a sample of the file.
    lines = ["sentence1,sentence2,score"] + [f"first {i},second {i},{i / (count - 1):.4f}" for i in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_compare_limit_takes_a_seeded_random_subset_in_file_order(tmp_path):
    from poolhead.evaluation import load_evaluation_set

    write_pairs(tmp_path / "test.csv", 100)

    subset = load_evaluation_set(tmp_path, limit=10).test

    assert len(subset) == 10 and list(subset.targets) == sorted(subset.targets)
    assert subset.targets.max() > 0.5  # not only the first rows
    assert load_evaluation_set(tmp_path, limit=10).test.sentence1 == subset.sentence1
    assert load_evaluation_set(tmp_path, limit=10, seed=1).test.sentence1 != subset.sentence1


def test_export_reads_the_checkpoint_once(tiny_model_dir, tmp_path, monkeypatch):
    from lightning.pytorch.callbacks import ModelCheckpoint
    from quiet_fit import saved_checkpoint

    from poolhead.export import export_checkpoint
    from poolhead.training.module import PoolingModule

    model = PoolingModule(tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2})
    callback = ModelCheckpoint(monitor="val/spearman", mode="max")
    callback.best_model_score = torch.tensor(71.25)
    checkpoint = saved_checkpoint(model, tmp_path / "best.ckpt", callbacks=[callback], enable_checkpointing=True)
    reads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: reads.append(1) or real_load(*args, **kwargs))

    out = export_checkpoint(checkpoint, tmp_path / "exported")

    assert len(reads) == 1
    assert "val/spearman (best) | 71.25" in (out / "README.md").read_text(encoding="utf-8")


def test_bench_finetune_counts_the_pairs_it_trains_on(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "scripts"))
    bench = importlib.import_module("bench_finetune")
    write_pairs(tmp_path / "train.csv", 7)

    assert bench.describe_setup(tmp_path, 4, "one after the other", 2).startswith(f"{tmp_path.name} train (7 pairs)")
