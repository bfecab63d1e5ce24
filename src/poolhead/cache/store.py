"""On-disk chunks of ragged hidden states: safetensors files written atomically and verified on read.

A chunk holds, for a list of texts, the token embeddings of some layers without padding:
``layer_<i>`` is (total_tokens, H) float16 and ``offsets`` (N + 1) marks where each text's
tokens start. The safetensors metadata carries the texts, the cache key and a SHA-256 of
every tensor, so a truncated or altered file is detected and rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import Tensor

log = logging.getLogger(__name__)

CHUNK_SUFFIX = ".safetensors"


@dataclass
class Chunk:
    texts: list[str]
    layers: dict[int, Tensor]  # absolute layer index -> (total_tokens, H) float16
    offsets: Tensor  # (N + 1,) int64


def tensor_digest(tensor: Tensor) -> str:
    return hashlib.sha256(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


def write_chunk(folder: Path, name: str, chunk: Chunk, key: str) -> Path:
    """Write to a temporary file in the same folder, then rename: a crash never leaves a valid-looking chunk."""
    tensors = {f"layer_{i}": t.contiguous() for i, t in chunk.layers.items()}
    tensors["offsets"] = chunk.offsets.contiguous()
    metadata = {
        "key": key,
        "texts": json.dumps(chunk.texts),
        "digests": json.dumps({k: tensor_digest(v) for k, v in tensors.items()}),
    }
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{name}{CHUNK_SUFFIX}"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return final


def read_chunk(path: Path, key: str, wanted: Container[str] | None = None) -> Chunk | None:
    """The chunk at ``path``, or None when it is stale or corrupt (with a warning) or holds none of ``wanted``.

    The texts come from the header, so a chunk of other texts (another data set encoded with the
    same backbone) is skipped without reading its tensors.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("key") != key:
            log.warning("feature cache: %s belongs to another backbone/tokenizer setting; ignoring it", path.name)
            return None
        texts = json.loads(metadata["texts"])
        if wanted is not None and not any(text in wanted for text in texts):
            return None
        tensors = load_file(str(path))
        digests = json.loads(metadata["digests"])
        if set(digests) != set(tensors) or any(tensor_digest(tensors[k]) != d for k, d in digests.items()):
            raise ValueError("checksum mismatch")
        offsets = tensors.pop("offsets")
        if offsets.numel() != len(texts) + 1:
            raise ValueError("offsets do not match the texts")
        layers = {int(k.removeprefix("layer_")): v for k, v in tensors.items()}
        return Chunk(texts=texts, layers=layers, offsets=offsets)
    except (SafetensorError, OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        log.warning("feature cache: %s is corrupt (%s); removing it, it will be rebuilt", path.name, error)
        path.unlink(missing_ok=True)
        return None


def chunk_paths(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{CHUNK_SUFFIX}")) if folder.is_dir() else []
