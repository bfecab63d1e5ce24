"""Contrast sets: per premise, is every hypothesis that keeps its meaning closer than every one that flips it?

A contrast set (SemAntoNeg: "You're not fat." with the keeper "You're thin." and the flipper
"You're fat.") asks whether a pooling follows meaning or word overlap. Each hypothesis is scored
by its cosine to its premise, and three figures are reported (×100):

- ``pairwise_accuracy`` (primary): per premise, the share of its (keeper, flipper) pairs where the
  keeper is closer, averaged over the premises (each premise counts once, however many hypotheses it
  has); a tie counts half, so a pooling blind to the difference scores 50;
- ``strict_accuracy``: the share of premises (with at least one keeper and one flipper) whose every
  keeper is strictly closer than every flipper, as SemAntoNeg reports it;
- ``auroc``: keepers against flippers over the whole set by cosine (scikit-learn's ``roc_auc_score``).

Hypotheses of one premise are not independent, so intervals resample *premises* (a cluster
bootstrap): a premise drawn twice counts its pairs twice. Every row of a set uses the same drawn
premises, so the differences between poolings stay paired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from poolhead.errors import UserValueError
from poolhead.evaluation.stats import Estimate, PairResamples

METRICS = ("pairwise_accuracy", "strict_accuracy", "auroc")


@dataclass
class ContrastSet:
    """Hypotheses scored against their premises.

    Args:
        name: shown in tables.
        premise, hypothesis: one row per hypothesis.
        flips: (N,) True where the hypothesis flips the premise's meaning, False where it keeps it.
    """

    name: str
    premise: list[str]
    hypothesis: list[str]
    flips: np.ndarray
    kind: str = "contrast"

    def __post_init__(self) -> None:
        self.flips = np.asarray(self.flips, dtype=bool)
        # Premise ids in first-seen order: the clusters the bootstrap draws.
        ids: dict[str, int] = {}
        self.premise_ids = np.asarray([ids.setdefault(p, len(ids)) for p in self.premise], dtype=np.int64)
        self.num_premises = len(ids)

    def __len__(self) -> int:
        return len(self.flips)

    def sentences(self) -> list[str]:
        """Every distinct text to encode, in first-seen order."""
        return list(dict.fromkeys([*self.premise, *self.hypothesis]))

    def contrasted_premises(self) -> int:
        """Premises with at least one keeper and one flipper: the ones that make pairs."""
        keeps = np.bincount(self.premise_ids[~self.flips], minlength=self.num_premises)
        flips = np.bincount(self.premise_ids[self.flips], minlength=self.num_premises)
        return int(((keeps > 0) & (flips > 0)).sum())


def contrast_set_from_columns(name: str, columns: dict[str, list], source: str) -> ContrastSet:
    """A :class:`ContrastSet` from columns named as roles (``premise``, ``hypothesis``, ``negated``)."""
    flips = []
    for row, value in enumerate(columns["negated"]):
        text = str(value).strip()
        if text not in ("0", "1", "0.0", "1.0", "True", "False", "true", "false"):
            raise UserValueError(
                f"{source}, row {row + 1}: negated is {value!r}; write 1 where the hypothesis flips the premise's "
                f"meaning and 0 where it keeps it"
            )
        flips.append(text in ("1", "1.0", "True", "true"))
    contrast = ContrastSet(name, [str(p) for p in columns["premise"]], [str(h) for h in columns["hypothesis"]], flips)
    if contrast.contrasted_premises() == 0:
        raise UserValueError(
            f"{source}: no premise has both a hypothesis that keeps its meaning (negated 0) and one that flips it "
            f"(negated 1), so no pair can be ordered; add both kinds per premise"
        )
    return contrast


def contrast_set_name(source: str | Path) -> str:
    path = Path(source)
    return path.stem if path.is_file() else path.name


@dataclass(frozen=True)
class PremiseCounts:
    """Per premise: (keeper, flipper) pairs, correctly ordered pairs (ties half), whether all are ordered, and
    whether it has pairs at all (``contrasted``); ``accuracy`` is each contrasted premise's share (0 elsewhere)."""

    pairs: np.ndarray
    correct: np.ndarray
    strict: np.ndarray
    contrasted: np.ndarray


def premise_counts(similarities: np.ndarray, contrast: ContrastSet) -> PremiseCounts:
    """Count each premise's (keeper, flipper) pairs from the hypotheses' cosines to their premise."""
    pairs = np.zeros(contrast.num_premises)
    correct = np.zeros(contrast.num_premises)
    strict = np.zeros(contrast.num_premises, dtype=bool)
    for premise in range(contrast.num_premises):
        rows = contrast.premise_ids == premise
        keepers = similarities[rows & ~contrast.flips]
        flippers = similarities[rows & contrast.flips]
        if keepers.size == 0 or flippers.size == 0:
            continue
        # (keepers, flippers) grid: 1 where the keeper is closer, ½ on a tie.
        grid = np.sign(keepers[:, None] - flippers[None, :])
        pairs[premise] = grid.size
        correct[premise] = ((grid + 1) / 2).sum()
        strict[premise] = bool((grid > 0).all())
    return PremiseCounts(pairs, correct, strict, pairs > 0)


def premise_accuracy(counts: PremiseCounts) -> np.ndarray:
    """Each premise's share of correctly ordered pairs; 0 for premises without pairs (they carry no weight)."""
    return np.divide(counts.correct, counts.pairs, out=np.zeros_like(counts.correct), where=counts.contrasted)


def contrast_metrics(similarities: np.ndarray, contrast: ContrastSet, resamples: PairResamples) -> dict[str, Estimate]:
    """Pairwise accuracy, strict accuracy and AUROC ×100, with intervals from resampled premises.

    Args:
        similarities: (N,) cosine of each hypothesis to its premise, in ``contrast``'s order.
        contrast: the set.
        resamples: draws over the set's premises (``PairResamples(contrast.num_premises, ...)``),
            shared by every row of the set.
    """
    similarities = np.asarray(similarities, dtype=np.float64)
    if similarities.shape != (len(contrast),) or resamples.num_pairs != contrast.num_premises:
        raise ValueError(
            f"similarities {similarities.shape} and resamples ({resamples.num_pairs} premises) must describe "
            f"{contrast.name}'s {len(contrast)} hypotheses of {contrast.num_premises} premises"
        )
    counts = premise_counts(similarities, contrast)
    keeps = (~contrast.flips).astype(int)

    def weights(block: np.ndarray) -> np.ndarray:
        # (r, premises): how often each premise was drawn in each resample.
        return np.stack([np.bincount(row, minlength=contrast.num_premises) for row in block]).astype(np.float64)

    def ratio(numerator: np.ndarray, denominator: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        def of_resamples(block: np.ndarray) -> np.ndarray:
            drawn = weights(block)
            with np.errstate(invalid="ignore", divide="ignore"):
                return (drawn @ numerator) / (drawn @ denominator)

        return of_resamples

    def auroc_of_resamples(block: np.ndarray) -> np.ndarray:
        drawn = weights(block)[:, contrast.premise_ids]
        return np.asarray([_auroc(keeps, similarities, row) for row in drawn])

    contrasted = counts.contrasted.astype(float)
    per_premise = premise_accuracy(counts)
    pairwise = per_premise.sum() / contrasted.sum()
    strict = counts.strict.sum() / contrasted.sum()
    return {
        "pairwise_accuracy": resamples.estimate(pairwise, ratio(per_premise, contrasted)),
        "strict_accuracy": resamples.estimate(strict, ratio(counts.strict.astype(float), contrasted)),
        "auroc": resamples.estimate(_auroc(keeps, similarities, None), auroc_of_resamples),
    }


def _auroc(keeps: np.ndarray, similarities: np.ndarray, weights: np.ndarray | None) -> float:
    """Keepers (positive) against flippers by cosine; NaN when a resample drew one kind only."""
    present = keeps if weights is None else keeps[weights > 0]
    if np.unique(present).size < 2:
        return float("nan")
    return float(roc_auc_score(keeps, similarities, sample_weight=weights))
