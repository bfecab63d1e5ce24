"""``encode_corpus``: a corpus to embedding shards on Lightning's ``Trainer.predict``.

Lightning runs the processes (``devices``, ``num_nodes``, ``strategy``: DDP on GPUs, gloo on
CPU); poolhead only decides which shards each process encodes. Process 0 reads what an
earlier run already wrote and broadcasts the list of shards still to do, so every process
works from the same plan even while others start writing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.connector import _PRECISION_INPUT_STR_ALIAS_CONVERSION
from torch.utils.data import DataLoader

from poolhead.corpus.model import CorpusEncoder, load_encoder_model, model_fingerprint
from poolhead.corpus.texts import CorpusTexts, ShardBatchSampler, load_table, rank_shards
from poolhead.corpus.writer import (
    EmbeddingShardWriter,
    finished_shards,
    read_manifest,
    shard_file,
    write_manifest,
)
from poolhead.errors import UserValueError

#: what a rerun compares with the manifest, in the user's words where the key is not an option's name
CHANGE_NAMES = {"model_sha256": "the model's weights or modules", "input_sha256": "the input's texts or ids"}
#: recorded for the reader, not compared: the same content under a new path is the same output
NAMES_ONLY = ("model", "source")


class CorpusDataModule(L.LightningDataModule):
    """The shards of ``corpus`` this process encodes, as batches of tokenized texts.

    ``made_from`` gives the content keys of the output (model fingerprint, input hash): computed
    once, by process 0, which compares them with what an earlier run wrote.
    """

    def __init__(
        self,
        corpus: CorpusTexts,
        out_dir: Path,
        settings: dict[str, Any],
        batch_size: int,
        collate: Any,
        num_workers: int = 0,
        made_from: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        super().__init__()
        self.corpus, self.out_dir, self.settings = corpus, out_dir, settings
        self.batch_size, self.collate, self.num_workers = batch_size, collate, num_workers
        self.made_from = made_from
        self.shards: list[int] = []

    def setup(self, stage: str) -> None:
        plan = self.plan() if self.trainer.is_global_zero else None
        error, pending, self.settings = self.trainer.strategy.broadcast(plan, src=0)
        if error:
            raise UserValueError(error)
        self.shards = rank_shards(pending, self.trainer.global_rank, self.trainer.world_size)

    def plan(self) -> tuple[str | None, list[int], dict[str, Any]]:
        """(an error, or None; the shards not written yet; the settings with their content keys), after checking
        that an earlier run in this folder encoded the same input with the same model and options."""
        settings = {**self.settings, **self.made_from()}
        manifest = read_manifest(self.out_dir)
        earlier = manifest.get("settings", {}) if manifest is not None else settings
        # manifests written before precision was recorded in Lightning's unified spelling say "32"
        earlier = {**earlier, "precision": unified_precision(earlier.get("precision"))}
        changed = [CHANGE_NAMES.get(k, k) for k in settings if k not in NAMES_ONLY and earlier.get(k) != settings[k]]
        if changed:
            return (
                f"{self.out_dir} holds an encoding made with other settings ({', '.join(sorted(changed))} differ); "
                f"give a new output folder, or delete this one to start over",
                [],
                settings,
            )
        done = set(finished_shards(self.out_dir, self.corpus.num_shards, settings["format"]))
        write_manifest(self.out_dir, {"settings": settings, "complete": False})
        return None, [s for s in range(self.corpus.num_shards) if s not in done], settings

    def predict_dataloader(self) -> DataLoader:
        sampler = ShardBatchSampler(self.corpus, self.shards, self.batch_size)
        return DataLoader(self.corpus, batch_sampler=sampler, collate_fn=self.collate, num_workers=self.num_workers)


def encode_corpus(
    model: str,
    source: str,
    out_dir: str | Path,
    *,
    column: str = "text",
    id_column: str | None = None,
    split: str = "train",
    batch_size: int = 32,
    shard_size: int = 100_000,
    file_format: str = "parquet",
    num_workers: int = 0,
    progress: bool = True,
    **trainer_options: Any,
) -> dict[str, Any]:
    """Embed every text of ``source[column]`` with ``model``; write shards and a manifest to ``out_dir``.

    Args:
        model: an export folder (loaded with ``poolhead.load``) or a ``.ckpt`` from ``poolhead fit``.
        source: a csv / tsv / jsonl / parquet file, a folder of such files, or a hub dataset (its id, or a
            folder laid out as its repository: README.md listing ``configs``).
        out_dir: the output folder; a rerun skips the shards already written, after checking that they were made
            from the same model weights and modules, the same texts and ids, and the same options (else it
            refuses, naming what changed).
        column: the column of texts; ``id_column`` the column of ids (default: row numbers from 0).
        split: the split of a hub dataset.
        batch_size: texts per forward pass.
        shard_size: rows per output file; the unit of resumption and of work per process.
        file_format: ``parquet`` or ``safetensors``.
        num_workers: DataLoader worker processes (tokenization runs there).
        progress: show Lightning's progress bar.
        trainer_options: Lightning ``Trainer`` options: ``accelerator``, ``devices``, ``num_nodes``,
            ``strategy``, ``precision``, ...

    Returns the manifest (``settings``, ``complete``, ``num_rows``, ``dimension``, ``shards``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = CorpusTexts(load_table(source, split), column, id_column, shard_size)
    encoder = CorpusEncoder(load_encoder_model(model), str(model))
    settings = {
        "model": str(model),
        "source": str(source),
        "split": split,
        "column": column,
        "id_column": id_column,
        "shard_size": shard_size,
        "format": file_format,
        "num_rows": len(corpus),
        # the options that change the vectors; the model's own (max length, normalize) are in its fingerprint
        "precision": unified_precision(trainer_options.get("precision")),
        "max_seq_length": encoder.model.max_seq_length,
    }

    def made_from() -> dict[str, str]:
        return {"model_sha256": model_fingerprint(encoder.model), "input_sha256": corpus.content_digest()}

    data = CorpusDataModule(corpus, out_dir, settings, batch_size, encoder.collate, num_workers, made_from)
    writer = EmbeddingShardWriter(out_dir, corpus.shard_rows, shard_size, file_format)
    trainer = L.Trainer(
        **{"logger": False, "enable_model_summary": False, "enable_progress_bar": progress, **trainer_options},
        callbacks=[writer],
        use_distributed_sampler=False,  # each process's shards are chosen by CorpusDataModule
        default_root_dir=str(out_dir),
    )
    with warnings.catch_warnings():
        # ShardBatchSampler returns every row of its shards (no drop_last): Lightning cannot tell and warns.
        warnings.filterwarnings("ignore", message=".*custom batch sampler.*")
        trainer.predict(encoder, datamodule=data, return_predictions=False)  # nothing kept in memory
    trainer.strategy.barrier("poolhead-predict-done")
    manifest = finish_manifest(out_dir, corpus, data.settings, encoder.embedding_dimension)
    if trainer.is_global_zero:
        write_manifest(out_dir, manifest)
    return manifest


def unified_precision(precision: Any) -> str:
    """Lightning's one spelling of ``precision`` ("32" and 32 are "32-true", "bf16" is "bf16-mixed"): the Trainer
    runs them alike, so a rerun that spells it the other way resumes. None is the Trainer's default."""
    if precision is None:
        return "32-true"
    return _PRECISION_INPUT_STR_ALIAS_CONVERSION.get(str(precision), str(precision))


def finish_manifest(out_dir: Path, corpus: CorpusTexts, settings: dict[str, Any], dimension: int) -> dict[str, Any]:
    done = set(finished_shards(out_dir, corpus.num_shards, settings["format"]))
    shards = [
        {"file": shard_file(out_dir, s, settings["format"]).name, "rows": [r.start, r.stop]}
        for s in range(corpus.num_shards)
        if s in done
        for r in [corpus.shard_rows(s)]
    ]
    complete = len(done) == corpus.num_shards
    return {
        "settings": settings,
        "complete": complete,
        "num_rows": len(corpus),
        "dimension": dimension,
        "shards": shards,
    }
