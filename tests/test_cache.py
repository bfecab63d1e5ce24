"""The frozen-backbone feature cache: built once, reused, never trusted when stale or corrupt, shared under DDP."""

from __future__ import annotations

import csv
import logging
import threading
from pathlib import Path

import lightning as L
import pytest
import torch
from cache_fixtures import MAX_LENGTH, EncodeCounter, build, cache_folders, stsb_sentences
from lightning.pytorch.loggers import CSVLogger
from quiet_fit import quiet_trainer

from poolhead import PoolingModule, SentencePairDataModule
from poolhead.backbone import load_backbone
from poolhead.cache import LAST, build_feature_cache, store
from poolhead.cache.store import chunk_paths

# float16 keeps ~3 significant digits; the tiny model's features are O(1).
FP16_TOLERANCE = {"atol": 2e-2, "rtol": 1e-2}


@pytest.fixture(scope="module")
def texts(data_dir) -> list[str]:
    """40 STS-B sentences, with repeats, as a data module would pass them."""
    sentences = stsb_sentences(data_dir, 20)
    return sentences + sentences[:5]


@torch.inference_mode()
def assert_lookup_matches_backbone(cache, backbone, texts, layers=(LAST,)) -> None:
    """Every text looked up from the cache equals the backbone run on it directly (padding masked out)."""
    ids = torch.arange(len(texts))
    tokens, mask, hidden_states = cache.lookup(ids)
    features = backbone.tokenizer(
        texts, padding=True, truncation=True, max_length=backbone.max_length, return_tensors="pt"
    )
    outputs = backbone.model.eval()(**features, output_hidden_states=True)
    assert tokens.dtype == torch.float32
    assert torch.equal(mask, features["attention_mask"].bool())
    real = mask[..., None]
    if list(layers) == [LAST]:
        assert hidden_states is None
        expected = {LAST: outputs.last_hidden_state}
    else:
        assert [i for i, h in enumerate(hidden_states) if h is not None] == sorted(layers)
        expected = {i: outputs.hidden_states[i] for i in layers}
        torch.testing.assert_close(tokens * real, outputs.hidden_states[max(layers)] * real, **FP16_TOLERANCE)
    for layer, states in expected.items():
        got = tokens if layer == LAST else hidden_states[layer]
        torch.testing.assert_close(got * real, states * real, **FP16_TOLERANCE)
        assert not got.masked_select(~real).any(), "padding positions must be zero"


# --- build and reuse ------------------------------------------------------------------------


@pytest.mark.parametrize("layers", [(LAST,), (0, 2)], ids=["last_hidden_state", "hidden_states"])
def test_second_build_reuses_everything_and_encodes_nothing(cache_backbone, texts, tmp_path, layers):
    unique = len(set(texts))
    first, encoded = build(cache_backbone, texts, tmp_path, layers)
    assert (first.stats.sentences, first.stats.reused, first.stats.encoded_here) == (unique, 0, unique)
    assert encoded == unique and first.stats.hit_rate == 0.0
    assert first.stats.bytes > 0 and first.stats.seconds > 0

    second, encoded = build(cache_backbone, texts, tmp_path, layers)
    assert second.stats.hit_rate == 1.0 and second.stats.encoded_here == 0 and encoded == 0
    assert len(chunk_paths(cache_folders(tmp_path)[0])) == 1
    assert_lookup_matches_backbone(second, cache_backbone, texts, layers)


def test_lookup_follows_the_given_ids_and_positions(cache_backbone, texts, tmp_path):
    cache, _ = build(cache_backbone, texts, tmp_path)
    ids = torch.tensor([7, 3, 3, len(texts) - 1])  # the last text repeats text 4
    tokens, mask, _ = cache.lookup(ids)
    every, every_mask, _ = cache.lookup(torch.arange(len(texts)))
    for row, i in enumerate(ids.tolist()):
        n = int(every_mask[i].sum())
        assert int(mask[row].sum()) == n
        torch.testing.assert_close(tokens[row, :n], every[i, :n], atol=0, rtol=0)
    assert torch.equal(every[4], every[len(texts) - 1])


def test_layer_cache_serves_a_last_layer_pooler_only_with_its_layer(cache_backbone, texts, tmp_path):
    """Chunks of layers (0, 2) do not hold last_hidden_state under the LAST key: a LAST run encodes anew."""
    build(cache_backbone, texts, tmp_path, (0, 2))
    cache, encoded = build(cache_backbone, texts, tmp_path, (LAST,))
    assert encoded == len(set(texts)) and cache.stats.hit_rate == 0.0
    again, encoded = build(cache_backbone, texts, tmp_path, (2,))
    assert encoded == 0 and again.stats.hit_rate == 1.0


# --- stale and corrupt ------------------------------------------------------------------------


def test_other_max_length_is_another_cache(cache_backbone, tiny_model_dir, texts, tmp_path):
    build(cache_backbone, texts, tmp_path)
    shorter = load_backbone(tiny_model_dir, max_length=8)
    cache, encoded = build(shorter, texts, tmp_path)
    assert encoded == len(set(texts)) and cache.stats.hit_rate == 0.0
    assert len(cache_folders(tmp_path)) == 2
    assert cache.lookup(torch.arange(len(texts)))[1].shape[1] == 8
    assert_lookup_matches_backbone(cache, shorter, texts)


def test_other_weights_are_another_cache(cache_backbone, tiny_model_dir, texts, tmp_path):
    build(cache_backbone, texts, tmp_path)
    changed = load_backbone(tiny_model_dir, max_length=MAX_LENGTH)
    with torch.no_grad():
        changed.model.embeddings.word_embeddings.weight.mul_(1.5)
    cache, encoded = build(changed, texts, tmp_path)
    assert encoded == len(set(texts)) and cache.stats.hit_rate == 0.0
    assert_lookup_matches_backbone(cache, changed, texts)
    # The original weights still find their own features.
    again, encoded = build(cache_backbone, texts, tmp_path)
    assert encoded == 0 and again.stats.hit_rate == 1.0


def test_chunk_of_another_key_is_ignored_with_a_warning(cache_backbone, tiny_model_dir, texts, tmp_path, caplog):
    build(cache_backbone, texts, tmp_path / "a")
    shorter = load_backbone(tiny_model_dir, max_length=8)
    build(shorter, texts, tmp_path / "b")
    (foreign,) = chunk_paths(cache_folders(tmp_path / "b")[0])
    own_folder = cache_folders(tmp_path / "a")[0]
    (own_folder / foreign.name).write_bytes(foreign.read_bytes())  # e.g. copied by hand
    with caplog.at_level(logging.WARNING, logger="poolhead.cache"):
        cache, encoded = build(cache_backbone, texts, tmp_path / "a")
    assert encoded == 0 and cache.stats.hit_rate == 1.0
    assert "another backbone" in caplog.text
    assert_lookup_matches_backbone(cache, cache_backbone, texts)


def flip_last_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(1, 9):  # inside the last tensor's data, past the JSON header
        data[-i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garble_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[10:20] = b"#" * 10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [flip_last_bytes, truncate, garble_header])
def test_corrupt_chunk_is_removed_and_rebuilt(cache_backbone, texts, tmp_path, caplog, damage):
    build(cache_backbone, texts, tmp_path)
    (chunk,) = chunk_paths(cache_folders(tmp_path)[0])
    damage(chunk)
    with caplog.at_level(logging.WARNING, logger="poolhead.cache"):
        cache, encoded = build(cache_backbone, texts, tmp_path)
    assert f"{chunk.name} is corrupt" in caplog.text
    assert not chunk.exists()
    assert encoded == len(set(texts)) and cache.stats.hit_rate == 0.0
    assert_lookup_matches_backbone(cache, cache_backbone, texts)
    assert build(cache_backbone, texts, tmp_path)[1] == 0


def test_partial_cache_encodes_only_the_missing_texts(cache_backbone, texts, tmp_path):
    known = texts[:10]
    build(cache_backbone, known, tmp_path)
    cache, encoded = build(cache_backbone, texts, tmp_path)
    unique = len(set(texts))
    assert encoded == unique - 10 == cache.stats.encoded_here
    assert cache.stats.reused == 10 and cache.stats.hit_rate == pytest.approx(10 / unique)
    assert len(chunk_paths(cache_folders(tmp_path)[0])) == 2
    assert_lookup_matches_backbone(cache, cache_backbone, texts)  # rows from both chunks


def test_only_chunks_of_the_wanted_texts_are_loaded(cache_backbone, texts, tmp_path, monkeypatch):
    """One folder serves every data set encoded with a backbone: a run reads the tensors of its own texts only."""
    first, second = texts[:10], texts[20:30]
    assert not set(first) & set(second)
    loaded: list[str] = []
    load_file = store.load_file
    monkeypatch.setattr(store, "load_file", lambda path: loaded.append(Path(path).name) or load_file(path))
    build(cache_backbone, first, tmp_path)
    assert loaded == []  # what this run encoded is used from memory, not read back
    build(cache_backbone, second, tmp_path)
    assert loaded == []
    cache, encoded = build(cache_backbone, second, tmp_path)
    assert encoded == 0 and len(loaded) == 1
    assert_lookup_matches_backbone(cache, cache_backbone, second)


def test_leftover_temporary_file_is_ignored(cache_backbone, texts, tmp_path, caplog):
    build(cache_backbone, texts, tmp_path)
    folder = cache_folders(tmp_path)[0]
    leftover = folder / ".0123abcd-rank0.x1y2.tmp"  # what a crash during write_chunk leaves
    leftover.write_bytes(b"half a safetensors file")
    with caplog.at_level(logging.WARNING, logger="poolhead.cache"):
        cache, encoded = build(cache_backbone, texts, tmp_path)
    assert encoded == 0 and cache.stats.hit_rate == 1.0
    assert caplog.text == ""
    assert_lookup_matches_backbone(cache, cache_backbone, texts)


def test_backbone_is_placed_on_its_device_outside_inference_mode(tiny_model_dir, texts, tmp_path, monkeypatch):
    # Moving a model to a GPU inside inference mode makes its parameters and buffers inference
    # tensors, and DDP's buffer broadcast then fails on the first validation step.
    backbone = load_backbone(tiny_model_dir, max_length=MAX_LENGTH)
    moved_in_inference_mode = []
    original_to = backbone.model.to

    def recording_to(*args, **kwargs):
        moved_in_inference_mode.append(torch.is_inference_mode_enabled())
        return original_to(*args, **kwargs)

    monkeypatch.setattr(backbone.model, "to", recording_to)
    build(backbone, texts, tmp_path)
    assert moved_in_inference_mode and not any(moved_in_inference_mode)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: a CPU move copies nothing")
def test_cached_backbone_on_gpu_has_no_inference_tensors(tiny_model_dir, texts, tmp_path):
    backbone = load_backbone(tiny_model_dir, max_length=MAX_LENGTH)
    build_feature_cache(
        backbone, texts, [LAST], cache_dir=tmp_path, device=torch.device("cuda"), show_progress_bar=False
    )
    tensors = [*backbone.model.parameters(), *backbone.model.buffers()]
    assert tensors[0].is_cuda and not any(t.is_inference() for t in tensors)


def test_progress_bar_shows_only_when_asked(cache_backbone, texts, tmp_path, capsys):
    build_feature_cache(cache_backbone, texts, [LAST], cache_dir=tmp_path / "a", show_progress_bar=True)
    assert "caching features" in capsys.readouterr().err
    build_feature_cache(cache_backbone, texts, [LAST], cache_dir=tmp_path / "b", show_progress_bar=False)
    assert "caching features" not in capsys.readouterr().err


def test_default_folder_comes_from_the_environment(cache_backbone, texts, tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "env"))
    build(cache_backbone, texts, None)
    assert len(chunk_paths(cache_folders(tmp_path / "env")[0])) == 1


# --- several processes --------------------------------------------------------------------


def build_as_ranks(tiny_model_dir, texts, cache_dir, world_size: int = 2) -> list[tuple]:
    """Every rank's build in its own thread with its own copy of the backbone, as DDP processes.

    A rank starts only once the rank before it waits at its first barrier: the latest start
    DDP allows, so a rank that read the folder after another one wrote to it would show.
    """
    backbones = [load_backbone(tiny_model_dir, max_length=MAX_LENGTH) for _ in range(world_size)]
    sync = threading.Barrier(world_size, timeout=60)
    waiting = [threading.Event() for _ in range(world_size)]
    results: list = [None] * world_size

    def run(rank: int) -> None:
        def barrier() -> None:
            waiting[rank].set()
            sync.wait()

        try:
            results[rank] = build(backbones[rank], texts, cache_dir, rank=rank, world_size=world_size, barrier=barrier)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            results[rank] = error
            waiting[rank].set()
            sync.abort()

    threads = []
    for rank in range(world_size):
        if rank:
            waiting[rank - 1].wait(timeout=60)
        threads.append(threading.Thread(target=run, args=(rank,)))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=120)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def test_each_process_encodes_only_its_share(tiny_model_dir, cache_backbone, texts, tmp_path):
    unique = len(set(texts))
    results = build_as_ranks(tiny_model_dir, texts, tmp_path)
    counts = [encoded for _, encoded in results]
    assert [cache.stats.encoded_here for cache, _ in results] == counts
    assert sum(counts) == unique and max(counts) - min(counts) <= 1
    assert len(chunk_paths(cache_folders(tmp_path)[0])) == 2
    for cache, _ in results:
        assert cache.stats.hit_rate == 0.0
        assert_lookup_matches_backbone(cache, cache_backbone, texts)


def test_processes_share_only_what_is_missing(tiny_model_dir, cache_backbone, texts, tmp_path):
    build(cache_backbone, texts[:10], tmp_path)
    counts = [encoded for _, encoded in build_as_ranks(tiny_model_dir, texts, tmp_path)]
    assert sum(counts) == len(set(texts)) - 10 and max(counts) - min(counts) <= 1


def test_missing_share_of_another_node_names_the_shared_filesystem(cache_backbone, texts, tmp_path):
    """Rank 1 on another node wrote its share elsewhere: rank 0 must say why, not KeyError."""
    with pytest.raises(RuntimeError, match="shared by all nodes"):
        build(cache_backbone, texts, tmp_path, rank=0, world_size=2)


# --- training -------------------------------------------------------------------------------


def fit(
    tiny_model_dir, data_dir, tmp_path: Path, cache: bool, progress_bar: bool = False
) -> tuple[PoolingModule, dict]:
    L.seed_everything(0, verbose=False)
    model = PoolingModule(
        tiny_model_dir,
        pooler="attention",
        pooler_kwargs={"num_heads": 2},
        max_length=MAX_LENGTH,
        lr=1e-2,
        cache=cache,
        cache_dir=str(tmp_path / "features"),
    )
    data = SentencePairDataModule(
        str(data_dir / "stsb"),
        tokenizer=tiny_model_dir,
        max_length=MAX_LENGTH,
        batch_size=16,
        limit_train_pairs=96,
        limit_eval_pairs=64,
    )
    logger = CSVLogger(tmp_path / "logs", name="run")
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, logger=logger, enable_progress_bar=progress_bar, deterministic=True, log_every_n_steps=1
    )
    with EncodeCounter(model.backbone_model) as counter:
        trainer.fit(model, datamodule=data)
    model.sentences_encoded = counter.sentences
    model.pair_count = len(data.sentences)
    with open(Path(logger.log_dir) / "metrics.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    logged = {key: float(value) for row in rows for key, value in row.items() if value not in ("", None)}
    return model, logged


def test_cached_training_matches_uncached(tiny_model_dir, data_dir, tmp_path, caplog, capsys):
    rank_zero_logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    rank_zero_logger.addHandler(caplog.handler)  # Lightning's loggers do not propagate to the root
    try:
        with caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"):
            cached, cached_logs = fit(tiny_model_dir, data_dir, tmp_path / "cached", cache=True, progress_bar=True)
    finally:
        rank_zero_logger.removeHandler(caplog.handler)
    assert "caching features" in capsys.readouterr().err
    plain, plain_logs = fit(tiny_model_dir, data_dir, tmp_path / "plain", cache=False)

    assert cached.feature_cache is not None and plain.feature_cache is None
    # The cached run ran the backbone once per unique sentence (to fill the cache), then never again.
    assert cached.sentences_encoded == cached.pair_count
    assert plain.sentences_encoded > 2 * plain.pair_count
    assert "feature cache:" in caplog.text and "reused from disk" in caplog.text
    assert cached_logs["cache/hit_rate"] == 0.0 and cached_logs["cache/size_mib"] > 0 and "cache/seconds" in cached_logs
    assert "cache/hit_rate" not in plain_logs
    # Only float16 storage separates the two runs. Spearman is logged x100, and float16 rounding swaps
    # near-tied similarities of the random tiny model (0.1-0.2 apart, seen in repeated runs); the
    # weights below are the close check.
    assert cached_logs["val/spearman"] == pytest.approx(plain_logs["val/spearman"], abs=1.0)
    assert cached_logs["train/loss"] == pytest.approx(plain_logs["train/loss"], abs=1e-2)
    for (name, a), (_, b) in zip(cached.pooler.state_dict().items(), plain.pooler.state_dict().items(), strict=False):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-2, msg=name)
