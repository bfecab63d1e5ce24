"""Pictures of a comparison: what a reader wants to see is the difference, its size and how sure it is.

Both figures are forest plots: a point per difference with its paired confidence interval and a
line at 0, so "better, by how much, how sure" reads at a glance. Absolute scores sit beside them on
an axis that starts near the scores (bars from 0 make 82 and 83 look the same).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from poolhead.evaluation.compare import PRIMARY_METRIC, Comparison, ComparisonRow
from poolhead.evaluation.suite import SuiteSummary

#: metric -> its name in tables and charts (report.py imports it: the report draws the chart)
METRIC_TITLES = {"spearman": "Spearman", "pearson": "Pearson", "accuracy": "Accuracy", "f1": "F1",
                 "pairwise_accuracy": "Pairwise accuracy", "strict_accuracy": "Strict accuracy", "auroc": "AUROC",
                 "balanced_accuracy": "Balanced accuracy", "query_accuracy": "Query check"}  # fmt: skip

#: fixed strategies grey, the best one darker, models in colour; Δ vs mean pooling lighter.
COLOURS = {"fixed": "#a0a0a0", "best_fixed": "#333333", "model": "#1f77b4", "versus_mean": "#ff7f0e",
           "versus_reference": "#2ca02c"}  # fmt: skip


def _figure(width: float, height: float):
    # The object API with the Agg canvas draws off-screen without touching pyplot's global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _label(row: ComparisonRow, several_backbones: bool) -> str:
    name = f"{row.name} ({row.strategy})" if row.kind == "model" else row.name
    name += " (best fixed)" if row.best_fixed else ""
    return (f"{row.backbone} · " if several_backbones else "") + name


def _interval(ax, y: float, value: float, low: float, high: float, colour: str, marker: str = "o") -> None:
    if math.isnan(value):
        return
    # A percentile interval need not contain its estimate (few pairs, ties): a whisker is never negative.
    xerr = [[max(value - low, 0.0)], [max(high - value, 0.0)]] if not (math.isnan(low) or math.isnan(high)) else None
    ax.errorbar([value], [y], xerr=xerr, fmt=marker, color=colour, capsize=3, markersize=5, elinewidth=1.2)


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """Per evaluation set: every row's score with its CI (left) and each model's Δ to the best fixed (right)."""
    datasets = comparison.datasets
    heights = [0.28 * len(comparison.rows_of(d)) + 1.1 for d in datasets]
    figure = _figure(12, sum(heights) + 0.4)
    grid = figure.subplots(len(datasets), 2, squeeze=False, gridspec_kw={"height_ratios": heights,
                                                                          "width_ratios": [1.25, 1]})  # fmt: skip
    several_backbones = len({row.backbone for row in comparison.rows}) > 1
    for (scores, deltas), dataset in zip(grid, datasets, strict=True):
        rows = comparison.rows_of(dataset)
        _plot_scores(scores, rows, dataset, several_backbones, comparison.confidence)
        _plot_deltas(deltas, rows, dataset, several_backbones, comparison.confidence)
    figure.savefig(path, dpi=120)
    return Path(path)


def _plot_scores(ax, rows: list[ComparisonRow], dataset: str, several: bool, confidence: float) -> None:
    rows = rows[::-1]  # drawn bottom-up; keep the table's order top-down
    for y, row in enumerate(rows):
        colour = COLOURS["model" if row.kind == "model" else "best_fixed" if row.best_fixed else "fixed"]
        _interval(ax, y, row.primary.value, row.primary.low, row.primary.high, colour)
        if not math.isnan(row.primary.value):
            ax.annotate(f"{row.primary.value:.2f}", (row.primary.high, y), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=7)  # fmt: skip
    ax.set_yticks(range(len(rows)), [_label(r, several) for r in rows], fontsize=8)
    lows = [r.primary.low for r in rows if not math.isnan(r.primary.low)]
    highs = [r.primary.high for r in rows if not math.isnan(r.primary.high)]
    if lows and highs:
        # Near the scores, not from 0: the differences between strategies are what matters.
        span = max(highs) - min(lows) or 1.0
        ax.set_xlim(min(lows) - 0.05 * span, max(highs) + 0.15 * span)
    metric = METRIC_TITLES[PRIMARY_METRIC[rows[0].task]]
    ax.set_xlabel(f"{metric} ×100 ({confidence:.0%} bootstrap CI; axis not from 0)", fontsize=8)
    ax.set_title(f"{dataset}: scores", fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def _plot_deltas(ax, rows: list[ComparisonRow], dataset: str, several: bool, confidence: float) -> None:
    models = [r for r in rows if r.kind == "model" and r.difference is not None][::-1]
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_title(f"{dataset}: Δ vs best fixed ({models[0].versus if models else 'none'})", fontsize=10)
    if not models:
        ax.text(0.5, 0.5, "no learned model to compare", transform=ax.transAxes, ha="center", va="center")
        ax.set_yticks([])
        return
    for y, row in enumerate(models):
        d = row.difference
        _interval(ax, y, d.delta, d.low, d.high, COLOURS["model"], marker="D")
        ax.annotate(f"{d.delta:+.2f} [{d.low:+.2f}, {d.high:+.2f}]", (d.delta, y), xytext=(0, 7),
                    textcoords="offset points", ha="center", fontsize=7)  # fmt: skip
    ax.set_yticks(range(len(models)), [_label(r, several) for r in models], fontsize=8)
    ax.set_ylim(-0.6, len(models) - 0.4)
    _symmetric_limits(ax, [v for r in models for v in (r.difference.low, r.difference.high)])
    metric = METRIC_TITLES[PRIMARY_METRIC[models[0].task]]
    ax.set_xlabel(f"Δ {metric} ×100, model − best fixed (paired {confidence:.0%} CI)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def _symmetric_limits(ax, values: Sequence[float]) -> None:
    finite = [abs(v) for v in values if not math.isnan(v)]
    reach = 1.15 * max(finite) if finite and max(finite) > 0 else 1.0
    ax.set_xlim(-reach, reach)


def plot_suite(summaries: Sequence[SuiteSummary], path: str | Path, confidence: float) -> Path:
    """A forest plot per model: Δ to the best fixed strategy and to mean pooling on every set, then the macro."""
    heights = [0.45 * (len(s.sets) + 1) + 1.0 for s in summaries] or [1.0]
    figure = _figure(9, sum(heights) + 0.3)
    axes = figure.subplots(max(len(summaries), 1), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, summary in zip(axes, summaries, strict=False):
        _plot_summary(ax, summary, confidence)
    if not summaries:
        axes[0].text(0.5, 0.5, "no learned model in the comparison", ha="center", va="center")
    figure.savefig(path, dpi=120)
    return Path(path)


def _plot_summary(ax, summary: SuiteSummary, confidence: float) -> None:
    # Per set: ◆ vs best fixed (above), ● vs mean (below), ■ vs the reference model (middle), if any.
    entries = [(f"{s.dataset} ({METRIC_TITLES.get(s.metric, s.metric)})", s.versus_best, s.versus_mean,
                s.versus_reference) for s in summary.sets]  # fmt: skip
    if summary.macro_versus_best is not None:
        entries.append((f"macro over {len(summary.macro_sets)} score sets", summary.macro_versus_best,
                        summary.macro_versus_mean, summary.macro_versus_reference))  # fmt: skip
    entries = entries[::-1]
    for y, (_, *differences) in enumerate(entries):
        for d, offset, key, marker in zip(differences, (0.2, -0.2, 0.0), ("best_fixed", "versus_mean",
                                          "versus_reference"), ("D", "o", "s"), strict=True):  # fmt: skip
            if d is None:
                continue
            _interval(ax, y + offset, d.delta, d.low, d.high, COLOURS[key], marker=marker)
            ax.annotate(f"{d.delta:+.2f}", (d.high, y + offset), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=7, color=COLOURS[key])  # fmt: skip
    if summary.macro_versus_best is not None:
        ax.axhline(0.5, color="#cccccc", linewidth=0.8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(entries)), [label for label, *_ in entries], fontsize=8)
    ax.set_ylim(-0.6, len(entries) - 0.4)
    values = [v for _, *ds in entries for d in ds if d is not None for v in (d.low, d.high)]
    _symmetric_limits(ax, values)
    versus = f", ■ vs {summary.reference}" if summary.reference else ""
    ax.set_xlabel(f"Δ ×100 (paired {confidence:.0%} CI): ◆ vs best fixed of each set, ● vs mean pooling{versus}",
                  fontsize=8)  # fmt: skip
    backbone = "" if summary.backbone in summary.model else f" on {summary.backbone}"
    ax.set_title(f"{summary.model}{backbone}: where it wins and where it loses", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
