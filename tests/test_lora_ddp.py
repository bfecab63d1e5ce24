"""LoRA under Lightning DDP (two gloo processes on CPU) with bf16-mixed precision and gradient
checkpointing: both processes end with the same adapters, the adapters moved, and the checkpoint
holds adapters and head only.

Run as a script, this file is the training job: Lightning's ``ddp`` strategy re-executes it once
per extra process (``python tests/test_lora_ddp.py TINY_MODEL DATA_DIR OUT_DIR``).
"""

from __future__ import annotations

import json
import os
import sys

from ddp_job import launch_ddp_job

WORLD_SIZE = 2
TIMEOUT_S = 240
LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query", "value"]}


def run_ddp_job(tiny_model: str, data_dir: str, out_dir: str) -> None:
    import lightning as L
    import torch
    from quiet_fit import quiet_trainer

    from poolhead import PoolingModule, SentencePairDataModule
    from poolhead.training.lora import is_adapter_key

    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    model = PoolingModule(
        tiny_model,
        pooler="attention",
        pooler_kwargs={"num_heads": 2},
        max_length=32,
        lr=1e-2,
        freeze_backbone=False,
        backbone_lr=5e-2,
        lora=LORA,
        gradient_checkpointing=True,
    )
    before = {k: v.detach().float().clone() for k, v in model.state_dict().items() if is_adapter_key(k)}
    data = SentencePairDataModule(
        os.path.join(data_dir, "stsb"), tokenizer=tiny_model, max_length=32, batch_size=8, limit_train_pairs=48
    )
    trainer = quiet_trainer(
        out_dir, devices=WORLD_SIZE, strategy="ddp", precision="bf16-mixed", max_epochs=1, limit_val_batches=0
    )
    trainer.fit(model, data)
    trainer.save_checkpoint(os.path.join(out_dir, "lora.ckpt"))
    after = {k: v.detach().float() for k, v in model.state_dict().items() if is_adapter_key(k)}
    result = {
        "world_size": trainer.world_size,
        "adapter_sums": {k: float(v.double().sum()) for k, v in after.items()},
        "moved": max(float((after[k] - before[k]).abs().max()) for k in after),
        "loss": float(trainer.callback_metrics["train/loss"]),
    }
    with open(os.path.join(out_dir, f"rank{trainer.global_rank}.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle)


def test_lora_ddp_bf16_with_gradient_checkpointing(tiny_model_dir, data_dir, tmp_path):
    import math

    import torch

    cache = {"POOLHEAD_CACHE_DIR": str(tmp_path / "feature-cache")}
    args = [tiny_model_dir, str(data_dir), str(tmp_path)]
    ranks = launch_ddp_job(__file__, args, tmp_path, WORLD_SIZE, TIMEOUT_S, env=cache)

    assert [r["world_size"] for r in ranks] == [WORLD_SIZE] * WORLD_SIZE
    assert ranks[0]["adapter_sums"] and ranks[0]["adapter_sums"] == ranks[1]["adapter_sums"]  # DDP kept them in step
    assert ranks[0]["moved"] > 0 and math.isfinite(ranks[0]["loss"])
    state = torch.load(tmp_path / "lora.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert any("lora_" in k for k in state)
    backbone_weights = [k for k in state if k.startswith("backbone.") and "lora_" not in k]
    assert not backbone_weights, f"the checkpoint holds frozen backbone weights: {backbone_weights[:3]}"


if __name__ == "__main__":
    run_ddp_job(*sys.argv[1:4])
