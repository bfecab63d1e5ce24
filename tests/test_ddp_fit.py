"""A real Lightning DDP fit on CPU: two processes (gloo) train the tiny model with in-batch negatives.

The in-batch negatives loss must score every process's pairs as candidates, and validation metrics
must cover the whole validation set once, as a single process would report them.

Run as a script, this file is the training job itself: Lightning's ``ddp`` strategy re-executes it
once per extra process (``python tests/test_ddp_fit.py TINY_MODEL DATA_DIR OUT_DIR``).
"""

from __future__ import annotations

import json
import os
import sys

from ddp_job import launch_ddp_job

WORLD_SIZE = 2
TRAIN_PAIRS = 44  # 22 per process: batches of 8, 8 and 6, so the last global batch is smaller
EVAL_PAIRS = 37  # odd: DistributedSampler repeats one pair to give both processes 19
BATCH_SIZE = 8
TIMEOUT_S = 240


def build(tiny_model: str, data_dir: str):
    from poolhead.data import SentencePairDataModule
    from poolhead.training.module import PoolingModule

    model = PoolingModule(
        tiny_model,
        pooler="attention",
        pooler_kwargs={"num_heads": 2},
        loss="in_batch_negatives",
        loss_kwargs={"min_score": 0.4},
        lr=0.01,
    )
    data = SentencePairDataModule(
        os.path.join(data_dir, "stsb"),
        tokenizer=tiny_model,
        batch_size=BATCH_SIZE,
        limit_train_pairs=TRAIN_PAIRS,
        limit_eval_pairs=EVAL_PAIRS,
        seed=0,  # the job's and the single-process check's subsets alike, whatever seed_everything says
    )
    return model, data


def run_ddp_job(tiny_model: str, data_dir: str, out_dir: str) -> None:
    import lightning as L
    import torch
    from quiet_fit import quiet_trainer

    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)

    class Recorder(L.Callback):
        """What each process saw: its batch sizes, the loss's candidate counts, the validation pair ids."""

        def __init__(self) -> None:
            self.local_batch_sizes, self.num_candidates, self.validation = [], [], {}

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.local_batch_sizes.append(len(batch["labels"]))
            self.num_candidates.append(pl_module.loss.last_num_candidates)

        def on_validation_epoch_end(self, trainer, pl_module) -> None:
            # Runs before the module's hook, while the metric still holds this epoch's pairs.
            local_ids = torch.cat(pl_module.val_metrics.pair_ids)
            every_process = trainer.strategy.all_gather(local_ids)
            self.validation = {
                "local": len(local_ids),
                "all": every_process.numel(),
                "unique": every_process.unique().numel(),
            }

    recorder = Recorder()
    trainer = quiet_trainer(
        out_dir, devices=WORLD_SIZE, strategy="ddp", max_epochs=1, num_sanity_val_steps=0, callbacks=[recorder]
    )
    model, data = build(tiny_model, data_dir)
    trainer.fit(model, data)
    trainer.save_checkpoint(os.path.join(out_dir, "ddp.ckpt"))
    result = {
        "world_size": trainer.world_size,
        "local_batch_sizes": recorder.local_batch_sizes,
        "num_candidates": recorder.num_candidates,
        "validation": recorder.validation,
        "val_spearman": float(trainer.callback_metrics["val/spearman"]),
        "train_loss": float(trainer.callback_metrics["train/loss"]),
    }
    with open(os.path.join(out_dir, f"rank{trainer.global_rank}.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle)


def test_ddp_fit_gathers_negatives_and_validates_on_the_whole_split(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    import pytest
    from quiet_fit import quiet_trainer

    cache = {"POOLHEAD_CACHE_DIR": str(tmp_path / "feature-cache")}
    args = [tiny_model_dir, str(data_dir), str(tmp_path)]
    ranks = launch_ddp_job(__file__, args, tmp_path, WORLD_SIZE, TIMEOUT_S, env=cache)

    assert [r["world_size"] for r in ranks] == [WORLD_SIZE] * WORLD_SIZE
    # Each step, the loss scored the b's of both processes' batches: the global batch, 16, 16, then 6 + 6.
    global_batches = [sum(sizes) for sizes in zip(*(r["local_batch_sizes"] for r in ranks), strict=False)]
    assert global_batches == [16, 16, 12]
    for rank in ranks:
        assert rank["num_candidates"] == global_batches
    # Validation: 19 pairs per process, one of them a repeat, counted once.
    for rank in ranks:
        assert rank["validation"] == {"local": 19, "all": 38, "unique": EVAL_PAIRS}
    assert ranks[0]["val_spearman"] == ranks[1]["val_spearman"]

    # One process validating the saved model on the same 37 pairs reports exactly the DDP figure.
    from poolhead.training.module import PoolingModule

    monkeypatch.setenv("POOLHEAD_CACHE_DIR", cache["POOLHEAD_CACHE_DIR"])
    model = PoolingModule.load_from_checkpoint(tmp_path / "ddp.ckpt")
    _, data = build(tiny_model_dir, str(data_dir))
    trainer = quiet_trainer(tmp_path)
    single = trainer.validate(model, data, verbose=False)[0]["val/spearman"]
    assert single == pytest.approx(ranks[0]["val_spearman"], abs=1e-4)


if __name__ == "__main__":
    run_ddp_job(*sys.argv[1:4])
