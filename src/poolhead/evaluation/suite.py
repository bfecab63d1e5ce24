"""A suite of evaluation sets read as one verdict: per set Δ, a macro-average Δ with its CI, the worst set.

``summarize_suite(comparison)`` takes a finished :class:`~poolhead.evaluation.compare.Comparison`
and, for every model, gives per evaluation set its primary metric's difference to the best fixed
strategy of the same backbone and to plain mean pooling (paired bootstrap, as in the comparison
table), then the macro-average of those differences over the *score* sets (Spearman) with an
interval from a stratified paired bootstrap, and the set where the model does worst. Given a
reference model per model (e.g. the same backbone fine-tuned by another recipe), the same Δs and
macro-average are taken against it too.

A suite is named (``ood``: the SemEval STS 2012–2016 sets and MSRP, which a model trained on STS-B
has not seen, and the SemAntoNeg contrast set, which asks whether negation flips the embedding) or
listed in a text file, one evaluation set per line. A named suite's set that neither the data root nor
the hub holds (semantoneg outside this checkout) is skipped and named as skipped, never scored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poolhead.errors import UserValueError
from poolhead.evaluation.compare import Comparison, ComparisonRow
from poolhead.evaluation.stats import Difference, Estimate, paired_difference
from poolhead.evaluation.suite_sources import LOCAL_ONLY, obtainable, suite_set_source

#: Named suites: folders under the data root (``--data-root``, default ``../shared/data``); a set the data
#: root lacks is read from the hub (see :mod:`poolhead.evaluation.suite_sources`). semantoneg is a contrast
#: set: listed on its own line, never in the macro-average of the score sets.
SUITES = {"ood": ("sts12", "sts13", "sts14", "sts15", "sts16", "msrp", "semantoneg")}
DEFAULT_DATA_ROOT = "../shared/data"
BASELINE_STRATEGY = "mean"


def suite_sets(suite: str, data_root: str | Path = DEFAULT_DATA_ROOT) -> list[str]:
    """The evaluation sets a suite stands for: a name in ``SUITES`` or a file listing one set per line.

    A named suite's set that neither ``data_root`` nor the hub holds is left out (see
    :func:`skipped_suite_sets`). Lines of a list file are paths (relative ones are read from the
    file's folder) or hub ids; blank lines and lines starting with ``#`` are skipped.
    """
    if suite in SUITES:
        sources = [suite_set_source(name, data_root) for name in SUITES[suite]]
        return [source for source in sources if source is not None]
    path = Path(suite)
    if not path.is_file():
        raise UserValueError(
            f"unknown suite {suite!r}; choose one of {', '.join(SUITES)} or give a file listing the sets"
        )
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    if not entries:
        raise UserValueError(f"suite file {suite} lists no evaluation sets; write one folder, file or hub id per line")
    return [str(path.parent / e) if (path.parent / e).exists() else e for e in entries]


def skipped_suite_sets(suite: str, data_root: str | Path = DEFAULT_DATA_ROOT) -> dict[str, str]:
    """The named suite's sets left out for want of a source: set name -> why, and how to include it."""
    skipped = [name for name in SUITES.get(suite, ()) if not obtainable(name, data_root)]
    return {
        name: f"{name} ({LOCAL_ONLY.get(name, 'a local-only set')}) is on no hub and --data-root {data_root} has no "
        f"{name}/ folder, so it is not scored; to include it, give --data-root FOLDER holding {name}/test.csv"
        for name in skipped
    }


@dataclass
class SetSummary:
    """One model on one evaluation set: its primary metric and its two paired differences (×100)."""

    dataset: str
    task: str
    metric: str
    pairs: int
    score: Estimate
    best_fixed: str
    best_score: Estimate
    mean_score: Estimate | None
    versus_best: Difference
    versus_mean: Difference | None
    reference_score: Estimate | None = None
    versus_reference: Difference | None = None


@dataclass
class SuiteSummary:
    """One model over a suite: every set, the macro-average over its score sets, and the worst set.

    ``macro_*`` average the per-set differences of the score sets (``macro_sets``); ``worst``
    is the set with the lowest difference to the best fixed strategy. ``reference``: the model
    each set's ``versus_reference`` and ``macro_versus_reference`` are taken against, if any.
    """

    model: str
    backbone: str
    sets: list[SetSummary]
    macro_sets: list[str]
    macro_versus_best: Difference | None
    macro_versus_mean: Difference | None
    reference: str | None = None
    macro_versus_reference: Difference | None = None

    @property
    def worst(self) -> SetSummary:
        return min(self.sets, key=lambda s: s.versus_best.delta)


def summarize_suite(
    comparison: Comparison,
    datasets: Sequence[str] | None = None,
    macro_over: Sequence[str] | None = None,
    references: Mapping[str, str] | None = None,
) -> list[SuiteSummary]:
    """A :class:`SuiteSummary` per model of ``comparison``.

    Args:
        comparison: a finished comparison.
        datasets: the sets to summarise (default: all of the comparison's).
        macro_over: the sets whose score-set Δs are averaged (default: ``datasets``); e.g. the
            out-of-domain sets only, while an in-domain test set is still listed.
        references: model name -> the model (of the same comparison) it is measured against.
    """
    datasets = list(datasets or comparison.datasets)
    macro_over = set(macro_over or datasets)
    unknown = [d for d in [*datasets, *macro_over] if d not in comparison.datasets]
    if unknown:
        raise UserValueError(f"sets {unknown} are not in the comparison; choose among {comparison.datasets}")
    models = dict.fromkeys((r.name, r.backbone) for r in comparison.rows if r.kind == "model")
    references = dict(references or {})
    names = {name for name, _ in models}
    strays = sorted({*references, *references.values()} - names)
    if strays:
        raise UserValueError(f"reference models {strays} are not in the comparison; choose among {sorted(names)}")
    summaries = []
    for name, backbone in models:
        sets = [s for s in (_set_summary(comparison, d, name, backbone) for d in datasets) if s is not None]
        if not sets:
            continue
        reference = references.get(name)
        if reference is not None:
            _add_reference(comparison, sets, reference)
        scores = [s for s in sets if s.task == "score" and s.dataset in macro_over]
        seeds = [_stratum_seed(comparison.seed, s.dataset) for s in scores]
        by_mean = all(s.versus_mean is not None for s in scores)
        by_reference = reference is not None and all(s.reference_score is not None for s in scores)
        summaries.append(
            SuiteSummary(
                name,
                backbone,
                sets,
                [s.dataset for s in scores],
                _macro(comparison, scores, seeds, "best") if scores else None,
                _macro(comparison, scores, seeds, "mean") if scores and by_mean else None,
                reference,
                _macro(comparison, scores, seeds, "reference") if scores and by_reference else None,
            )
        )
    return summaries


def _add_reference(comparison: Comparison, sets: list[SetSummary], reference: str) -> None:
    """Each set's score of ``reference`` and the paired difference to it (same pairs, same resamples)."""
    for s in sets:
        found = [r for r in comparison.rows_of(s.dataset) if r.kind == "model" and r.name == reference]
        if found:
            s.reference_score = found[0].primary
            s.versus_reference = paired_difference(s.score, s.reference_score, comparison.confidence)


def _set_summary(comparison: Comparison, dataset: str, model: str, backbone: str) -> SetSummary | None:
    rows = [r for r in comparison.rows_of(dataset) if r.backbone == backbone]
    found = [r for r in rows if r.kind == "model" and r.name == model]
    if not found:
        return None
    row, best, mean = found[0], _best_fixed(rows), _fixed(rows, BASELINE_STRATEGY)
    versus_mean = paired_difference(row.primary, mean.primary, comparison.confidence) if mean else None
    return SetSummary(
        dataset,
        row.task,
        _primary_name(row),
        row.pairs,
        row.primary,
        best.name,
        best.primary,
        mean.primary if mean else None,
        paired_difference(row.primary, best.primary, comparison.confidence),
        versus_mean,
    )


def _primary_name(row: ComparisonRow) -> str:
    return next(name for name, estimate in row.metrics.items() if estimate is row.primary)


def _best_fixed(rows: list[ComparisonRow]) -> ComparisonRow:
    return next(r for r in rows if r.kind == "fixed" and r.best_fixed)


def _fixed(rows: list[ComparisonRow], strategy: str) -> ComparisonRow | None:
    return next((r for r in rows if r.kind == "fixed" and r.strategy == strategy), None)


def _stratum_seed(seed: int, dataset: str) -> int:
    # A stable per-set seed (Python's hash() of a str changes between processes).
    return int(np.random.SeedSequence([seed, *dataset.encode()]).generate_state(1)[0])


def _macro(comparison: Comparison, sets: list[SetSummary], seeds: list[int], versus: str) -> Difference:
    """Macro-average Δ over ``sets`` against each set's best fixed strategy, mean pooling or reference model.

    Each set's bootstrap resamples its own pairs, so the sets' resamples are draws within their
    strata; but every set is drawn from the same seed, so sets of equal size would get the same
    indices. Shuffling each set's resamples with its own seed makes the strata independent, and
    model and baseline keep the same shuffle, so the difference stays paired.
    """
    baselines = [{"best": s.best_score, "mean": s.mean_score, "reference": s.reference_score}[versus] for s in sets]
    return stratified_macro_difference([s.score for s in sets], baselines, seeds, comparison.confidence)


def stratified_macro_difference(
    models: Sequence[Estimate], baselines: Sequence[Estimate], seeds: Sequence[int], confidence: float = 0.95
) -> Difference:
    """Mean over sets of ``model - baseline``, with a paired interval from independent per-set resamples.

    Args:
        models, baselines: per set, the model's and the baseline's estimates on that set's resamples.
        seeds: per set, the seed that shuffles its resamples (distinct seeds make the sets independent).
        confidence: coverage of the interval.
    """
    if not models or len(models) != len(baselines) or len(models) != len(seeds):
        raise UserValueError(
            f"need one model, baseline and seed per set; got {len(models)}, {len(baselines)}, {len(seeds)}"
        )
    model_samples, baseline_samples = [], []
    for model, baseline, seed in zip(models, baselines, seeds, strict=True):
        order = np.random.default_rng(seed).permutation(model.samples.size)
        model_samples.append(model.samples[order])
        baseline_samples.append(baseline.samples[order] if baseline.samples.shape == model.samples.shape else None)
    if any(b is None for b in baseline_samples):
        raise ValueError("each set's model and baseline must come from the same resamples; score them in one compare")
    model_macro = _average(np.mean([m.value for m in models]), np.mean(model_samples, axis=0), confidence)
    baseline_macro = _average(np.mean([b.value for b in baselines]), np.mean(baseline_samples, axis=0), confidence)
    return paired_difference(model_macro, baseline_macro, confidence)


def _average(value: float, samples: np.ndarray, confidence: float) -> Estimate:
    finite = samples[np.isfinite(samples)]
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail]) if finite.size else (math.nan, math.nan)
    return Estimate(float(value), float(low), float(high), samples)
