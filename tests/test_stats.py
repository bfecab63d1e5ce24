"""Statistics of poolhead.evaluation on synthetic pairs whose answers are known independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from poolhead.evaluation import stats
from poolhead.evaluation.classification import (
    Thresholds,
    best_accuracy_threshold,
    best_f1_threshold,
    label_metrics,
)
from poolhead.evaluation.stats import PairResamples, paired_difference, score_metrics


def correlated(n: int, rho: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gold scores and model similarities from a bivariate normal with correlation rho."""
    gold = rng.standard_normal(n)
    model = rho * gold + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    return model, gold


def test_spearman_and_pearson_equal_scipy_with_ties():
    rng = np.random.default_rng(1)
    similarities = rng.integers(0, 20, 300) / 20  # many ties, like rounded cosines
    gold = rng.integers(0, 6, 300) / 5  # STS-style 0-5 grades
    expected_spearman = scipy_stats.spearmanr(similarities, gold).statistic
    expected_pearson = scipy_stats.pearsonr(similarities, gold).statistic

    assert stats.spearman(similarities, gold) == pytest.approx(expected_spearman, abs=1e-9)
    assert stats.pearson(similarities, gold) == pytest.approx(expected_pearson, abs=1e-9)
    # The vectorised path the bootstrap uses agrees too.
    ranked = stats.rowwise_pearson(stats.average_ranks(similarities), stats.average_ranks(gold))
    assert ranked == pytest.approx(expected_spearman, abs=1e-12)


def test_ranks_of_many_resamples_at_once_equal_scipy_rankdata():
    rng = np.random.default_rng(2)
    values = rng.integers(0, 7, size=(50, 40)).astype(float)
    np.testing.assert_allclose(stats.average_ranks(values), scipy_stats.rankdata(values, axis=1))


def test_confidence_intervals_cover_the_true_correlation_about_95_percent_of_the_time():
    rho, trials, covered_pearson, covered_spearman = 0.6, 60, 0, 0
    true_spearman = 6 / math.pi * math.asin(rho / 2)  # for a bivariate normal
    rng = np.random.default_rng(3)
    for trial in range(trials):
        model, gold = correlated(150, rho, rng)
        estimates = score_metrics(model, gold, PairResamples(150, resamples=400, seed=trial))
        covered_pearson += estimates["pearson"].low <= 100 * rho <= estimates["pearson"].high
        covered_spearman += estimates["spearman"].low <= 100 * true_spearman <= estimates["spearman"].high
    # 95% nominal; a binomial(60, 0.95) count falls below 51 with probability < 0.3%.
    assert covered_pearson >= 51
    assert covered_spearman >= 51


def test_interval_brackets_the_estimate_and_shrinks_with_more_pairs():
    rng = np.random.default_rng(4)
    small = score_metrics(*correlated(100, 0.7, rng), PairResamples(100))["spearman"]
    large = score_metrics(*correlated(2000, 0.7, rng), PairResamples(2000))["spearman"]
    for estimate in (small, large):
        assert estimate.low < estimate.value < estimate.high
        assert estimate.samples.shape == (1000,)
    assert large.high - large.low < (small.high - small.low) / 2


def test_identical_models_are_not_significantly_different():
    rng = np.random.default_rng(5)
    model, gold = correlated(300, 0.8, rng)
    resamples = PairResamples(300)
    a, b = score_metrics(model, gold, resamples), score_metrics(model.copy(), gold, resamples)

    difference = paired_difference(a["spearman"], b["spearman"])
    assert difference.delta == 0
    assert difference.p_value == 1.0
    assert difference.p_two_sided == 1.0


def test_a_clearly_better_model_is_significant_and_a_worse_one_is_not():
    rng = np.random.default_rng(6)
    gold = rng.standard_normal(400)
    better = gold + 0.5 * rng.standard_normal(400)
    worse = gold + 1.5 * rng.standard_normal(400)
    resamples = PairResamples(400)
    good, bad = score_metrics(better, gold, resamples), score_metrics(worse, gold, resamples)

    up = paired_difference(good["spearman"], bad["spearman"])
    assert up.delta > 0 and up.low > 0
    assert up.p_value < 0.05 and up.p_two_sided < 0.05
    down = paired_difference(bad["spearman"], good["spearman"])
    assert down.p_value > 0.95


def test_paired_test_keeps_its_level_when_two_models_are_equally_good():
    rng = np.random.default_rng(7)
    significant, trials = 0, 40
    for trial in range(trials):
        gold = rng.standard_normal(200)
        first = gold + rng.standard_normal(200)
        second = gold + rng.standard_normal(200)
        resamples = PairResamples(200, resamples=300, seed=trial)
        a, b = score_metrics(first, gold, resamples), score_metrics(second, gold, resamples)
        significant += paired_difference(a["spearman"], b["spearman"]).p_value < 0.05
    # One-sided 5% level: about 2 of 40; binomial(40, 0.05) exceeds 7 with probability < 0.1%.
    assert significant <= 7


def test_same_seed_same_figures_other_seed_other_intervals():
    rng = np.random.default_rng(8)
    model, gold = correlated(200, 0.5, rng)
    first = score_metrics(model, gold, PairResamples(200, seed=0))["spearman"]
    again = score_metrics(model, gold, PairResamples(200, seed=0))["spearman"]
    other = score_metrics(model, gold, PairResamples(200, seed=1))["spearman"]

    np.testing.assert_array_equal(first.samples, again.samples)
    assert (first.low, first.high) == (again.low, again.high)
    assert first.value == other.value
    assert (first.low, first.high) != (other.low, other.high)


def test_memory_chunking_does_not_change_the_figures(monkeypatch):
    rng = np.random.default_rng(9)
    model, gold = correlated(100, 0.5, rng)
    whole = score_metrics(model, gold, PairResamples(100, resamples=50))["spearman"]
    monkeypatch.setattr(stats, "CHUNK_ENTRIES", 700)  # 7 resamples per chunk
    chunked = score_metrics(model, gold, PairResamples(100, resamples=50))["spearman"]
    np.testing.assert_array_equal(whole.samples, chunked.samples)


def test_estimates_of_different_resamples_cannot_be_paired():
    rng = np.random.default_rng(10)
    model, gold = correlated(50, 0.5, rng)
    a = score_metrics(model, gold, PairResamples(50, resamples=100))["spearman"]
    b = score_metrics(model, gold, PairResamples(50, resamples=200))["spearman"]
    with pytest.raises(ValueError, match="same PairResamples"):
        paired_difference(a, b)


def test_thresholds_are_the_ones_sentence_transformers_chooses():
    from sentence_transformers.sentence_transformer.evaluation import BinaryClassificationEvaluator as Evaluator

    rng = np.random.default_rng(11)
    for _trial in range(5):
        labels = rng.integers(0, 2, 120)
        similarities = np.round(0.5 * labels + rng.standard_normal(120) * 0.4, 2)  # ties
        accuracy, threshold = best_accuracy_threshold(similarities, labels)
        expected_accuracy, expected_threshold = Evaluator.find_best_acc_and_threshold(similarities, labels, True)
        assert accuracy == pytest.approx(expected_accuracy)
        assert threshold == pytest.approx(expected_threshold)
        f1, f1_threshold = best_f1_threshold(similarities, labels)
        expected_f1, _, _, expected_f1_threshold = Evaluator.find_best_f1_and_threshold(similarities, labels, True)
        assert f1 == pytest.approx(expected_f1)
        assert f1_threshold == pytest.approx(expected_f1_threshold)


def test_label_metrics_count_what_the_thresholds_predict():
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    similarities = np.array([0.9, 0.8, 0.4, 0.7, 0.2, 0.1, 0.6, 0.3])
    # At 0.5: predicted 1,1,0,1,0,0,1,0 -> 6 of 8 right; TP=3, FP=1, FN=1 -> F1 = 0.75.
    # At 0.35: predicted 1,1,1,1,0,0,1,0 -> TP=4, FP=1, FN=0 -> F1 = 8/9.
    estimates = label_metrics(similarities, labels, Thresholds(0.5, 0.35, "validation"), PairResamples(8))
    assert estimates["accuracy"].value == pytest.approx(75.0)
    assert estimates["f1"].value == pytest.approx(100 * 8 / 9)
    assert estimates["accuracy"].low <= 75.0 <= estimates["accuracy"].high


def test_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="at least 2 pairs, got 1"):
        PairResamples(1)
    with pytest.raises(ValueError, match="resamples must be >= 1, got 0"):
        PairResamples(10, resamples=0)
    with pytest.raises(ValueError, match="same pairs"):
        score_metrics(np.zeros(5), np.zeros(6), PairResamples(5))
