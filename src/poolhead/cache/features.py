"""FeatureCache: a frozen backbone's token embeddings per unique sentence, computed once, reused by epochs and runs."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from poolhead.backbone import Backbone
from poolhead.cache.store import Chunk, chunk_paths, read_chunk, write_chunk
from poolhead.encoder import encode_in_length_order

#: layer key for ``last_hidden_state`` (poolers that read one layer); other keys index ``hidden_states``.
LAST = -1
FORMAT_VERSION = 1
ENCODE_BATCH_SIZE = 64


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


@dataclass
class CacheStats:
    sentences: int = 0
    reused: int = 0
    encoded_here: int = 0
    seconds: float = 0.0
    bytes: int = 0

    @property
    def hit_rate(self) -> float:
        return self.reused / self.sentences if self.sentences else 0.0


@dataclass
class FeatureCache:
    """Ragged float16 features of ``texts`` for ``layers``, looked up by position in ``texts``."""

    layers: list[int]
    num_hidden_states: int
    flat: dict[int, Tensor]  # layer -> (total_tokens + 1, H); the last row is zeros
    offsets: Tensor  # (N + 1,)
    stats: CacheStats = field(default_factory=CacheStats)

    def lookup(self, sentence_ids: Tensor, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, list | None]:
        """Right-padded (B, T, H) float32 token embeddings, (B, T) mask and, for layer poolers, hidden states."""
        ids = sentence_ids.cpu()
        starts = self.offsets[ids]
        lengths = self.offsets[ids + 1] - starts
        positions = torch.arange(int(lengths.max()))
        mask = positions[None, :] < lengths[:, None]
        # Padding reads the zero row kept after the last token, so no multiply by the mask is needed.
        index = torch.where(mask, starts[:, None] + positions[None, :], self.offsets[-1])
        # Gather and move in float16 (half the bytes to copy), widen on the device.
        padded = {layer: t[index].to(device, non_blocking=True).float() for layer, t in self.flat.items()}
        mask = mask.to(device)
        if self.layers == [LAST]:
            return padded[LAST], mask, None
        hidden_states = [padded.get(i) for i in range(self.num_hidden_states)]
        return padded[self.layers[-1]], mask, hidden_states


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
    wanted = set(unique)
    index: dict[str, tuple[Chunk, int]] = {}
    read = _index_chunks(folder, key_text, layers, wanted, index, skip=set())
    missing = [t for t in unique if t not in index]
    # Every process must split the same list: let all of them read the folder before any writes to it.
    barrier()
    share = missing[rank::world_size]
    if share:
        chunk = _encode(backbone, share, layers, device, show_progress_bar and rank == 0)
        read.add(write_chunk(folder, f"{uuid.uuid4().hex[:12]}-rank{rank}", chunk, key_text))
        _add_rows(index, chunk, wanted)
    barrier()
    if missing:
        _index_chunks(folder, key_text, layers, wanted, index, skip=read)  # the other processes' shares
    not_found = [t for t in unique if t not in index]
    if not_found:
        raise RuntimeError(
            f"feature cache at {folder} lacks {len(not_found)} sentences after encoding (e.g. {not_found[0]!r}); "
            f"under multi-node DDP the cache_dir must be on a filesystem shared by all nodes"
        )
    cache = _assemble(index, list(texts), layers, backbone.num_hidden_states)
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
    wanted: set[str],
    index: dict[str, tuple[Chunk, int]],
    skip: set[Path],
) -> set[Path]:
    """Add text -> (chunk, row) to ``index`` from the chunks not in ``skip`` that hold every needed layer.

    Returns the chunk paths found, read or not.
    """
    paths = chunk_paths(folder)
    for path in paths:
        if path in skip:
            continue
        chunk = read_chunk(path, key_text, wanted)
        if chunk is not None and set(layers) <= set(chunk.layers):
            _add_rows(index, chunk, wanted)
    return set(paths)


def _add_rows(index: dict[str, tuple[Chunk, int]], chunk: Chunk, wanted: set[str]) -> None:
    for row, text in enumerate(chunk.texts):
        if text in wanted:
            index.setdefault(text, (chunk, row))


def _encode(backbone: Backbone, texts: list[str], layers: list[int], device, show_progress_bar: bool) -> Chunk:
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
        pieces = encode_in_length_order(texts, encode_batch, ENCODE_BATCH_SIZE, "caching features", show_progress_bar)
    offsets = torch.zeros(len(texts) + 1, dtype=torch.int64)
    offsets[1:] = torch.tensor([len(piece) for piece in pieces[layers[0]]]).cumsum(0)
    return Chunk(texts=texts, layers={i: torch.cat(pieces[i]) for i in layers}, offsets=offsets)


def _assemble(
    index: dict[str, tuple[Chunk, int]], texts: list[str], layers: list[int], num_hidden_states: int
) -> FeatureCache:
    spans = []
    for text in texts:
        chunk, row = index[text]
        spans.append((chunk, int(chunk.offsets[row]), int(chunk.offsets[row + 1])))
    lengths = torch.tensor([end - start for _, start, end in spans])
    offsets = torch.zeros(len(texts) + 1, dtype=torch.int64)
    offsets[1:] = lengths.cumsum(0)
    flat = {}
    for layer in layers:
        pieces = [chunk.layers[layer][start:end] for chunk, start, end in spans]
        flat[layer] = torch.cat([*pieces, pieces[0].new_zeros(1, pieces[0].shape[1])])  # the zero row padding reads
    return FeatureCache(layers=layers, num_hidden_states=num_hidden_states, flat=flat, offsets=offsets)
