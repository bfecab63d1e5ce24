"""Label data: a cosine threshold chosen on validation pairs, accuracy and F1 on test pairs.

The thresholds follow sentence-transformers' ``BinaryClassificationEvaluator`` exactly (one
threshold maximising accuracy, another maximising F1, each the midpoint between two
neighbouring similarities; a pair is predicted positive when its cosine is >= the
threshold), but are computed with cumulative sums instead of a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.classification import binary_accuracy, binary_f1_score

from poolhead.evaluation.stats import Estimate, PairResamples


@dataclass(frozen=True)
class Thresholds:
    """Cosine thresholds and the split they were chosen on (``validation``, or ``test`` when none)."""

    accuracy: float
    f1: float
    chosen_on: str


def _group_ends(similarities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pairs sorted by decreasing similarity; for each cut after a run of equal similarities:
    (index of the cut, positives above it, pairs above it, ordered similarities)."""
    order = np.argsort(-similarities, kind="stable")
    ordered = similarities[order]
    positives = np.cumsum(labels[order])
    ends = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
    return ends, positives[ends], ends + 1, ordered


def _midpoint(ordered: np.ndarray, end: int) -> float:
    if end == len(ordered) - 1:
        return float(ordered[end])
    threshold = (ordered[end] + ordered[end + 1]) / 2
    # A rounded midpoint must not let the next (lower) group in.
    return float(ordered[end] if threshold == ordered[end + 1] else threshold)


def best_accuracy_threshold(similarities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, threshold) maximising accuracy of ``similarity >= threshold``; not ×100."""
    similarities, labels = np.asarray(similarities, np.float64), np.asarray(labels, np.int64)
    ends, true_positives, predicted, ordered = _group_ends(similarities, labels)
    negatives = int((labels == 0).sum())
    # Correct = positives predicted positive + negatives left below the cut.
    correct = true_positives + negatives - (predicted - true_positives)
    # Candidate 0 predicts every pair negative; argmax keeps the first maximum, as SBERT does.
    candidates = np.concatenate([[negatives], correct])
    best = int(np.argmax(candidates))
    if best == 0:
        return negatives / len(labels), float(np.nextafter(ordered[0], np.inf))
    return candidates[best] / len(labels), _midpoint(ordered, ends[best - 1])


def best_f1_threshold(similarities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(F1, threshold) maximising F1 of ``similarity >= threshold``; not ×100. No positives: (0, 0)."""
    similarities, labels = np.asarray(similarities, np.float64), np.asarray(labels, np.int64)
    ends, true_positives, predicted, ordered = _group_ends(similarities, labels)
    total_positives = int(labels.sum())
    f1 = 2 * true_positives / (predicted + total_positives)
    if total_positives == 0 or f1.max() <= 0:
        return 0.0, 0.0
    best = int(np.argmax(f1))
    return float(f1[best]), _midpoint(ordered, ends[best])


def choose_thresholds(similarities: np.ndarray, labels: np.ndarray, chosen_on: str) -> Thresholds:
    return Thresholds(
        accuracy=best_accuracy_threshold(similarities, labels)[1],
        f1=best_f1_threshold(similarities, labels)[1],
        chosen_on=chosen_on,
    )


def label_metrics(
    similarities: np.ndarray, labels: np.ndarray, thresholds: Thresholds, resamples: PairResamples
) -> dict[str, Estimate]:
    """Accuracy and F1 ×100 on test pairs at fixed thresholds, with bootstrap CIs.

    The thresholds stay fixed across resamples: they were chosen on other pairs, so the
    interval describes the test-set sampling only, as for the correlations.

    Args:
        similarities: (N,) cosine similarities of the test pairs.
        labels: (N,) gold labels 0/1.
        thresholds: from :func:`choose_thresholds` on the validation pairs.
        resamples: the evaluation set's shared resamples.
    """
    similarities = np.asarray(similarities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if similarities.shape != labels.shape or similarities.shape != (resamples.num_pairs,):
        raise ValueError(
            f"similarities {similarities.shape}, labels {labels.shape} and resamples "
            f"({resamples.num_pairs} pairs) must describe the same pairs"
        )
    predicted_for_accuracy = similarities >= thresholds.accuracy
    predicted = similarities >= thresholds.f1
    correct = predicted_for_accuracy == (labels == 1)
    target = torch.as_tensor(labels)
    accuracy = float(binary_accuracy(torch.as_tensor(predicted_for_accuracy).long(), target))
    f1 = float(binary_f1_score(torch.as_tensor(predicted).long(), target))
    return {
        "accuracy": resamples.estimate(accuracy, lambda idx: correct[idx].mean(axis=-1)),
        "f1": resamples.estimate(f1, lambda idx: _f1_of_resamples(predicted[idx], labels[idx] == 1)),
    }


def _f1_of_resamples(predicted: np.ndarray, positive: np.ndarray) -> np.ndarray:
    true_positives = (predicted & positive).sum(axis=-1)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted positives + actual positives)
    denominator = predicted.sum(axis=-1) + positive.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * true_positives / denominator, 0.0)
