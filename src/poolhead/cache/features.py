"""FeatureCache: a frozen backbone's token embeddings per unique sentence, computed once, reused by epochs and runs."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from poolhead.backbone import Backbone
from poolhead.cache.lookup import LAST, CacheStats, FeatureCache, assemble
from poolhead.cache.store import Chunk, chunk_paths, read_chunk, text_hashes
from poolhead.cache.writable import folder_is_writable, write_or_warn
from poolhead.encoder import encode_in_length_order

FORMAT_VERSION = 2
ENCODE_BATCH_SIZE = 64
#: texts per chunk file: the most encoding a build killed midway loses
CHUNK_TEXTS = 20_000


def default_cache_dir() -> Path:
    return Path(os.environ.get("POOLHEAD_CACHE_DIR", Path.home() / ".cache" / "poolhead" / "features"))


def cache_key(backbone: Backbone) -> dict:
    """Everything that changes a sentence's token embeddings: the exact weights and the tokenization."""
    return {
        "format": FORMAT_VERSION,
        "backbone": backbone.name_or_path,
        "weights_sha256": backbone.fingerprint(),
        "tokenizer_sha256": tokenizer_digest(backbone.tokenizer),
        "max_length": backbone.max_length,
        "dtype": "float16",
    }


def tokenizer_digest(tokenizer) -> str:
    """SHA-256 of the tokenizer's vocabulary and rules.

    The fast tokenizer's JSON also records the padding/truncation of the *last call*, which
    changes as soon as it is used; those two fields are dropped so the key stays stable.
    """
    if hasattr(tokenizer, "backend_tokenizer"):
        state = json.loads(tokenizer.backend_tokenizer.to_str())
        state.pop("padding", None)
        state.pop("truncation", None)
        text = json.dumps(state, sort_keys=True)
    else:
        text = json.dumps(tokenizer.get_vocab(), sort_keys=True) + type(tokenizer).__name__
    return hashlib.sha256(text.encode()).hexdigest()


def build_feature_cache(
    backbone: Backbone,
    texts: Sequence[str],
    layers: Sequence[int],
    cache_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] = lambda: None,
    show_progress_bar: bool = True,
) -> FeatureCache:
    """Load what is cached for ``texts``, encode the rest (each process its share), return the cache.

    ``layers`` are absolute ``hidden_states`` indices, or ``[LAST]`` for ``last_hidden_state`` only.
    """
    started = time.perf_counter()
    key_text = json.dumps(cache_key(backbone), sort_keys=True)
    folder = Path(cache_dir or default_cache_dir()) / hashlib.sha256(key_text.encode()).hexdigest()[:20]
    layers = list(layers)
    unique = list(dict.fromkeys(texts))
    queries = text_hashes(unique)
    chunks: list[Chunk] = []
    found = np.full((len(unique), 2), -1, dtype=np.int64)  # per unique text: chunk number, row
    read = _index_chunks(folder, key_text, layers, queries, chunks, found, skip=set())
    missing = [unique[i] for i in np.flatnonzero(found[:, 0] < 0)]
    # Every process must split the same list: let all of them read the folder before any writes to it.
    barrier()
    share = missing[rank::world_size]
    # Check before encoding, not after: a cache folder that cannot be written must not cost the pass.
    writable = not share or folder_is_writable(folder, world_size)
    progress = show_progress_bar and rank == 0
    target = (folder, f"{uuid.uuid4().hex[:12]}-rank{rank}") if writable else None
    for chunk in _encode_in_chunks(backbone, share, layers, device, progress, target, key_text, read):
        _add_rows(chunks, chunk, queries, found)  # used from memory, not read back
    barrier()
    if missing:
        _index_chunks(folder, key_text, layers, queries, chunks, found, skip=read)  # the other processes' shares
    not_found = np.flatnonzero(found[:, 0] < 0)
    if len(not_found):
        raise RuntimeError(
            f"feature cache at {folder} lacks {len(not_found)} sentences after encoding "
            f"(e.g. {unique[not_found[0]]!r}); under multi-node DDP the cache_dir must be on a filesystem "
            f"shared by all nodes"
        )
    cache = assemble(chunks, found, _positions(texts, unique), layers, backbone.num_hidden_states)
    cache.stats = CacheStats(
        sentences=len(unique),
        reused=len(unique) - len(missing),
        encoded_here=len(share),
        seconds=time.perf_counter() - started,
        bytes=sum(p.stat().st_size for p in chunk_paths(folder)),
    )
    return cache


def _index_chunks(
    folder: Path,
    key_text: str,
    layers: list[int],
    queries: np.ndarray,
    chunks: list[Chunk],
    found: np.ndarray,
    skip: set[Path],
) -> set[Path]:
    """Map the chunks not in ``skip`` that hold every needed layer and some text not yet ``found``.

    Returns the chunk paths found, read or not.
    """
    paths = chunk_paths(folder)
    for path in paths:
        if path in skip:
            continue
        # Every header is read even once all texts are found, so a stale chunk is reported.
        chunk = read_chunk(path, key_text, queries[found[:, 0] < 0])
        if chunk is not None and set(layers) <= set(chunk.layers):
            _add_rows(chunks, chunk, queries, found)
    return set(paths)


def _add_rows(chunks: list[Chunk], chunk: Chunk, queries: np.ndarray, found: np.ndarray) -> None:
    missing = np.flatnonzero(found[:, 0] < 0)
    rows = chunk.find(queries[missing])
    hit = rows >= 0
    if hit.any():
        found[missing[hit], 0] = len(chunks)
        found[missing[hit], 1] = rows[hit]
        chunks.append(chunk)


def _positions(texts: Sequence[str], unique: list[str]) -> np.ndarray:
    """Which unique text each of ``texts`` is (the identity when they are unique, as a data module's are)."""
    if len(unique) == len(texts):
        return np.arange(len(texts))
    number = {text: i for i, text in enumerate(unique)}
    return np.array([number[text] for text in texts], dtype=np.int64)


def _encode_in_chunks(
    backbone: Backbone,
    texts: list[str],
    layers: list[int],
    device,
    show_progress_bar: bool,
    target: tuple[Path, str] | None,
    key_text: str,
    written: set[Path],
) -> Iterator[Chunk]:
    """Encode ``texts`` ``CHUNK_TEXTS`` at a time, writing each chunk to ``target`` (folder, name prefix) as
    it is done; None keeps them in memory only.

    A chunk on disk is complete (written to a temporary name, then renamed), so a build killed
    midway loses only the chunk it was encoding: the rerun finds the others and encodes the rest.
    After a failed write (a full disk) the remaining chunks stay in memory only, with one warning.
    """
    texts = sorted(texts, key=len, reverse=True)  # each chunk holds texts of similar length: little padding
    starts = range(0, len(texts), CHUNK_TEXTS)
    for number, start in enumerate(starts):
        description = f"caching features ({number + 1}/{len(starts)})"
        chunk = _encode(backbone, texts[start : start + CHUNK_TEXTS], layers, device, description, show_progress_bar)
        if target is not None and not write_or_warn(target[0], f"{target[1]}-{number:05d}", chunk, key_text, written):
            target = None
        yield chunk


def _encode(
    backbone: Backbone, texts: list[str], layers: list[int], device, description: str, show_progress_bar: bool
) -> Chunk:
    # Move the model *outside* inference mode: .to(cuda) inside it would turn the backbone's
    # parameters and buffers into inference tensors, which DDP's buffer broadcast then refuses
    # ("Inplace update to inference tensor outside InferenceMode").
    model = backbone.model.to(device).eval()

    def encode_batch(batch: list[str]) -> dict[int, list[Tensor]]:
        features = backbone.tokenizer(
            batch, padding=True, truncation=True, max_length=backbone.max_length, return_tensors="pt"
        ).to(device)
        outputs = model(**features, output_hidden_states=layers != [LAST])
        lengths = features["attention_mask"].sum(dim=1).tolist()
        states = {i: outputs.last_hidden_state if i == LAST else outputs.hidden_states[i] for i in layers}
        return {
            i: [row[:n] for row, n in zip(s.to(torch.float16).cpu(), lengths, strict=True)] for i, s in states.items()
        }

    with torch.inference_mode():
        pieces = encode_in_length_order(texts, encode_batch, ENCODE_BATCH_SIZE, description, show_progress_bar)
    offsets = torch.zeros(len(texts) + 1, dtype=torch.int64)
    offsets[1:] = torch.tensor([len(piece) for piece in pieces[layers[0]]]).cumsum(0)
    return Chunk(texts=texts, layers={i: torch.cat(pieces[i]) for i in layers}, offsets=offsets)
