"""The 3-seed suite tables of docs/results.md: mean ± std over seeds, and Δs to reference models."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load(monkeypatch, name: str):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def row(model: str, name: str, score: float, versus_reference: float, low: float, high: float) -> dict:
    return {"model": model, "set": name, "metric": "spearman", "score": score, "best_fixed": "mean",
            "versus_best_delta": 0.5, "versus_best_low": -0.1, "versus_best_high": 1.1, "versus_mean_delta": 0.5,
            "versus_mean_low": -0.1, "versus_mean_high": 1.1, "macro_sets": "sts12", "reference": f"st-{model}",
            "versus_reference_delta": versus_reference, "versus_reference_low": low,
            "versus_reference_high": high}  # fmt: skip


def test_reference_columns_give_the_references_scores_and_the_seeds_deltas(monkeypatch):
    table = load(monkeypatch, "suite_table")
    rows = [row("s0", "sts12", 70.0, -1.0, -2.0, -0.5), row("s1", "sts12", 72.0, +1.0, -0.2, 2.0)]
    rows += [row("s0", "macro", 0.0, -1.0, -2.0, -0.5), row("s1", "macro", 0.0, +1.0, -0.2, 2.0)]
    body, data = table.seed_table(rows, ["s0", "s1"])

    header, _, sts12, macro = body.splitlines()[:4]
    assert header.endswith("| reference | Δ vs reference | CI vs reference |")
    # the references scored 71.00 and 71.00 (score - Δ); the Δs -1 and +1; one seed's CI below 0
    assert sts12.endswith("| 71.00 ± 0.00 | +0.00 ± 1.41 | 0 ↑ / 1 ↓ |")
    assert macro.endswith("|  | +0.00 ± 1.41 | 0 ↑ / 1 ↓ |")
    assert data["sets"]["sts12"]["versus_reference"] == [-1.0, 1.0]
    assert data["sets"]["sts12"]["references"] == ["st-s0", "st-s1"]


def test_a_table_without_references_has_no_reference_columns(monkeypatch):
    table = load(monkeypatch, "suite_table")
    rows = [dict(row("s0", "sts12", 70.0, 0, 0, 0), reference=None)]
    body, data = table.seed_table(rows, ["s0"])
    assert "reference" not in body.splitlines()[0] and "versus_reference" not in data["sets"]["sts12"]


def test_the_reference_fine_tune_takes_the_fits_epochs_override(monkeypatch):
    reproduce = load(monkeypatch, "reproduce_results")
    assert reproduce.overridden(["--trainer.max_epochs", "2", "--x", "1"], "--trainer.max_epochs") == "2"
    assert reproduce.overridden(["--trainer.max_epochs=3"], "--trainer.max_epochs") == "3"
    assert reproduce.overridden(["--trainer.max_epochsx", "2"], "--trainer.max_epochs") is None
