"""The prediction writer of corpus encoding: one file per shard of (id, embedding), and a manifest.

A shard is written to a temporary name and renamed when complete, so a file that exists is a
finished shard: a rerun skips it. Only the shard being filled is held in memory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from poolhead.errors import UserValueError

MANIFEST = "manifest.json"
FORMATS = ("parquet", "safetensors")


def shard_file(out_dir: Path, shard: int, file_format: str) -> Path:
    return out_dir / f"shard-{shard:05d}.{file_format}"


def finished_shards(out_dir: Path, num_shards: int, file_format: str) -> list[int]:
    return [s for s in range(num_shards) if shard_file(out_dir, s, file_format).is_file()]


class EmbeddingShardWriter(BasePredictionWriter):
    """Collects each shard's embeddings as its batches arrive and writes the shard when it is full.

    Args:
        out_dir: the output folder.
        shard_rows: shard -> the rows it covers (``CorpusTexts.shard_rows``).
        shard_size: rows per shard (a row's shard is ``row // shard_size``).
        file_format: ``parquet`` (columns ``id``, ``row``, ``embedding``) or ``safetensors``
            (tensors ``embedding`` and ``row``; the ids in the metadata as JSON).
    """

    def __init__(self, out_dir: str | Path, shard_rows: Any, shard_size: int, file_format: str = "parquet") -> None:
        super().__init__(write_interval="batch")
        if file_format not in FORMATS:
            raise UserValueError(f"unknown output format {file_format!r}; choose one of {', '.join(FORMATS)}")
        self.out_dir = Path(out_dir)
        self.shard_rows = shard_rows
        self.shard_size = shard_size
        self.file_format = file_format
        self.buffers: dict[int, list[dict[str, Any]]] = {}
        self.written: list[int] = []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        shard = prediction["rows"][0] // self.shard_size
        parts = self.buffers.setdefault(shard, [])
        parts.append(prediction)
        if sum(len(part["rows"]) for part in parts) == len(self.shard_rows(shard)):
            self.write_shard(shard, self.buffers.pop(shard))

    def write_shard(self, shard: int, parts: list[dict[str, Any]]) -> Path:
        rows = np.concatenate([np.asarray(part["rows"], dtype=np.int64) for part in parts])
        ids = [value for part in parts for value in part["ids"]]
        embeddings = torch.cat([part["embeddings"] for part in parts]).numpy()
        order = np.argsort(rows, kind="stable")  # file order = corpus order, whatever the batches' order
        rows, embeddings, ids = rows[order], embeddings[order], [ids[i] for i in order]
        path = shard_file(self.out_dir, shard, self.file_format)
        partial = path.with_name(f".{path.name}.partial")
        if self.file_format == "parquet":
            write_parquet(partial, rows, ids, embeddings)
        else:
            write_safetensors(partial, rows, ids, embeddings)
        os.replace(partial, path)  # atomic: the shard exists complete or not at all
        self.written.append(shard)
        return path


def write_parquet(path: Path, rows: np.ndarray, ids: list[Any], embeddings: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dimension = embeddings.shape[1]
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1), type=pa.float32()), dimension)
    table = pa.table({"id": pa.array(ids), "row": pa.array(rows), "embedding": vectors})
    pq.write_table(table, path)


def write_safetensors(path: Path, rows: np.ndarray, ids: list[Any], embeddings: np.ndarray) -> None:
    from safetensors.numpy import save_file

    tensors = {"embedding": np.ascontiguousarray(embeddings, dtype=np.float32), "row": rows}
    save_file(tensors, str(path), metadata={"ids": json.dumps(ids)})


def read_shard(path: Path) -> tuple[list[Any], np.ndarray]:
    """The ids and (n, D) float32 embeddings of one shard file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        vectors = table.column("embedding").combine_chunks()
        embeddings = vectors.flatten().to_numpy().reshape(len(table), vectors.type.list_size)
        return table.column("id").to_pylist(), embeddings
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        return json.loads(handle.metadata()["ids"]), handle.get_tensor("embedding")


def read_embeddings(out_dir: str | Path) -> tuple[list[Any], np.ndarray]:
    """Every id and embedding ``poolhead predict`` wrote to ``out_dir``, in corpus order (loads them all)."""
    manifest = read_manifest(Path(out_dir))
    if manifest is None or not manifest.get("complete"):
        raise UserValueError(
            f"{out_dir} holds no complete corpus encoding (see its {MANIFEST}); run poolhead predict again"
        )
    parts = [read_shard(Path(out_dir) / entry["file"]) for entry in manifest["shards"]]
    ids = [value for part_ids, _ in parts for value in part_ids]
    return ids, np.concatenate([embeddings for _, embeddings in parts])


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> Path:
    path = out_dir / MANIFEST
    partial = out_dir / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
