"""A suite summary as a reader takes it in: one table, a forest plot, and CSV / JSON for machines."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from poolhead.evaluation.report import METRIC_TITLES, markdown_table
from poolhead.evaluation.stats import Difference
from poolhead.evaluation.suite import SuiteSummary

MACRO = "macro"


def _signed(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:+.2f}"


def _difference(d: Difference | None) -> str:
    return "" if d is None else f"{_signed(d.delta)} [{_signed(d.low)}, {_signed(d.high)}]"


def suite_markdown(
    summaries: Sequence[SuiteSummary], confidence: float, skipped: Mapping[str, str] | None = None
) -> str:
    """One table: a row per (model, set), then each model's macro-average row; the worst sets below.

    A column of Δs to each model's reference model is added when any model has one; ``skipped``
    (set name -> why) names the suite's sets that were not scored.
    """
    level = f"{confidence:.0%} CI"
    by_reference = any(summary.reference is not None for summary in summaries)
    headers = ["model", "set", "metric", f"score [{level}]", "best fixed", f"Δ vs best fixed [{level}]",
               f"Δ vs mean [{level}]"]  # fmt: skip
    headers += ["reference", f"Δ vs reference [{level}]"] if by_reference else []
    cells, notes = [], []
    for summary in summaries:
        for s in summary.sets:
            score = f"{s.score.value:.2f} [{s.score.low:.2f}, {s.score.high:.2f}]"
            metric = METRIC_TITLES.get(s.metric, s.metric)
            versus = [summary.reference or "", _difference(s.versus_reference)] if by_reference else []
            cells.append([summary.model, s.dataset, metric, score, s.best_fixed, _difference(s.versus_best),
                          _difference(s.versus_mean), *versus])  # fmt: skip
        if summary.macro_versus_best is not None:
            label = f"{MACRO} ({', '.join(summary.macro_sets)})"
            versus = [summary.reference or "", _difference(summary.macro_versus_reference)] if by_reference else []
            cells.append([summary.model, label, "Spearman", "", "", _difference(summary.macro_versus_best),
                          _difference(summary.macro_versus_mean), *versus])  # fmt: skip
        worst = summary.worst
        notes.append(f"{summary.model}: worst set {worst.dataset}, Δ {_difference(worst.versus_best)} vs "
                     f"{worst.best_fixed}")  # fmt: skip
    explanation = (
        "Δ: paired bootstrap over each set's pairs, against the same backbone's best fixed strategy on that set and "
        "against mean pooling" + (" (and against the model's reference model)" if by_reference else "") + ". Macro: "
        "the mean of the score sets' Δs, its interval from a stratified paired bootstrap (each set's pairs "
        "resampled within that set)."
    )
    notes += [f"Skipped: {why}." for why in (skipped or {}).values()]
    return "\n\n".join([markdown_table(headers, cells), explanation, *notes]) + "\n"


def suite_records(summaries: Sequence[SuiteSummary]) -> list[dict[str, object]]:
    """One flat record per (model, set) and per model's macro row: what the CSV and the JSON hold."""
    records = []
    for summary in summaries:
        for s in summary.sets:
            record = {"model": summary.model, "backbone": summary.backbone, "set": s.dataset, "task": s.task,
                      "metric": s.metric, "pairs": s.pairs, "score": s.score.value, "score_low": s.score.low,
                      "score_high": s.score.high, "best_fixed": s.best_fixed}  # fmt: skip
            record.update(_flat("versus_best", s.versus_best) | _flat("versus_mean", s.versus_mean))
            record.update({"reference": summary.reference} | _flat("versus_reference", s.versus_reference))
            records.append(record)
        if summary.macro_versus_best is not None:
            record = {"model": summary.model, "backbone": summary.backbone, "set": MACRO, "task": "score",
                      "metric": "spearman", "pairs": sum(s.pairs for s in summary.sets if s.task == "score"),
                      "macro_sets": " ".join(summary.macro_sets)}  # fmt: skip
            record.update(_flat("versus_best", summary.macro_versus_best))
            record.update(_flat("versus_mean", summary.macro_versus_mean))
            record.update({"reference": summary.reference} | _flat("versus_reference", summary.macro_versus_reference))
            records.append(record)
    return records


def _flat(prefix: str, d: Difference | None) -> dict[str, float | None]:
    if d is None:
        return {f"{prefix}_{key}": None for key in ("delta", "low", "high", "p_value")}
    return {
        f"{prefix}_delta": d.delta,
        f"{prefix}_low": d.low,
        f"{prefix}_high": d.high,
        f"{prefix}_p_value": d.p_value,
    }


CSV_COLUMNS = ["model", "backbone", "set", "task", "metric", "pairs", "score", "score_low", "score_high",
               "best_fixed", "macro_sets", *(f"{p}_{k}" for p in ("versus_best", "versus_mean")
                                              for k in ("delta", "low", "high", "p_value")),
               "reference", *(f"versus_reference_{k}" for k in ("delta", "low", "high", "p_value"))]  # fmt: skip


def write_suite_report(
    summaries: Sequence[SuiteSummary],
    output_dir: str | Path,
    confidence: float,
    stem: str = "suite",
    skipped: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write ``<stem>.md``, ``.csv``, ``.json`` and the forest plot ``.png``; return their paths.

    ``skipped`` (set name -> why) is listed in the markdown and under ``skipped`` in the JSON.
    """
    from poolhead.evaluation.plots import plot_suite

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: output_dir / f"{stem}.{kind}" for kind in ("md", "csv", "json", "png")}
    paths["md"].write_text(suite_markdown(summaries, confidence, skipped), encoding="utf-8")
    records = suite_records(summaries)
    with paths["csv"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    document = {"confidence": confidence, "rows": records, "skipped": dict(skipped or {})}
    paths["json"].write_text(json.dumps(document, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    plot_suite(summaries, paths["png"], confidence)
    return paths
