"""The feature cache is written in chunks as it is built: a fit killed during the build keeps every
finished chunk (the rerun encodes only the rest), and a disk that fills midway keeps what was written
and the features in memory, with one warning instead of a safetensors traceback."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from cache_fixtures import MAX_LENGTH, build, stsb_sentences, token_features
from safetensors import SafetensorError

from poolhead.cache.store import chunk_paths
from poolhead.cache.writable import FeatureCacheNotSavedWarning

pytestmark = pytest.mark.usefixtures("one_thread")

CHUNK_TEXTS = 8

#: builds the cache in a child process that SIGKILLs itself when it starts encoding chunk KILL_AT + 1
KILLED_BUILD = textwrap.dedent(
    """
    import os, signal, sys
    from poolhead.backbone import load_backbone
    from poolhead.cache import LAST, build_feature_cache, features

    model_dir, cache_dir, texts_file, kill_at = sys.argv[1:5]
    features.CHUNK_TEXTS = {chunk_texts}
    encode, calls = features._encode, []

    def encode_then_die(*args, **kwargs):
        if len(calls) == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        calls.append(1)
        return encode(*args, **kwargs)

    features._encode = encode_then_die
    texts = open(texts_file, encoding="utf-8").read().split("\\n")
    build_feature_cache(load_backbone(model_dir, max_length={max_length}), texts, [LAST], cache_dir=cache_dir,
                        show_progress_bar=False)
    """
).format(chunk_texts=CHUNK_TEXTS, max_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def texts(data_dir) -> list[str]:
    unique = list(dict.fromkeys(stsb_sentences(data_dir, 15)))
    assert len(unique) > 3 * CHUNK_TEXTS
    return unique


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr("poolhead.cache.features.CHUNK_TEXTS", CHUNK_TEXTS, raising=False)


def test_a_build_killed_midway_keeps_its_finished_chunks_and_the_rerun_encodes_only_the_rest(
    cache_backbone, texts, tiny_model_dir, tmp_path
):
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("\n".join(texts), encoding="utf-8")
    cache_dir, kill_at = tmp_path / "cache", 2
    child = subprocess.run(
        [sys.executable, "-c", KILLED_BUILD, tiny_model_dir, str(cache_dir), str(texts_file), str(kill_at)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    (folder,) = cache_dir.iterdir()
    assert len(chunk_paths(folder)) == kill_at
    assert not [p for p in folder.iterdir() if p.suffix == ".tmp"]

    cache, encoded = build(cache_backbone, texts, cache_dir)
    assert cache.stats.reused == kill_at * CHUNK_TEXTS
    assert encoded == len(texts) - kill_at * CHUNK_TEXTS
    reference, _ = build(cache_backbone, texts, tmp_path / "uninterrupted")
    torch.testing.assert_close(token_features(cache, len(texts)), token_features(reference, len(texts)))


@pytest.mark.parametrize(
    "disk_full",
    [OSError(errno.ENOSPC, "No space left on device"), SafetensorError("Error while serializing: StorageFull")],
    ids=["ENOSPC", "SafetensorError"],
)
def test_a_disk_full_midway_keeps_the_written_chunks_and_the_features_in_memory(
    cache_backbone, texts, tmp_path, monkeypatch, disk_full
):
    from safetensors.torch import save_file

    reference, _ = build(cache_backbone, texts, tmp_path / "reference")
    saved = []

    def fills_after_one(tensors, path, metadata=None):
        if saved:
            with open(path, "wb") as partial:  # a full disk leaves a partial file behind
                partial.write(b"\0" * 10)
            raise disk_full
        saved.append(path)
        save_file(tensors, path, metadata=metadata)

    monkeypatch.setattr("poolhead.cache.store.save_file", fills_after_one)
    with pytest.warns(FeatureCacheNotSavedWarning, match="keeps its features in memory") as caught:
        cache, encoded = build(cache_backbone, texts, tmp_path / "cache")
    assert len([w for w in caught if issubclass(w.category, FeatureCacheNotSavedWarning)]) == 1
    assert encoded == len(texts)
    torch.testing.assert_close(token_features(cache, len(texts)), token_features(reference, len(texts)))

    # The chunk written before the disk filled is whole, nothing half-written is left, and it is reused.
    (folder,) = (tmp_path / "cache").iterdir()
    assert len(chunk_paths(folder)) == 1
    assert not [p for p in folder.iterdir() if p.suffix == ".tmp"]
    monkeypatch.undo()
    monkeypatch.setattr("poolhead.cache.features.CHUNK_TEXTS", CHUNK_TEXTS, raising=False)
    again, encoded = build(cache_backbone, texts, tmp_path / "cache")
    assert again.stats.reused == CHUNK_TEXTS
    assert encoded == len(texts) - CHUNK_TEXTS
