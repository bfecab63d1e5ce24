"""The optimiser and schedule of a PoolingModule: AdamW over head and (unless frozen) backbone, linear
warmup and decay per step."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from transformers import get_linear_schedule_with_warmup

from poolhead.errors import UserValueError


def configure_optimization(module: L.LightningModule, backbone_prefix: str) -> dict[str, Any]:
    """Lightning's ``configure_optimizers`` answer: head parameters at ``lr``, backbone ones at ``backbone_lr``."""
    hparams = module.hparams
    trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    head = [(n, p) for n, p in trainable if not n.startswith(backbone_prefix)]
    groups = decay_groups(head, hparams.lr, hparams.weight_decay)
    if not module.freeze_backbone:
        body = [(n, p) for n, p in trainable if n.startswith(backbone_prefix)]
        groups += decay_groups(body, hparams.backbone_lr, hparams.weight_decay)
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise UserValueError(
            f"nothing to train: pooler '{module.pooler.name}' has no parameters and the backbone is frozen; "
            f"choose a learnable head (attention, latent_attention, weighted_layer) or set freeze_backbone=false"
        )
    if not module.freeze_backbone and not module.trainer.gradient_clip_val:
        # A pair loss's large gradient norms make an unclipped fine-tune learn less than one clipped
        # at norm 1, which sentence-transformers' (Hugging Face's) Trainer does by default; the
        # fine-tuning recipes compared are in docs/results.md.
        rank_zero_warn(
            "fine-tuning the backbone without gradient clipping: pair losses give gradient norms of 50-150 "
            "and the fine-tune learns less; set trainer.gradient_clip_val=1.0 (--trainer.gradient_clip_val 1.0), "
            "as Hugging Face's Trainer and sentence-transformers do by default"
        )
    optimizer = torch.optim.AdamW(groups)
    total = max(int(module.trainer.estimated_stepping_batches), 1)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hparams.warmup_ratio * total), total)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def decay_groups(named: list[tuple[str, Tensor]], lr: float, weight_decay: float) -> list[dict[str, Any]]:
    # Decay matrices only: decaying biases, norms or layer logits pulls them to 0 for no benefit.
    decay = [p for _, p in named if p.ndim >= 2]
    no_decay = [p for _, p in named if p.ndim < 2]
    return [
        {"params": decay, "lr": lr, "weight_decay": weight_decay},
        {"params": no_decay, "lr": lr, "weight_decay": 0.0},
    ]
