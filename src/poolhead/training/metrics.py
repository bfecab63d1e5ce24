"""Whole-split pair metrics that stay exact under DDP."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional import pearson_corrcoef, spearman_corrcoef
from torchmetrics.functional.classification import binary_f1_score, multiclass_accuracy, multiclass_f1_score

from poolhead.errors import UserValueError


class PairMetrics(Metric):
    """Spearman/Pearson (scores), accuracy/F1 (labels) or accuracy (tuples: the positive beats every hard
    negative) over every pair of a split, each counted once.

    Under DDP, Lightning's DistributedSampler repeats a few pairs so that every process
    gets the same number; plain torchmetrics would count them twice. This metric gathers
    ``pair_ids`` with the predictions and drops repeats before computing, so the figure is
    the one a single process would report on the whole split.

    Args:
        kind: ``"score"`` (preds are cosine similarities, targets in [0, 1]), ``"label"``
            (preds are predicted classes, targets integer labels) or ``"positive"`` (preds are 1
            where the anchor is closer to its positive than to each of its negatives, targets 1).
        num_labels: number of classes for label data.
    """

    full_state_update = False

    def __init__(self, kind: str, num_labels: int = 2) -> None:
        super().__init__()
        if kind not in ("score", "label", "positive"):
            raise UserValueError(f"kind must be 'score', 'label' or 'positive', got {kind!r}")
        self.kind = kind
        self.num_labels = num_labels
        self.add_state("pair_ids", default=[], dist_reduce_fx="cat")
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, preds: Tensor, targets: Tensor, pair_ids: Tensor) -> None:
        self.pair_ids.append(pair_ids.long())
        self.preds.append(preds.float())
        self.targets.append(targets.float())

    def compute(self) -> dict[str, Tensor]:
        pair_ids, preds, targets = (_cat(x) for x in (self.pair_ids, self.preds, self.targets))
        keep = _first_occurrences(pair_ids)
        preds, targets = preds[keep], targets[keep]
        if self.kind == "score":
            return {"spearman": spearman_corrcoef(preds, targets), "pearson": pearson_corrcoef(preds, targets)}
        preds, targets = preds.long(), targets.long()
        if self.kind == "positive":
            return {"accuracy": (preds == targets).float().mean()}
        if self.num_labels == 2:
            f1 = binary_f1_score(preds, targets)
        else:
            f1 = multiclass_f1_score(preds, targets, num_classes=self.num_labels, average="macro")
        accuracy = multiclass_accuracy(preds, targets, num_classes=self.num_labels, average="micro")
        return {"accuracy": accuracy, "f1": f1}


def _cat(values: Tensor | list[Tensor]) -> Tensor:
    return torch.cat(values) if isinstance(values, list) else values


def _first_occurrences(ids: Tensor) -> Tensor:
    """Indices of the first occurrence of each distinct id."""
    order = torch.argsort(ids, stable=True)
    sorted_ids = ids[order]
    first = torch.ones_like(sorted_ids, dtype=torch.bool)
    first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    return order[first]
