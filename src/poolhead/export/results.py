"""Where ``poolhead compare`` leaves an export's scores for its model card: ``<export>/poolhead_compare.json``.

Each run of ``poolhead compare`` that evaluates an export folder rewrites that folder's file with
the export's own rows (the last comparison wins); ``poolhead push`` puts them in the card's
``model-index``. Figures are ×100 as compare reports them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_FILE = "poolhead_compare.json"


def model_results(comparison: Any, name: str) -> dict[str, Any] | None:
    """The rows of model ``name`` in a ``Comparison``, as the results file holds them; None if it has none."""
    rows = [row for row in comparison.rows if row.kind == "model" and row.name == name]
    if not rows:
        return None
    results = []
    for row in rows:
        entry = {"dataset": row.dataset, "task": row.task, "split": "test", "pairs": row.pairs}
        entry["metrics"] = {metric: estimate.value for metric, estimate in row.metrics.items()}
        entry["intervals"] = {metric: [estimate.low, estimate.high] for metric, estimate in row.metrics.items()}
        if row.versus is not None and row.difference is not None:
            entry["versus_best_fixed"] = {"strategy": row.versus, "delta": row.difference.delta}
        results.append(entry)
    return {"model": name, "resamples": comparison.resamples, "seed": comparison.seed, "results": results}


def write_export_results(comparison: Any, sources: dict[str, str]) -> list[Path]:
    """Write ``poolhead_compare.json`` into every export folder among ``sources``; return the files written.

    Args:
        comparison: a ``Comparison``.
        sources: each model's path (or hub id) -> its row name in ``comparison`` (the caller named the rows).
    """
    written = []
    for source, name in sources.items():
        folder = Path(source)
        if not (folder / "modules.json").is_file():
            continue
        results = model_results(comparison, name)
        if results is not None:
            path = folder / RESULTS_FILE
            try:
                path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
            except OSError:  # a read-only model folder: the comparison itself is still written
                continue
            written.append(path)
    return written


def read_export_results(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / RESULTS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
