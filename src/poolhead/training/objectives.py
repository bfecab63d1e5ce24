"""Objective: what one data set of a fit trains with (its loss and weight) and how it is validated.

A fit on one data set has one objective, logged as ``val/spearman``, ``train/loss``, ... A fit
on several (``data.datasets``) has one per data set, logged as ``val/NAME/spearman``, plus
``val/combined``: the mean of each data set's main metric, x 100 as all metrics are logged
(Spearman for scores, accuracy for labels and tuples), which checkpointing and early stopping can monitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from poolhead.errors import UserValueError
from poolhead.training.losses import build_loss, check_loss_matches_data
from poolhead.training.metrics import PairMetrics

#: the metric of each kind of data that ``val/combined`` averages
MAIN_METRIC = {"score": "spearman", "label": "accuracy", "positive": "accuracy"}
COMBINED = "combined"


@dataclass
class Objective:
    """One data set's loss, weight and metrics.

    Attributes:
        name: the data set's name in logged names; None for the only data set of a fit.
        kind: ``"score"``, ``"label"`` or ``"positive"``.
        loss: the loss module (registered on the LightningModule, so it trains and checkpoints).
        weight: this data set's losses are multiplied by it.
        num_negatives: hard negatives per pair.
        num_labels: classes, for label data.
    """

    name: str | None
    kind: str
    loss: nn.Module
    weight: float = 1.0
    num_negatives: int = 0
    num_labels: int = 2

    def logged(self, stage: str, metric: str) -> str:
        return f"{stage}/{self.name}/{metric}" if self.name else f"{stage}/{metric}"

    @property
    def has_metrics(self) -> bool:
        """(anchor, positive) pairs without negatives have nothing to rank against outside a batch."""
        return self.kind != "positive" or self.num_negatives > 0

    def new_metrics(self) -> PairMetrics:
        return PairMetrics(self.kind, self.num_labels)

    def compute_loss(self, a: Tensor, b: Tensor, labels: Tensor, negatives: list[Tensor]) -> Tensor:
        loss = self.loss(a, b, labels, negatives) if negatives else self.loss(a, b, labels)
        return loss * self.weight if self.weight != 1.0 else loss


def loss_key(name: str) -> str:
    """A data set's name as a module key (module names cannot hold dots)."""
    return name.replace(".", "_")


def build_dataset_losses(specs: dict[str, dict[str, Any]] | None, embedding_dim: int) -> nn.ModuleDict:
    """The losses of a mixture's data sets, from ``{key: {loss, loss_kwargs, num_labels}}``."""
    losses = nn.ModuleDict()
    for key, spec in (specs or {}).items():
        options = spec.get("loss_kwargs") or {}
        losses[key] = build_loss(spec["loss"], embedding_dim=embedding_dim, num_labels=spec["num_labels"], **options)
    return losses


def plan_objectives(module: Any, sources: list[Any], model_num_labels: int) -> list[Objective]:
    """One objective per data set of ``sources`` (``DatasetSource``s); registers new losses on ``module``.

    A data set without its own ``loss`` trains with the model's ``loss``. ``module`` needs
    ``loss``, ``dataset_losses`` (a ModuleDict), ``pooler.output_dim`` and ``hparams``.
    """
    objectives = []
    for source in sources:
        kind, loss, num_labels = source.kind, module.loss, model_num_labels
        if source.loss is not None:
            key = loss_key(source.name)
            if key not in module.dataset_losses:
                spec = {"loss": source.loss, "loss_kwargs": source.loss_kwargs, "num_labels": source.num_labels or 2}
                module.dataset_losses.update(build_dataset_losses({key: spec}, module.pooler.output_dim))
                # In the hyperparameters, so a checkpoint alone rebuilds these losses (and their weights).
                module.hparams["dataset_losses"] = {**(module.hparams.get("dataset_losses") or {}), key: spec}
            loss = module.dataset_losses[key]
            num_labels = getattr(loss, "num_labels", source.num_labels or 2)
        elif kind == "label" and (source.num_labels or 0) > model_num_labels:
            raise UserValueError(
                f"data has {source.num_labels} classes but the model was built with num_labels={model_num_labels}; "
                f"set --model.num_labels {source.num_labels}"
            )
        check_loss_matches_data(loss, kind, source.path)
        name = source.name if len(sources) > 1 else None
        objectives.append(Objective(name, kind, loss, source.weight, source.num_negatives, num_labels))
    return objectives


def combined_metric(objectives: list[Objective], values: list[dict[str, Tensor]]) -> Tensor | None:
    """Mean over data sets of their main metric on a 0-100 scale; None for fewer than two data sets."""
    mains = [
        metrics[MAIN_METRIC[objective.kind]] * 100
        for objective, metrics in zip(objectives, values, strict=True)
        if metrics and objective.name
    ]
    return sum(mains) / len(mains) if len(mains) > 1 else None
