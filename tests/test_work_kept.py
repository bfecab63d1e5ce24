"""Work a run has done is not thrown away: a cache folder that cannot be written keeps the encoded
features in memory (or, under DDP, fails before encoding), and label data with the default
``val/spearman`` monitors checkpoints on a metric it logs instead of dying after the first epoch."""

from __future__ import annotations

import errno

import pytest
import torch
from cache_fixtures import EncodeCounter, build, stsb_sentences, token_features
from synthetic_pairs import LABEL_HEADER, write_rows

from poolhead.cache import LAST, build_feature_cache
from poolhead.cache.writable import FeatureCacheNotSavedWarning
from poolhead.cli import main
from poolhead.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def texts(data_dir) -> list[str]:
    return stsb_sentences(data_dir, 20)


def test_a_cache_folder_that_cannot_be_made_keeps_features_in_memory(cache_backbone, texts, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    reference, _ = build(cache_backbone, texts, tmp_path / "ok")
    with pytest.warns(FeatureCacheNotSavedWarning, match="keeps its features in memory"):
        cache, encoded = build(cache_backbone, texts, tmp_path / "a-file" / "cache")
    assert encoded == len(set(texts))  # one pass, not thrown away
    torch.testing.assert_close(token_features(cache, len(texts)), token_features(reference, len(texts)))


def test_a_full_disk_after_encoding_keeps_features_in_memory(cache_backbone, texts, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("poolhead.cache.writable.write_chunk", full)
    with pytest.warns(FeatureCacheNotSavedWarning, match="No space left on device"):
        cache, encoded = build(cache_backbone, texts, tmp_path / "full")
    assert encoded == len(set(texts))
    assert token_features(cache, len(texts)).abs().sum() > 0


def test_under_ddp_an_unwritable_folder_fails_before_encoding(cache_backbone, texts, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(UserError, match="share their features through it"):
        build(cache_backbone, texts, tmp_path / "a-file" / "cache", rank=0, world_size=2)
    with EncodeCounter(cache_backbone.model) as counter, pytest.raises(UserError):
        build_feature_cache(cache_backbone, texts, [LAST], cache_dir=tmp_path / "a-file" / "c", world_size=2)
    assert counter.sentences == 0


def test_label_data_with_the_default_monitors_checkpoints_on_accuracy(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "feature-cache"))
    monkeypatch.setattr("sys.argv", ["poolhead"])
    folder = tmp_path / "labels"
    for split, count in (("train", 32), ("validation", 16)):
        rows = [(f"a cat {i}", f"a {'cat' if i % 2 else 'dog'} {i}", i % 2) for i in range(count)]
        write_rows(folder / f"{split}.csv", rows, LABEL_HEADER)
    runs = tmp_path / "runs"
    args = ["fit", f"--model.backbone={tiny_model_dir}", "--model.loss=pair_classification",
            "--model.pooler_kwargs={num_heads: 2}", f"--data.path={folder}", "--data.batch_size=16",
            "--trainer.accelerator=cpu", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={runs}", "--trainer.logger.init_args.name=labels"]  # fmt: skip
    with pytest.warns(UserWarning, match="monitoring val/accuracy instead"):
        assert main(args) == 0
    checkpoints = sorted(p.name for p in (runs / "labels" / "version_0" / "checkpoints").iterdir())
    assert checkpoints == ["best-epoch0-step2.ckpt", "last.ckpt"]
