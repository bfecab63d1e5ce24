"""The feature cache read through memory maps: the same lookups as a cache held in RAM, pages shared
between processes instead of copied into each."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from cache_fixtures import build, cache_folders, stsb_sentences
from safetensors.torch import load_file as load_into_ram

from poolhead.cache import LAST
from poolhead.cache.features import cache_key
from poolhead.cache.store import Chunk, chunk_paths, find_rows, text_hashes, write_chunk

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def texts(data_dir) -> list[str]:
    return list(dict.fromkeys(stsb_sentences(data_dir, 30)))


def lookup_from_ram(folder: Path, texts: list[str], ids: torch.Tensor) -> torch.Tensor:
    """What the cache looked up before memory maps: every chunk loaded into RAM, the wanted rows
    concatenated into one tensor with a zero row after them, padding gathered from that row."""
    spans = {}
    for path in chunk_paths(folder):
        tensors = load_into_ram(str(path))
        rows = find_rows(tensors["index_hashes"].numpy(), tensors["index_rows"].numpy(), text_hashes(texts))
        for text, row in zip(texts, rows.tolist(), strict=True):
            if row >= 0:
                start, end = tensors["offsets"][row], tensors["offsets"][row + 1]
                spans.setdefault(text, tensors[f"layer_{LAST}"][start:end])
    pieces = [spans[text] for text in texts]
    lengths = torch.tensor([len(p) for p in pieces])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    flat = torch.cat([*pieces, pieces[0].new_zeros(1, pieces[0].shape[1])])
    starts, lengths = offsets[ids], lengths[ids]
    positions = torch.arange(int(lengths.max()))
    mask = positions[None, :] < lengths[:, None]
    return flat[torch.where(mask, starts[:, None] + positions[None, :], offsets[-1])].float()


def test_lookups_through_the_memory_map_equal_the_in_ram_ones(cache_backbone, texts, tmp_path):
    # Two chunks (a partial cache, then the rest), read back by a later run: every lookup mapped.
    build(cache_backbone, texts[:15], tmp_path)
    build(cache_backbone, texts, tmp_path)
    cache, _ = build(cache_backbone, texts, tmp_path)
    assert cache.stats.hit_rate == 1.0 and len(cache.chunks) == 2
    (folder,) = cache_folders(tmp_path)
    maps = Path("/proc/self/maps").read_text()
    assert all(str(path) in maps for path in chunk_paths(folder))
    for ids in (torch.arange(len(texts)), torch.tensor([20, 3, 3, 0, len(texts) - 1]), torch.tensor([16])):
        tokens, mask, _ = cache.lookup(ids)
        torch.testing.assert_close(tokens, lookup_from_ram(folder, texts, ids), atol=0, rtol=0)


CHILD = textwrap.dedent(
    """
    import json, sys, torch
    from poolhead.backbone import load_backbone
    from poolhead.cache import LAST, build_feature_cache

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

    model_dir, cache_dir, texts_file = sys.argv[1:4]
    texts = json.load(open(texts_file))
    backbone = load_backbone(model_dir, max_length=32)
    torch.zeros(1).float()  # torch's allocator warmed up before the baseline
    before, before_file = status("RssAnon"), status("RssFile")
    cache = build_feature_cache(backbone, texts, [LAST], cache_dir=cache_dir, show_progress_bar=False)
    open("/proc/self/clear_refs", "w").write("5")  # peak RSS (VmHWM) := RSS now
    before_peak = status("VmHWM")
    tokens, mask, _ = cache.lookup(torch.arange(0, len(texts), 97))
    mapped = [line.split()[-1] for line in open("/proc/self/maps") if line.rstrip().endswith(".safetensors")]
    anon_growth = status("RssAnon") - before
    for start in range(0, len(texts), 100):  # lookups spread over the whole cache, as an epoch's are
        cache.lookup(torch.arange(start, min(start + 100, len(texts))))
    print("RESULT " + json.dumps({
        "anon_growth": anon_growth,
        "file_growth": status("RssFile") - before_file,
        "peak_growth": status("VmHWM") - before_peak,
        "hit_rate": cache.stats.hit_rate,
        "mapped": sorted(set(mapped)),
        "sums": tokens.sum(dim=(1, 2)).tolist(),
    }))
    """
)


def test_a_cache_written_by_one_process_is_mapped_not_loaded_by_another(cache_backbone, tiny_model_dir, tmp_path):
    """64 MiB of features written here; another process serves lookups from them with its anonymous
    (private) memory growing by a fraction of that: the pages are the file's, shared, not a copy;
    and after lookups over all of it, neither its resident nor its peak memory holds the file."""
    count, tokens_each, hidden = 5000, 200, cache_backbone.hidden_size
    texts = [f"synthetic sentence {i}" for i in range(count)]
    features = torch.randn(count * tokens_each, hidden, generator=torch.Generator().manual_seed(0)).half()
    offsets = torch.arange(count + 1, dtype=torch.long) * tokens_each
    key_text = json.dumps(cache_key(cache_backbone), sort_keys=True)
    folder = tmp_path / "features" / hash_folder(key_text)
    path = write_chunk(folder, "synthetic", Chunk(texts=texts, layers={LAST: features}, offsets=offsets), key_text)
    assert path.stat().st_size > 60 * 2**20
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")

    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", CHILD, tiny_model_dir, str(tmp_path / "features"), str(tmp_path / "texts.json")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])

    assert result["hit_rate"] == 1.0
    # A copy would add the whole 64 MiB; imports and the index leave a few MiB of noise.
    assert result["anon_growth"] < features.nbytes / 4, (
        f"the reading process copied {result['anon_growth'] / 2**20:.0f} MiB"
    )
    assert str(path) in result["mapped"]
    # Lookups over every text leave few of the file's pages mapped, and its peak RSS over them stays
    # near one batch's: a lookup releases what it touched (the pages stay in the page cache).
    # Without the release ~64 MiB stay resident and count in the peak.
    assert result["file_growth"] < features.nbytes / 8, f"{result['file_growth'] / 2**20:.0f} MiB of the file resident"
    assert result["peak_growth"] < features.nbytes / 4, f"peak RSS grew by {result['peak_growth'] / 2**20:.0f} MiB"
    expected = [float(features[i * tokens_each : (i + 1) * tokens_each].float().sum()) for i in range(0, count, 97)]
    assert result["sums"] == pytest.approx(expected, rel=1e-5)


def hash_folder(key_text: str) -> str:
    """The folder build_feature_cache keeps a backbone setting's chunks in."""
    return hashlib.sha256(key_text.encode()).hexdigest()[:20]
