"""scripts/select_penalty.py's table: the pick is the value with the best held-out mean, never the suite's."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SETS = ["stsb-validation", "msrp-validation", "stsb", "macro", "sts13", "msrp"]


def load(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    sys.modules.pop("select_penalty", None)
    return importlib.import_module("select_penalty")


def rows_for(select, option: str, value: float, seed: int, held_out: tuple[float, float], macro: float) -> list[dict]:
    """One seed's model at ``value``: its held-out scores and a suite macro Δ, with mean pooling 1 below."""
    model = f"{select.label(option, value, seed)}/model"
    scores = {"stsb-validation": held_out[0], "msrp-validation": held_out[1], "stsb": 80.0, "macro": 0.0,
              "sts13": 70.0, "msrp": 70.0}  # fmt: skip
    return [
        {
            "model": model,
            "set": name,
            "score": scores[name],
            "versus_mean_delta": macro if name == "macro" else 1.0,
            "versus_mean_low": macro - 0.1,
        }  # fmt: skip
        for name in SETS
    ]


def test_the_held_out_mean_picks_and_the_suite_does_not(monkeypatch):
    select = load(monkeypatch)
    args = argparse.Namespace(option="uniform_floor", values=[0.3, 0.5], seeds=[0, 1])
    rows = []
    for seed in args.seeds:
        # 0.3 is better on held-out validation; 0.5 has the larger suite macro Δ.
        rows += rows_for(select, "uniform_floor", 0.3, seed, (87.4, 43.0), macro=0.7)
        rows += rows_for(select, "uniform_floor", 0.5, seed, (87.3, 42.9), macro=1.0)
    body = select.table(rows, args)

    assert "picks **floor 0.3**, by 0.10 over floor 0.5 (per seed: 0.3, 0.3)" in body
    assert "STS-B validation alone picks floor 0.3" in body
    assert body.splitlines()[0].startswith("| floor | STS-B validation |")
    assert "| 0.5 | 87.30 ± 0.00 | 42.90 ± 0.00 | 65.10 ± 0.00 | 80.00 ± 0.00 | +1.00 ± 0.00 | 2 / 2 |" in body
    # Mean pooling's row is each score less its Δ to mean pooling.
    assert "| mean pooling (no head) | 86.40 ± 0.00 | 42.00 ± 0.00 | 64.20 ± 0.00 | 79.00 ± 0.00 |" in body


def test_the_default_option_keeps_the_penalty_names_its_records_were_made_with(monkeypatch):
    select = load(monkeypatch)
    assert select.label("uniform_penalty", 3, 0) == "lambda3-seed0"  # reports/select_penalty's run folders
    assert select.label("uniform_floor", 0.3, 2) == "floor0.3-seed2"
    assert select.symbol("uniform_penalty") == "λ" and select.symbol("num_heads") == "num_heads"


def test_each_config_and_option_gets_its_own_runs_and_record(monkeypatch):
    select = load(monkeypatch)
    assert select.destination("minilm_attention_uniform_stsb", "uniform_penalty")[:2] == (
        "reports/select_penalty", "penalty_selection")  # fmt: skip
    # The same option of another config must not reuse the penalty config's runs or overwrite its record.
    other = select.destination("minilm_attention_floor_stsb", "uniform_penalty")
    assert other[:2] == ("reports/select/minilm_attention_floor_stsb/uniform_penalty",
                         "selection_minilm_attention_floor_stsb_uniform_penalty")  # fmt: skip
    from_file = select.destination("configs/mine.yaml", "uniform_floor")
    assert from_file[:2] == ("reports/select/mine/uniform_floor", "selection_mine_uniform_floor")
    assert from_file[2] == "Choosing mine's uniform_floor on held-out validation data"
