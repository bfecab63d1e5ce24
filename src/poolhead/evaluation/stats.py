"""Statistics over sentence pairs: point estimates, bootstrap confidence intervals, paired tests.

Every figure is ×100 (as papers report STS and MSRP). Uncertainty comes from one bootstrap
over the *pairs* of an evaluation set: :class:`PairResamples` draws ``resamples`` index
vectors once (seeded), and every model and strategy on that set is scored on those same
resamples. So each row's confidence interval is a percentile interval over the same draws,
and the difference between two rows is a *paired* comparison (see :func:`paired_difference`).

The resampled metrics are vectorised over an ``(R, N)`` index matrix: ranks of all resamples
come from one ``argsort`` per chunk, never from a Python loop over the resamples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional import pearson_corrcoef, spearman_corrcoef

from poolhead.errors import UserValueError

#: Resample rows processed at once: bounds memory at ~4M float64 entries (32 MB) per array.
CHUNK_ENTRIES = 4_000_000


@dataclass(frozen=True)
class Estimate:
    """A metric on all pairs plus its bootstrap distribution (all ×100).

    Args:
        value: the metric on the evaluation set as given.
        low, high: percentile confidence interval from the bootstrap.
        samples: the metric on each resample, aligned with every other ``Estimate`` of the
            same evaluation set (resample ``r`` used the same pairs everywhere).
    """

    value: float
    low: float
    high: float
    samples: np.ndarray


@dataclass(frozen=True)
class Difference:
    """A model minus a baseline on the same resamples (×100), with its p-values.

    Args:
        delta: model metric minus baseline metric on all pairs.
        low, high: percentile confidence interval of the paired differences.
        p_value: one-sided, against "the model is no better than the baseline".
        p_two_sided: two-sided, against "the two are equal".
    """

    delta: float
    low: float
    high: float
    p_value: float
    p_two_sided: float


class PairResamples:
    """Seeded bootstrap resamples of an evaluation set's pairs, shared by every row of that set.

    Args:
        num_pairs: pairs in the evaluation set.
        resamples: number of bootstrap resamples (each draws ``num_pairs`` pairs with replacement).
        seed: the same seed gives the same resamples, hence identical intervals and p-values.
        confidence: coverage of the percentile intervals (0.95 gives 2.5 and 97.5 percentiles).
    """

    def __init__(self, num_pairs: int, resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> None:
        if num_pairs < 2:
            raise UserValueError(f"a bootstrap needs at least 2 pairs, got {num_pairs}")
        if resamples < 1:
            raise UserValueError(f"resamples must be >= 1, got {resamples}; 1000 is the usual choice")
        if not 0 < confidence < 1:
            raise UserValueError(f"confidence must be in (0, 1), got {confidence}; e.g. 0.95")
        self.num_pairs, self.resamples, self.seed, self.confidence = num_pairs, resamples, seed, confidence

    def index_blocks(self) -> Iterator[np.ndarray]:
        """The (resamples, num_pairs) pair indices, drawn afresh block by block.

        Never held whole (1000 resamples of 50k pairs would be 400 MB): the same seed redraws the
        same stream, and numpy's generator gives the same integers in blocks as in one draw.
        """
        rng = np.random.default_rng(self.seed)
        rows = max(1, CHUNK_ENTRIES // self.num_pairs)
        for start in range(0, self.resamples, rows):
            yield rng.integers(0, self.num_pairs, size=(min(rows, self.resamples - start), self.num_pairs))

    def estimate(self, value: float, metric_of_resamples: Callable[[np.ndarray], np.ndarray]) -> Estimate:
        """``metric_of_resamples`` maps an (r, N) block of indices to r metric values."""
        blocks = [metric_of_resamples(block) for block in self.index_blocks()]
        samples = 100.0 * np.concatenate(blocks)
        low, high = percentile_interval(samples, self.confidence)
        return Estimate(100.0 * value, low, high, samples)


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    # A resample can be degenerate (e.g. every gold score equal): its metric is NaN and is left out.
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def paired_difference(model: Estimate, baseline: Estimate, confidence: float = 0.95) -> Difference:
    """Paired bootstrap test of ``model`` against ``baseline`` on the same resamples.

    Both estimates must come from one :class:`PairResamples`, so resample ``r`` scored both on
    the same pairs and ``d_r = model_r - baseline_r`` keeps the pairing (the per-pair
    correlation between two poolings of one backbone is high, and a paired test uses it).

    Why a paired bootstrap rather than a permutation test that swaps the two similarity scores
    of a pair: the two poolings' cosines live on different scales (CLS cosines crowd near 0.9,
    mean-pooling cosines spread out), so swapped scores are not exchangeable and the swapped
    vectors mix scales; the bootstrap needs no such assumption and works for any metric,
    rank-based or not.

    p-values, with ``k`` counts smoothed as (k + 1) / (R + 1) so that a Monte-Carlo p-value is
    never reported as exactly 0 (its resolution is 1 / (R + 1)):

    * one-sided ``p_value``: the fraction of resamples where ``d_r <= 0``, i.e. how often the
      model fails to beat the baseline. It is below 0.025 exactly when the percentile 95%
      interval of the difference lies above 0, so the p-value and the interval never disagree.
    * ``p_two_sided``: ``2 * min(k(d_r <= 0), k(d_r >= 0))``, smoothed and capped at 1.

    Two identical models give d_r = 0 everywhere and p = 1. Resamples where either metric is
    undefined (NaN) are left out.
    """
    if model.samples.shape != baseline.samples.shape:
        raise ValueError(
            f"estimates come from different resamples ({model.samples.shape} vs {baseline.samples.shape}); "
            f"score both rows with the same PairResamples"
        )
    differences = model.samples - baseline.samples
    differences = differences[np.isfinite(differences)]
    low, high = percentile_interval(differences, confidence)
    count = differences.size
    not_better = int((differences <= 0).sum())
    not_worse = int((differences >= 0).sum())
    p_value = (not_better + 1) / (count + 1)
    p_two_sided = min(1.0, 2 * (min(not_better, not_worse) + 1) / (count + 1))
    return Difference(model.value - baseline.value, low, high, p_value, p_two_sided)


# --- score data: correlations --------------------------------------------------------------


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..N along the last axis, ties sharing their mean rank (scipy's ``rankdata``)."""
    order = np.argsort(values, axis=-1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=-1)
    n = values.shape[-1]
    position = np.broadcast_to(np.arange(n), values.shape)
    starts = np.ones(values.shape, dtype=bool)
    starts[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    ends = np.ones(values.shape, dtype=bool)
    ends[..., :-1] = starts[..., 1:]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=-1)
    last = np.flip(np.minimum.accumulate(np.flip(np.where(ends, position, n - 1), -1), axis=-1), -1)
    ranks = np.empty(values.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=-1)
    return ranks


def rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of x with the same row of y; NaN for a constant row."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (x * y).sum(axis=-1) / denominator, np.nan)


def spearman(similarities: np.ndarray, gold: np.ndarray) -> float:
    """Spearman correlation (torchmetrics, float64), not ×100."""
    return float(spearman_corrcoef(_tensor(similarities), _tensor(gold)))


def pearson(similarities: np.ndarray, gold: np.ndarray) -> float:
    """Pearson correlation (torchmetrics, float64), not ×100."""
    return float(pearson_corrcoef(_tensor(similarities), _tensor(gold)))


def score_metrics(similarities: np.ndarray, gold: np.ndarray, resamples: PairResamples) -> dict[str, Estimate]:
    """Spearman and Pearson ×100 of cosine similarities against gold scores, with bootstrap CIs.

    Args:
        similarities: (N,) cosine similarity of each pair.
        gold: (N,) gold similarity scores (any scale: both metrics ignore a linear rescaling).
        resamples: the evaluation set's shared resamples.
    """
    similarities, gold = _check_pairs(similarities, gold, resamples)
    return {
        "spearman": resamples.estimate(
            spearman(similarities, gold),
            lambda idx: rowwise_pearson(average_ranks(similarities[idx]), average_ranks(gold[idx])),
        ),
        "pearson": resamples.estimate(
            pearson(similarities, gold), lambda idx: rowwise_pearson(similarities[idx], gold[idx])
        ),
    }


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def _check_pairs(similarities: np.ndarray, gold: np.ndarray, resamples: PairResamples) -> tuple[np.ndarray, ...]:
    similarities = np.asarray(similarities, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.float64)
    if similarities.shape != gold.shape or similarities.shape != (resamples.num_pairs,):
        raise ValueError(
            f"similarities {similarities.shape}, gold {gold.shape} and resamples ({resamples.num_pairs} pairs) "
            f"must describe the same pairs"
        )
    return similarities, gold
