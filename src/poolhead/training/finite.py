"""A non-finite number is never a result: NaN or infinite losses, weights and embeddings are refused.

A head whose weights are NaN still gives cosine similarities (all NaN), a Spearman (NaN) and a
table; a diverged fit still saves a "best" checkpoint. Each of those stops here with one sentence
naming where the number came from: the step of a fit, the tensor of a checkpoint or an export,
the model and the texts of an embedding. Lightning's ``EarlyStopping(check_finite=True)`` only
watches a monitored validation metric; :class:`StopOnNonFinite` stops the fit at the first
non-finite training loss or weight, before any checkpoint holds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from poolhead.errors import UserValueError

#: how many names (tensors, texts) an error lists before "and N more"
SHOWN = 3


def listed(names: Sequence[Any]) -> str:
    """``a, b, c and 4 more``: the first few of ``names``."""
    shown = ", ".join(repr(name) if isinstance(name, str) else str(name) for name in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def nonfinite_tensors(tensors: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity."""
    items = tensors.items() if isinstance(tensors, Mapping) else tensors
    return [
        name
        for name, value in items
        if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]


def check_finite_weights(tensors: Mapping[str, Any] | Iterable[tuple[str, Any]], where: str) -> None:
    """Refuse weights (a state dict, ``named_parameters()``) holding NaN or infinity; ``where`` names their source."""
    bad = nonfinite_tensors(tensors)
    if bad:
        raise UserValueError(
            f"{where} holds NaN or infinite weights ({listed(bad)}), so every embedding it gives is meaningless: "
            f"the training that wrote it diverged; use an earlier checkpoint, or train again with a lower --model.lr"
        )


def check_finite_embeddings(embeddings: Tensor, texts: Sequence[Any], where: str) -> None:
    """Refuse ``(N, D)`` embeddings with a NaN or infinity in any row; ``texts[i]`` names row ``i``."""
    finite = torch.isfinite(embeddings.reshape(len(embeddings), -1)).all(dim=-1)
    if bool(finite.all()):
        return
    rows = torch.nonzero(~finite).flatten().tolist()
    raise UserValueError(
        f"{where} gives NaN or infinite embeddings for {len(rows)} of {len(embeddings)} texts "
        f"({listed([texts[i] for i in rows])}): no score or file is made from them; check the model's "
        f"weights (a diverged training) or run it in float32"
    )


class StopOnNonFinite(Callback):
    """Stop a fit at the first non-finite training loss or trainable weight, and never save either.

    The check runs after each optimizer step (``on_train_batch_end``), before Lightning's
    ModelCheckpoint can write, so the last checkpoint on disk is the last finite one. A checkpoint
    about to be saved with non-finite weights (e.g. by a user's own callback) is refused too.
    """

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        step = trainer.global_step
        if isinstance(loss, Tensor) and not bool(torch.isfinite(loss).all()):
            raise UserValueError(
                f"training stopped at step {step}: the training loss is {loss.item()} (diverged); nothing "
                f"non-finite was saved, the last checkpoint is the last finite one: lower --model.lr "
                f"(it is {pl_module.hparams.get('lr')}) or --model.backbone_lr"
            )
        trained = [(name, p) for name, p in pl_module.named_parameters() if p.requires_grad]
        # One device sync per step for all weights; the names are looked up only when one is bad.
        if not trained or bool(torch.stack([torch.isfinite(p).all() for _, p in trained]).all()):
            return
        bad = nonfinite_tensors(trained)
        if bad:
            raise UserValueError(
                f"training stopped at step {step}: weights {listed(bad)} became NaN or infinite (diverged); "
                f"nothing non-finite was saved: lower --model.lr (it is {pl_module.hparams.get('lr')}) "
                f"or --model.backbone_lr"
            )

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        check_finite_weights(checkpoint.get("state_dict", {}), f"the checkpoint of step {trainer.global_step}")
