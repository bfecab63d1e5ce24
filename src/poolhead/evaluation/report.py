"""A comparison as a researcher reads it: a table (terminal and Markdown), a CSV and a forest plot."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from poolhead.evaluation.compare import METRICS, PRIMARY_METRIC, Comparison, ComparisonRow
from poolhead.evaluation.plots import METRIC_TITLES, plot_comparison

#: What a set's figures are, per kind of data, for its table's heading.
MEASURES = {
    "score": "cosine similarity vs gold scores",
    "label": "cosine threshold from validation",
    "contrast": "hypotheses by cosine to their premise, intervals over premises",
    "probe": "linear probe, stratified k-fold, balanced over classes",
}
UNITS = {"score": "test pairs", "label": "test pairs", "contrast": "hypotheses", "probe": "sentences"}


def _number(value: float, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _with_interval(value: float, low: float, high: float, signed: bool = False) -> str:
    return f"{_number(value, signed)} [{_number(low, signed)}, {_number(high, signed)}]"


def _p_value(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _pooling_cell(row: ComparisonRow) -> str:
    if row.kind == "model":
        return f"{row.name} ({row.strategy})"
    return f"{row.name} (best fixed)" if row.best_fixed else row.name


def reported_metrics(rows: list[ComparisonRow]) -> list[str]:
    """The metrics of a set's rows, in their kind's order (a probe set without concepts has no query check)."""
    return [metric for metric in METRICS[rows[0].task] if metric in rows[0].metrics]


def table_rows(comparison: Comparison, dataset: str) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of one evaluation set's table."""
    rows = comparison.rows_of(dataset)
    task, metrics = rows[0].task, reported_metrics(rows)
    level = f"{comparison.confidence:.0%} CI"
    headers = ["backbone", "pooling", *(f"{METRIC_TITLES[m]} [{level}]" for m in metrics)]
    if task == "label":
        headers += ["threshold acc / F1"]
    headers += [f"Δ {METRIC_TITLES[PRIMARY_METRIC[task]]} vs best fixed [{level}]", "p (one-sided)"]
    cells = []
    for row in rows:
        line = [row.backbone, _pooling_cell(row)]
        line += [_with_interval(e.value, e.low, e.high) for e in (row.metrics[m] for m in metrics)]
        if task == "label":
            line.append(f"{row.thresholds.accuracy:.3f} / {row.thresholds.f1:.3f}")
        if row.difference is not None:
            d = row.difference
            line += [f"{_with_interval(d.delta, d.low, d.high, signed=True)} vs {row.versus}", _p_value(d.p_value)]
        else:
            line += ["", ""]
        cells.append(line)
    return headers, cells


def markdown_table(headers: list[str], cells: list[list[str]]) -> str:
    """A pipe table with aligned columns: valid Markdown that also reads well in a terminal."""
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + " |" for line in cells]
    return "\n".join(lines)


def to_markdown(comparison: Comparison) -> str:
    """Every evaluation set as a heading and a table, then how the figures were computed."""
    parts = []
    for dataset in comparison.datasets:
        rows = comparison.rows_of(dataset)
        task, pairs = rows[0].task, rows[0].pairs
        heading = f"## {dataset} ({pairs} {UNITS[task]}, {MEASURES[task]}, ×100)"
        parts.append(heading + "\n\n" + markdown_table(*table_rows(comparison, dataset)))
    parts.append(
        f"Intervals: percentile bootstrap over pairs (contrast sets: over premises; probe sets: over the sentences' "
        f"out-of-fold predictions), {comparison.resamples} resamples, seed {comparison.seed}. "
        f"Δ and p: paired bootstrap on the same resamples against the best fixed strategy of the same backbone; "
        f"p = share of resamples where the model is not better."
    )
    parts += [f"Note: {note}" for note in comparison.notes]
    return "\n\n".join(parts) + "\n"


def csv_columns(comparison: Comparison) -> list[str]:
    tasks = list(dict.fromkeys(row.task for row in comparison.rows))
    columns = ["dataset", "task", "backbone", "name", "strategy", "kind", "pairs", "best_fixed"]
    for task in tasks:
        columns += [f"{m}{suffix}" for m in METRICS[task] if m not in columns for suffix in ("", "_low", "_high")]
    if "label" in tasks:
        columns += ["accuracy_threshold", "f1_threshold", "threshold_chosen_on"]
    columns += ["versus", "delta", "delta_low", "delta_high", "p_value", "p_two_sided", "resamples", "seed"]
    return columns


def csv_record(row: ComparisonRow, comparison: Comparison) -> dict[str, object]:
    record: dict[str, object] = {
        "dataset": row.dataset, "task": row.task, "backbone": row.backbone, "name": row.name,
        "strategy": row.strategy, "kind": row.kind, "pairs": row.pairs, "best_fixed": row.best_fixed,
        "resamples": comparison.resamples, "seed": comparison.seed,
    }  # fmt: skip
    for metric, estimate in row.metrics.items():
        record.update({metric: estimate.value, f"{metric}_low": estimate.low, f"{metric}_high": estimate.high})
    if row.thresholds is not None:
        record.update(
            accuracy_threshold=row.thresholds.accuracy,
            f1_threshold=row.thresholds.f1,
            threshold_chosen_on=row.thresholds.chosen_on,
        )
    if row.difference is not None:
        d = row.difference
        record.update(versus=row.versus, delta=d.delta, delta_low=d.low, delta_high=d.high)
        record.update(p_value=d.p_value, p_two_sided=d.p_two_sided)
    return record


def write_csv(comparison: Comparison, path: str | Path) -> Path:
    """One row per (evaluation set, backbone, pooling); full precision, blanks where not applicable."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=csv_columns(comparison))
        writer.writeheader()
        writer.writerows(csv_record(row, comparison) for row in comparison.rows)
    return path


def write_report(comparison: Comparison, output_dir: str | Path, stem: str = "comparison") -> dict[str, Path]:
    """Write ``<stem>.md``, ``<stem>.csv`` and ``<stem>.png`` into ``output_dir``; return their paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    markdown = output_dir / f"{stem}.md"
    markdown.write_text(to_markdown(comparison), encoding="utf-8")
    return {
        "markdown": markdown,
        "csv": write_csv(comparison, output_dir / f"{stem}.csv"),
        "png": plot_comparison(comparison, output_dir / f"{stem}.png"),
    }
