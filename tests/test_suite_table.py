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


def test_the_reference_of_a_mixture_fine_tunes_on_its_first_data_set(monkeypatch):
    reproduce = load(monkeypatch, "reproduce_results")
    mixture = {"path": None, "datasets": [{"name": "stsb", "path": "sentence-transformers/stsb"},
                                          {"name": "semantoneg", "path": "tum-nlp/cannot-dataset"}]}  # fmt: skip
    assert reproduce.reference_training_data(mixture, "data") == Path("data/stsb")
    assert reproduce.reference_training_data({"path": "sentence-transformers/stsb"}, "data") == Path("data/stsb")


def compared(dataset: str, backbone: str, name: str, kind: str, value: float) -> dict:
    """A row of comparison.csv as csv.DictReader gives it: strings, the unused metric empty."""
    task = "score" if dataset.startswith("sts") else "label"
    score, label = (str(value), "") if task == "score" else ("", str(value))
    return {"dataset": dataset, "task": task, "backbone": backbone, "name": name, "strategy": name, "kind": kind,
            "spearman": score, "accuracy": label}  # fmt: skip


def test_every_strategy_of_a_shared_frozen_backbone_is_one_figure_and_the_model_a_spread(monkeypatch):
    table = load(monkeypatch, "suite_table")
    rows = [compared("stsb", "s0", "mean", "fixed", 82.0), compared("msrp", "s0", "mean", "fixed", 72.0)]
    rows += [compared("stsb", "s0", "cls", "fixed", 73.5), compared("msrp", "s0", "cls", "fixed", 69.0)]
    rows += [compared(d, "s0", m, "model", v) for m, d, v in
             [("s0", "stsb", 83.0), ("s1", "stsb", 84.0), ("s0", "msrp", 72.0), ("s1", "msrp", 73.0)]]  # fmt: skip
    rows += [compared("stsb", "s0", "soup", "model", 99.0)]  # not a seed: left out of the model row
    lines = table.strategy_table(rows, ["s0", "s1"]).splitlines()
    assert lines[0] == "| strategy | stsb | msrp |"
    assert lines[2:5] == [
        "| mean | 82.00 | 72.00 |",
        "| cls | 73.50 | 69.00 |",
        "| **model** | 83.50 ± 0.71 | 72.50 ± 0.71 |",
    ]
    assert "the one frozen backbone" in lines[-1]


def test_fine_tuned_backbones_give_each_strategy_a_spread_and_the_references_a_row(monkeypatch):
    table = load(monkeypatch, "suite_table")
    rows = [compared("sts12", b, "mean", "fixed", v) for b, v in [("s0", 66.0), ("s1", 68.0), ("st0", 50.0)]]
    rows += [compared("sts12", m, m, "model", v) for m, v in [("s0", 69.0), ("s1", 69.0), ("st0", 68.0)]]
    lines = table.strategy_table(rows, ["s0", "s1"], ["st0"]).splitlines()
    # the reference's own backbone is not one of the seeds': its fixed strategies stay out of the mean
    assert lines[2:5] == ["| mean | 67.00 ± 1.41 |", "| **model** | 69.00 ± 0.00 |", "| **reference** | 68.00 |"]
    assert "each seed's own fine-tuned backbone, mean ± std over 2 seeds" in lines[-1]


def test_a_contrast_set_shows_its_pairwise_accuracy(monkeypatch):
    # compare's rows for a contrast set carry pairwise_accuracy and leave spearman and accuracy empty.
    table = load(monkeypatch, "suite_table")
    rows = [compared("stsb", "s0", "mean", "fixed", 82.0)]
    rows += [{**compared("semantoneg", "s0", "mean", "fixed", ""), "task": "contrast", "pairwise_accuracy": 17.7}]
    rows += [{**compared("semantoneg", "s0", "s0", "model", ""), "task": "contrast", "pairwise_accuracy": 60.0}]
    rows += [compared("stsb", "s0", "s0", "model", 83.0)]
    lines = table.strategy_table(rows, ["s0"]).splitlines()
    assert lines[2:4] == ["| mean | 82.00 | 17.70 |", "| **model** | 83.00 | 60.00 |"]
