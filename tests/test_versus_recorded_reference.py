"""scripts/versus_recorded_reference.py: a record's scores beside references another record holds, by seed."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def versus(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    sys.modules.pop("versus_recorded_reference", None)
    return importlib.import_module("versus_recorded_reference")


def test_the_reference_is_the_score_less_its_delta_and_the_macro_is_per_seed(versus):
    # Two seeds; the reference record's model scores 80 and 82 with Δs 1 and 3 to the reference: 79 both times.
    sets = {s: {"score": [80.0, 82.0], "versus_reference": [1.0, 3.0]} for s in versus.SETS}
    references = versus.reference_scores({"data": {"sets": sets}}, "ref")
    assert references["sts12"] == [79.0, 79.0]
    scores = {s: [79.0, 79.0] for s in versus.SETS} | {"sts15": [74.0, 69.0]}
    body, data = versus.table(scores, references)
    assert "| sts15 | 79.00 ± 0.00 | 71.50 ± 3.54 | -7.50 ± 3.54 |" in body
    # The macro averages the five STS sets per seed before the Δ: (-5 / 5, -10 / 5).
    assert data["macro"]["delta"] == pytest.approx([-1.0, -2.0])


def test_a_record_without_references_is_refused(versus):
    sets = {s: {"score": [80.0]} for s in versus.SETS}
    with pytest.raises(SystemExit, match="make it with --versus-st"):
        versus.reference_scores({"data": {"sets": sets}}, "suite_x")
