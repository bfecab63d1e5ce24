"""On-disk chunks of ragged hidden states: safetensors files written atomically, read through memory maps.

A chunk holds, for a list of texts, the token embeddings of some layers without padding:
``layer_<i>`` is (total_tokens, H) float16 and ``offsets`` (N + 1) marks where each text's
tokens start. Texts are not stored: ``index_hashes`` (N, 2) int64 holds a 128-bit BLAKE2b hash
of each text, sorted by its first word, and ``index_rows`` (N,) the row each hash belongs to, so
finding a data set's texts is a binary search over a memory-mapped array, with no list of texts
to parse.

Nothing is loaded when a chunk is read: its tensors are views of one copy-on-write memory map of
the file, and a lookup copies only its batch's rows, with positional reads (``pread``) from the
page cache, which the processes of one machine share. Reads, not the map, because a touched page
of a map stays in the process's resident memory, and recent Linux file systems (large folios)
map up to megabytes around it: lookups spread over a 64 MiB map left all of it resident.

The safetensors metadata carries the cache key and a SHA-256 of every
tensor. Hashing gigabytes on every run would defeat the memory map, so a chunk's layers are
verified once (by the process that writes it, or the first that reads it after it changed) and a
small ``<chunk>.verified`` stamp records the file's size, inode and modification time; a file
that changed since is verified again, and one that fails is removed and rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file
from torch import Tensor

from poolhead.errors import UserValueError

log = logging.getLogger(__name__)

CHUNK_SUFFIX = ".safetensors"
STAMP_SUFFIX = ".verified"
INDEX_TENSORS = ("offsets", "index_hashes", "index_rows")
NUMPY_DTYPES = {"F16": np.float16, "BF16": np.uint16, "F32": np.float32, "I64": np.int64}
READ_BLOCK = 1 << 24


@dataclass
class Chunk:
    """Features of some texts. Written from ``texts``; read back from disk with ``texts`` None."""

    texts: list[str] | None
    layers: dict[int, Tensor]  # absolute layer index -> (total_tokens, H) float16
    offsets: Tensor  # (N + 1,) int64
    hashes: np.ndarray | None = None  # (N, 2) int64, sorted by the first column
    rows: np.ndarray | None = None  # (N,) int64: the row of each hash
    file: MappedFile | None = field(default=None, repr=False)  # the file, when read from disk

    def __post_init__(self) -> None:
        if self.hashes is None:
            self.hashes, self.rows = text_index(self.texts or [])

    def find(self, queries: np.ndarray) -> np.ndarray:
        """The row of each query hash (Q, 2) in this chunk, or -1."""
        return find_rows(self.hashes, self.rows, queries)


def text_hashes(texts: list[str]) -> np.ndarray:
    """(N, 2) int64: a 128-bit BLAKE2b hash of each text (a collision among 10^9 texts has odds ~10^-21)."""
    digests = b"".join(hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest() for text in texts)
    return np.frombuffer(digests, dtype="<i8").reshape(-1, 2).copy()


def text_index(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    hashes = text_hashes(texts)
    rows = np.argsort(hashes[:, 0], kind="stable")
    return hashes[rows], rows.astype(np.int64)


def find_rows(hashes: np.ndarray, rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
    found = np.full(len(queries), -1, dtype=np.int64)
    if not len(hashes) or not len(queries):
        return found
    where = np.searchsorted(hashes[:, 0], queries[:, 0]).clip(max=len(hashes) - 1)
    hit = (hashes[where, 0] == queries[:, 0]) & (hashes[where, 1] == queries[:, 1])
    found[hit] = rows[where[hit]]
    return found


def tensor_digest(tensor: Tensor) -> str:
    return hashlib.sha256(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


def write_chunk(folder: Path, name: str, chunk: Chunk, key: str) -> Path:
    """Write to a temporary file in the same folder, then rename: a crash never leaves a valid-looking chunk."""
    tensors = {f"layer_{i}": t.contiguous() for i, t in chunk.layers.items()}
    tensors["offsets"] = chunk.offsets.contiguous()
    tensors["index_hashes"] = torch.from_numpy(chunk.hashes)
    tensors["index_rows"] = torch.from_numpy(chunk.rows)
    metadata = {"key": key, "digests": json.dumps({k: tensor_digest(v) for k, v in tensors.items()})}
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
    write_stamp(final)  # this process computed the digests from the tensors it wrote
    return final


def read_chunk(path: Path, key: str, wanted: np.ndarray | None = None) -> Chunk | None:
    """The chunk at ``path`` with its layers memory-mapped, or None when it is stale or corrupt (with a
    warning) or holds none of the ``wanted`` text hashes (Q, 2).

    Only the header and the small index tensors are read to decide; a chunk of other texts
    (another data set encoded with the same backbone) is skipped without mapping its layers.
    """
    try:
        header, metadata = read_header(path)
        if metadata.get("key") != key:
            log.warning("feature cache: %s belongs to another backbone/tokenizer setting; ignoring it", path.name)
            return None
        digests = json.loads(metadata["digests"])
        if set(digests) != {k for k in header if k != "__metadata__"} or not set(INDEX_TENSORS) <= set(digests):
            raise UserValueError("the tensors do not match the recorded checksums")
        verify(path, header, digests, INDEX_TENSORS)
        index = map_tensors(map_file(path), header, INDEX_TENSORS)
        hashes, rows = index["index_hashes"].numpy(), index["index_rows"].numpy()
        if wanted is not None and not (find_rows(hashes, rows, wanted) >= 0).any():
            return None
        if not stamp_matches(path):
            verify(path, header, digests, [k for k in digests if k not in INDEX_TENSORS])
            write_stamp(path)
        mapped = load_file(str(path))
        tensors = dict(mapped.tensors)
        offsets = tensors.pop("offsets")
        if offsets.numel() != len(hashes) + 1 or len(rows) != len(hashes):
            raise ValueError("offsets do not match the texts")
        layers = {int(k.removeprefix("layer_")): v for k, v in tensors.items() if k.startswith("layer_")}
        return Chunk(texts=None, layers=layers, offsets=offsets, hashes=hashes, rows=rows, file=mapped)
    except (SafetensorError, OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        log.warning("feature cache: %s is corrupt (%s); removing it, it will be rebuilt", path.name, error)
        path.unlink(missing_ok=True)
        stamp_path(path).unlink(missing_ok=True)
        return None


@dataclass
class MappedFile:
    """A chunk file mapped once, copy-on-write (nothing writes back to it); its tensors are views of the
    map. ``read_rows`` copies rows of a layer into a buffer by positional reads of the same file."""

    tensors: dict[str, Tensor]
    mapping: mmap.mmap
    file: BinaryIO
    starts: dict[str, int]  # tensor name -> its first byte in the file

    def read_rows(self, name: str, first_row: int, out: Tensor) -> None:
        """Rows ``first_row ...`` of tensor ``name`` into the contiguous ``out`` (as many rows as it holds)."""
        tensor = self.tensors[name]
        if not CAN_READ:  # no pread here (Windows): copy from the map
            out.copy_(tensor[first_row : first_row + len(out)])
            return
        row_bytes = tensor.stride(0) * tensor.element_size()  # rows are contiguous
        buffer = out.view(torch.uint8).numpy()  # bytes, whatever the dtype (numpy has no bfloat16)
        got = os.preadv(self.file.fileno(), [buffer], self.starts[name] + first_row * row_bytes)
        if got != buffer.nbytes:
            raise RuntimeError(f"feature cache: {self.file.name} ended early reading {name}; delete it to rebuild it")


CAN_READ = hasattr(os, "preadv")


def load_file(path: str) -> MappedFile:
    """Every tensor of a chunk, as views of one memory map of the file."""
    header, _ = read_header(Path(path))
    names = [k for k in header if k != "__metadata__"]
    file = open(path, "rb")  # kept open for the reads, as long as the chunk is in use
    mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
    starts = {name: header[name]["data_offsets"][0] for name in names}
    return MappedFile(map_tensors(mapping, header, names), mapping, file, starts)


def map_file(path: Path) -> mmap.mmap:
    with open(path, "rb") as file:
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)


def read_header(path: Path) -> tuple[dict, dict]:
    """The safetensors header (tensor name -> dtype, shape, absolute byte range) and its metadata."""
    with safe_open(str(path), framework="pt") as handle:  # validates the header against the file's size
        metadata = handle.metadata() or {}
    with open(path, "rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    size = path.stat().st_size
    for name, info in header.items():
        if name != "__metadata__":
            start, end = info["data_offsets"]
            info["data_offsets"] = (8 + length + start, 8 + length + end)
            if info["dtype"] not in NUMPY_DTYPES or 8 + length + end > size:
                raise UserValueError(f"tensor {name} is not readable ({info['dtype']}, ends past the file)")
    return header, metadata


def map_tensors(mapping: mmap.mmap, header: dict, names) -> dict[str, Tensor]:
    tensors = {}
    for name in names:
        info = header[name]
        start, end = info["data_offsets"]
        dtype = np.dtype(NUMPY_DTYPES[info["dtype"]])
        array = np.frombuffer(mapping, dtype=dtype, count=(end - start) // dtype.itemsize, offset=start)
        tensor = torch.from_numpy(array.reshape(tuple(info["shape"])))
        tensors[name] = tensor.view(torch.bfloat16) if info["dtype"] == "BF16" else tensor
    return tensors


def verify(path: Path, header: dict, digests: dict[str, str], names) -> None:
    """Compare the SHA-256 of each tensor's bytes, read with plain reads: pages land in the page
    cache, not in this process's resident memory as a memory-mapped read would leave them."""
    with open(path, "rb") as file:
        for name in names:
            start, end = header[name]["data_offsets"]
            digest = hashlib.sha256()
            file.seek(start)
            left = end - start
            while left > 0:
                block = file.read(min(READ_BLOCK, left))
                if not block:
                    raise UserValueError(f"tensor {name} is truncated")
                digest.update(block)
                left -= len(block)
            if digest.hexdigest() != digests[name]:
                raise ValueError(f"checksum mismatch in {name}")


def stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def file_identity(path: Path) -> dict[str, int]:
    info = path.stat()
    return {"size": info.st_size, "inode": info.st_ino, "mtime_ns": info.st_mtime_ns}


def write_stamp(path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(file_identity(path), handle)
    os.replace(tmp, stamp_path(path))


def stamp_matches(path: Path) -> bool:
    try:
        return json.loads(stamp_path(path).read_text(encoding="utf-8")) == file_identity(path)
    except (OSError, ValueError):
        return False


def chunk_paths(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{CHUNK_SUFFIX}")) if folder.is_dir() else []
