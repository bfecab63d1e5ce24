"""Pair losses: ``loss(embeddings_a, embeddings_b, labels) -> scalar``, chosen by name with ``build_loss``.

Each loss says which targets it trains on in ``label_kind``: ``"score"`` (similarities in
[0, 1]), ``"label"`` (integer classes) or ``"any"``; ``check_loss_matches_data`` turns a
mismatch into an error before training starts.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributed.nn.functional import all_gather

from poolhead.errors import UserValueError

try:  # torch 2.13 deprecates torch.distributed.nn.functional.all_gather in favour of this one
    from torch.distributed._functional_collectives import all_gather_single
except ImportError:  # older torch
    all_gather_single = None


class PairLoss(nn.Module):
    """Base of poolhead's losses: ``forward(embeddings_a (B, D), embeddings_b (B, D), labels (B,)) -> scalar``."""

    name = ""
    label_kind = "any"

    def forward(self, embeddings_a: Tensor, embeddings_b: Tensor, labels: Tensor) -> Tensor:
        raise NotImplementedError


class CoSENTLoss(PairLoss):
    """CoSENT (Su, 2022): every pair with a higher score should get a higher cosine than every lower-scored pair.

    ``loss = log(1 + sum over (i, j) with label_i > label_j of exp(scale * (cos_j - cos_i)))``.
    Only the order of scores matters, which is what Spearman correlation measures.

    Args:
        scale: inverse temperature on the cosines.
    """

    name = "cosent"
    label_kind = "score"

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, embeddings_a: Tensor, embeddings_b: Tensor, labels: Tensor) -> Tensor:
        # fp32: exp(20 * cos) differences overflow half precision.
        scores = F.cosine_similarity(embeddings_a.float(), embeddings_b.float(), dim=-1) * self.scale
        labels = labels.float().view(-1)
        differences = scores[None, :] - scores[:, None]  # [i, j] = s_j - s_i
        ordered = labels[:, None] > labels[None, :]  # [i, j]: pair i should score above pair j
        terms = torch.cat([scores.new_zeros(1), differences[ordered]])
        return torch.logsumexp(terms, dim=0)


class CosineSimilarityLoss(PairLoss):
    """Mean squared error between the cosine of each pair and its score (SBERT's CosineSimilarityLoss)."""

    name = "cosine_mse"
    label_kind = "score"

    def forward(self, embeddings_a: Tensor, embeddings_b: Tensor, labels: Tensor) -> Tensor:
        cosines = F.cosine_similarity(embeddings_a.float(), embeddings_b.float(), dim=-1)
        return F.mse_loss(cosines, labels.float().view(-1))


class InBatchNegativesLoss(PairLoss):
    """In-batch negatives (MultipleNegativesRankingLoss / InfoNCE): each anchor must pick its own b.

    For anchor ``a_i`` the candidates are every ``b`` in the batch, every hard negative given
    with the batch (``negatives``: tuples (anchor, positive, negative_1..k)) and, under DDP with
    ``gather_across_processes``, those of every process's batch; the loss is the cross-entropy of
    ``scale * cos(a_i, candidate_j)`` against ``a_i``'s own ``b_i``: exactly sentence-transformers'
    ``MultipleNegativesRankingLoss`` (candidates: all positives, then all first negatives, ...).
    The gathered candidates keep their gradients, so each process's embeddings learn from every
    anchor. The mean runs over all processes' anchors, so after DDP averages gradients, training
    equals one process on the concatenated batch.

    Args:
        scale: inverse temperature (20 = temperature 0.05).
        symmetric: also make each ``b_i`` pick its own ``a_i`` among all a's, averaging both directions.
        gather_across_processes: use the other processes' b's as negatives (needs every process to
            call the loss at each step, as DDP does).
        min_score: for score data, only pairs with ``score >= min_score`` act as anchors (positives);
            None uses every pair. Label data: pairs with label 1 are the positives.
    """

    name = "in_batch_negatives"
    label_kind = "any"

    def __init__(
        self,
        scale: float = 20.0,
        symmetric: bool = False,
        gather_across_processes: bool = True,
        min_score: float | None = None,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.symmetric = symmetric
        self.gather_across_processes = gather_across_processes
        self.min_score = min_score
        #: how many candidate b's the last call scored per anchor (world_size * batch under DDP)
        self.last_num_candidates = 0
        self._checked_scores = False

    def positives(self, labels: Tensor) -> Tensor:
        """Which pairs are (anchor, positive): label 1, or score >= min_score."""
        labels = labels.view(-1)
        if not labels.is_floating_point():
            return labels == 1
        if self.min_score is None:
            self._warn_about_low_scores(labels)
            return torch.ones_like(labels, dtype=torch.bool)
        return labels >= self.min_score

    def _warn_about_low_scores(self, scores: Tensor) -> None:
        # Checked on the first batch only: the check costs a device sync.
        if self._checked_scores:
            return
        self._checked_scores = True
        if bool((scores < 1).any()):
            warnings.warn(
                "in_batch_negatives without min_score treats every pair as a positive, also pairs scored as low "
                f"as {scores.min().item():.2f}; set min_score (e.g. 0.8) so that only similar pairs act as positives",
                stacklevel=3,
            )

    def forward(
        self, embeddings_a: Tensor, embeddings_b: Tensor, labels: Tensor, negatives: list[Tensor] | None = None
    ) -> Tensor:
        """``negatives``: one (B, D) tensor per hard-negative column, row i belonging to anchor i."""
        a, b = embeddings_a.float(), embeddings_b.float()
        negatives = [n.float() for n in negatives or []]
        positive = self.positives(labels)
        sides = [a, b, *negatives]
        all_sides, offset, num_positives, world_size = sides, 0, positive.sum(), 1
        if self.gather_across_processes and _distributed():
            rows, offset, num_positives = _gather_with_grad(torch.cat(sides, dim=-1), positive.sum())
            all_sides = list(rows.split(a.shape[-1], dim=-1))
            world_size = dist.get_world_size()
        all_a, candidates = all_sides[0], torch.cat(all_sides[1:])  # every b, then every first negative, ...
        self.last_num_candidates = candidates.shape[0]
        targets = torch.arange(a.shape[0], device=a.device) + offset
        terms = F.cross_entropy(_cosines(a, candidates) * self.scale, targets, reduction="none")
        if self.symmetric:
            terms = (terms + F.cross_entropy(_cosines(b, all_a) * self.scale, targets, reduction="none")) / 2
        # Sum / (positives of all processes) * world_size: DDP's gradient average then gives the
        # mean over every anchor. With no positives the sum still runs through the gathered tensor:
        # every process must take part in the gather's backward pass, or the others wait forever.
        return terms[positive].sum() * world_size / num_positives.clamp(min=1)


class PairClassificationLoss(PairLoss):
    """SBERT's SoftmaxLoss: a linear classifier over ``[u, v, |u - v|]``, trained with cross-entropy.

    The classifier's parameters train together with the pooling head.

    Args:
        embedding_dim: size D of the sentence embeddings (the pooler's ``output_dim``).
        num_labels: number of classes.
    """

    name = "pair_classification"
    label_kind = "label"

    def __init__(self, embedding_dim: int, num_labels: int = 2) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.num_labels = num_labels
        self.classifier = nn.Linear(3 * embedding_dim, num_labels)

    def predict(self, u: Tensor, v: Tensor) -> Tensor:
        """(B, num_labels) logits for pairs of embeddings."""
        features = torch.cat([u, v, (u - v).abs()], dim=-1)
        return self.classifier(features.to(self.classifier.weight.dtype))

    def forward(self, embeddings_a: Tensor, embeddings_b: Tensor, labels: Tensor) -> Tensor:
        if labels.is_floating_point():
            raise UserValueError(
                f"loss {self.name!r} needs integer class labels, got {labels.dtype} values such as "
                f"{labels.view(-1)[:3].tolist()}; use cosent or cosine_mse for similarity scores"
            )
        return F.cross_entropy(self.predict(embeddings_a, embeddings_b).float(), labels.view(-1).long())


LOSSES: dict[str, type[PairLoss]] = {
    loss.name: loss for loss in (CoSENTLoss, CosineSimilarityLoss, InBatchNegativesLoss, PairClassificationLoss)
}
ALIASES = {"mnrl": "in_batch_negatives", "infonce": "in_batch_negatives", "softmax": "pair_classification"}


def build_loss(name: str, embedding_dim: int | None = None, num_labels: int = 2, **kwargs: Any) -> PairLoss:
    """The loss called ``name`` (or an alias), with its options.

    Args:
        name: cosent, cosine_mse, in_batch_negatives (mnrl, infonce), pair_classification (softmax).
        embedding_dim: sentence embedding size; needed by pair_classification.
        num_labels: classes for pair_classification.
        kwargs: the loss's own options (e.g. ``scale=20.0``, ``min_score=0.8``).
    """
    key = ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else name
    if key not in LOSSES:
        raise UserValueError(f"unknown loss {name!r}; choose one of {', '.join([*LOSSES, *ALIASES])}")
    loss_class = LOSSES[key]
    given_by_name = ("self", "embedding_dim", "num_labels")
    options = [p for p in inspect.signature(loss_class.__init__).parameters if p not in given_by_name]
    unknown = [k for k in kwargs if k not in options]
    if unknown:
        raise UserValueError(
            f"loss {key!r} has no option {', '.join(map(repr, unknown))}; its options: {', '.join(options) or 'none'}"
        )
    if loss_class is PairClassificationLoss:
        if embedding_dim is None:
            raise UserValueError(f"loss {key!r} needs embedding_dim (the pooler's output_dim) to size its classifier")
        return PairClassificationLoss(embedding_dim, num_labels, **kwargs)
    return loss_class(**kwargs)


def check_loss_matches_data(loss: nn.Module, label_kind: str, data: str | None = None) -> None:
    """Raise a clear error when ``loss`` cannot train on ``label_kind`` data.

    Args:
        loss: a poolhead loss (anything with a ``label_kind`` attribute; others pass).
        label_kind: what the data holds: ``"score"``, ``"label"`` or ``"positive"`` ((anchor, positive)
            pairs, with or without hard negatives).
        data: where the data comes from, for the message.
    """
    if label_kind not in ("score", "label", "positive"):
        raise UserValueError(f"label_kind must be 'score', 'label' or 'positive', got {label_kind!r}")
    needs = getattr(loss, "label_kind", "any")
    if needs in ("any", label_kind):
        return
    name = getattr(loss, "name", "") or type(loss).__name__
    at = f" at {data}" if data else ""
    if label_kind == "positive":
        raise UserValueError(
            f"loss {name!r} needs {'integer labels' if needs == 'label' else 'similarity scores'} but the data{at} "
            f"holds (anchor, positive) pairs without a score or label; use in_batch_negatives"
        )
    if needs == "label":
        raise UserValueError(
            f"loss {name!r} needs integer labels but the data{at} has scores; use cosent or cosine_mse "
            f"(or in_batch_negatives with min_score)"
        )
    raise UserValueError(
        f"loss {name!r} needs similarity scores but the data{at} has integer labels; use pair_classification "
        f"or in_batch_negatives (label 1 = positive pair), or name the column 'score' if the labels are 0/1 "
        f"similarities"
    )


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _cosines(x: Tensor, y: Tensor) -> Tensor:
    """(len(x), len(y)) cosine similarities."""
    return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T


def _gather_with_grad(x: Tensor, num_positives: Tensor) -> tuple[Tensor, int, Tensor]:
    """Every process's rows of ``x`` in rank order (gradients flow back to their owners), where this
    process's rows start, and the positives counted over all processes.

    Batches may differ in size across processes (a last, smaller batch), so rows are padded for
    the gather and trimmed after it.
    """
    counts = torch.stack([torch.tensor(x.shape[0], device=x.device), num_positives.to(x.device)])
    all_counts = [torch.zeros_like(counts) for _ in range(dist.get_world_size())]
    dist.all_gather(all_counts, counts)
    sizes = [int(c[0]) for c in all_counts]
    padded = F.pad(x, (0, 0, 0, max(sizes) - x.shape[0]))
    if all_gather_single is not None:
        pieces = all_gather_single(padded, 0, dist.group.WORLD).view(len(sizes), *padded.shape)
    else:
        pieces = all_gather(padded)
    gathered = torch.cat([piece[:size] for piece, size in zip(pieces, sizes, strict=False)])
    return gathered, sum(sizes[: dist.get_rank()]), torch.stack(all_counts)[:, 1].sum()
