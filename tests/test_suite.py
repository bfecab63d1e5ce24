"""`poolhead compare --suite`: per-set Δs, a macro-average Δ whose interval keeps its promise, the worst set."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from catalogue import trained_looking
from synthetic_pairs import write_pairs

from poolhead.evaluation import compare, suite_sets, summarize_suite, write_suite_report
from poolhead.evaluation.stats import PairResamples
from poolhead.evaluation.suite import stratified_macro_difference
from poolhead.pooling import AttentionPooling


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory) -> Path:
    """Two score sets and a label set, listed in a suite file with paths relative to it (and one not listed)."""
    root = tmp_path_factory.mktemp("suite")
    sets = (("sts-a", "score", 0), ("sts-b", "score", 5), ("para", "label", 9), ("in-domain", "score", 2))
    for name, column, offset in sets:
        (root / name).mkdir()
        write_pairs(root / name / "test.csv", column, 30, offset)
        if column == "label":
            write_pairs(root / name / "validation.csv", column, 20, offset + 1)
    listing = root / "mini.suite"
    listing.write_text("# a tiny suite\nsts-a\n\nsts-b\npara\n", encoding="utf-8")
    return listing


@pytest.fixture(scope="module")
def exported_head(tiny_model_dir, tmp_path_factory) -> Path:
    from poolhead.export import export_sentence_transformer

    head = trained_looking(AttentionPooling(32, num_heads=2), seed=0)
    return export_sentence_transformer(tiny_model_dir, head, tmp_path_factory.mktemp("exports") / "my-head")


def test_stratified_interval_covers_a_known_macro_difference_95_percent_of_the_time():
    # 400 simulated suites of three sets; per pair a model and a baseline score whose true mean
    # difference is known per set, the metric being the mean. The macro interval must cover the
    # mean of the true differences at its stated rate: too narrow (sets' resamples not
    # independent) or too wide (e.g. averaging the per-set intervals) both miss 95 +- 3 %.
    sizes, true_deltas, suites, resamples = (40, 80, 120), np.array([0.3, -0.2, 0.5]), 400, 500
    rng = np.random.default_rng(12345)
    covered = 0
    for suite in range(suites):
        models, baselines = [], []
        for size, delta in zip(sizes, true_deltas, strict=True):
            baseline = rng.normal(0.0, 1.0, size)
            model = baseline + delta + rng.normal(0.0, 1.0, size)  # paired: shares the baseline's noise
            draws = PairResamples(size, resamples, seed=suite)
            for values, out in ((model, models), (baseline, baselines)):
                out.append(draws.estimate(values.mean() / 100, lambda idx, v=values: v[idx].mean(axis=1) / 100))
        difference = stratified_macro_difference(models, baselines, seeds=[3 * suite + k for k in range(3)])
        covered += difference.low <= true_deltas.mean() <= difference.high
    assert 0.92 <= covered / suites <= 0.98, f"coverage {covered / suites:.3f}"


def test_macro_average_is_the_mean_of_the_score_sets_deltas(tiny_model_dir, exported_head, suite_file, tmp_path):
    sets = suite_sets(str(suite_file))
    comparison = compare([str(exported_head)], sets, resamples=200, show_progress_bar=False)
    (summary,) = summarize_suite(comparison)

    assert [s.dataset for s in summary.sets] == ["sts-a", "sts-b", "para"]
    assert summary.macro_sets == ["sts-a", "sts-b"]  # accuracy is not averaged with Spearman
    scores = [s for s in summary.sets if s.task == "score"]
    for macro, versus in ((summary.macro_versus_best, "versus_best"), (summary.macro_versus_mean, "versus_mean")):
        assert macro.delta == pytest.approx(np.mean([getattr(s, versus).delta for s in scores]))
        assert macro.low <= macro.delta <= macro.high
    for s in summary.sets:
        rows = {r.name: r for r in comparison.rows_of(s.dataset)}
        assert s.versus_best.delta == pytest.approx(rows["my-head"].primary.value - rows[s.best_fixed].primary.value)
        assert s.versus_mean.delta == pytest.approx(rows["my-head"].primary.value - rows["mean"].primary.value)
        assert rows[s.best_fixed].best_fixed
    assert summary.worst.versus_best.delta == min(s.versus_best.delta for s in summary.sets)

    paths = write_suite_report([summary], tmp_path, comparison.confidence)
    records = json.loads(paths["json"].read_text())["rows"]
    assert [r["set"] for r in records] == ["sts-a", "sts-b", "para", "macro"]
    assert records[-1]["versus_best_delta"] == pytest.approx(summary.macro_versus_best.delta)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def run_cli(argv: list[str]) -> int:
    """The command as a user runs it: cli.main reports user errors once."""
    from poolhead.cli import main

    return main(["compare", *argv])


def test_cli_suite_writes_the_summary_beside_the_comparison(exported_head, suite_file, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["--model", str(exported_head), "--suite", str(suite_file), "--output", str(out), "--resamples", "100"]
    argv += ["--data", str(suite_file.parent / "in-domain")]  # listed in the summary, not in its macro
    assert run_cli(argv + ["--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "## suite" in printed and "macro (sts-a, sts-b)" in printed and "worst set" in printed
    for name in ("comparison.md", "comparison.png", "suite.md", "suite.csv", "suite.json", "suite.png"):
        assert (out / name).stat().st_size > 0, name
    with (out / "suite.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["set"] for row in rows] == ["in-domain", "sts-a", "sts-b", "para", "macro"]
    assert rows[-1]["macro_sets"] == "sts-a sts-b"


def test_a_named_suite_stands_for_its_sets_and_an_unknown_one_names_the_fix(tmp_path, capsys):
    names = ("sts12", "sts13", "sts14", "sts15", "sts16", "msrp", "semantoneg")
    for name in names:  # local copies: a set the data root lacks is read from the hub (test_suite_sources)
        (tmp_path / "data" / name).mkdir(parents=True)
    assert suite_sets("ood", tmp_path / "data") == [str(tmp_path / "data" / n) for n in names]
    argv = ["--model", "x", "--suite", "oodd", "--output", str(tmp_path)]
    assert run_cli(argv) == 2
    assert "unknown suite 'oodd'; choose one of ood" in capsys.readouterr().err


@pytest.fixture(scope="module")
def reference_head(tiny_model_dir, tmp_path_factory) -> Path:
    from poolhead.export import export_sentence_transformer

    head = trained_looking(AttentionPooling(32, num_heads=2), seed=1)
    return export_sentence_transformer(tiny_model_dir, head, tmp_path_factory.mktemp("exports") / "their-head")


def test_a_reference_model_is_measured_set_by_set_and_over_the_macro(exported_head, reference_head, suite_file):
    sets = suite_sets(str(suite_file))
    comparison = compare([str(exported_head), str(reference_head)], sets, resamples=200, show_progress_bar=False)
    summaries = {s.model: s for s in summarize_suite(comparison, references={"my-head": "their-head"})}

    mine, theirs = summaries["my-head"], summaries["their-head"]
    assert mine.reference == "their-head" and theirs.reference is None and theirs.macro_versus_reference is None
    for s in mine.sets:
        rows = {r.name: r for r in comparison.rows_of(s.dataset)}
        assert s.versus_reference.delta == pytest.approx(
            rows["my-head"].primary.value - rows["their-head"].primary.value
        )
        assert s.versus_reference.low <= s.versus_reference.delta <= s.versus_reference.high
    scores = [s.versus_reference.delta for s in mine.sets if s.task == "score"]
    assert mine.macro_versus_reference.delta == pytest.approx(np.mean(scores))
    with pytest.raises(ValueError, match="reference models \\['nobody'\\] are not in the comparison"):
        summarize_suite(comparison, references={"my-head": "nobody"})


def test_cli_reference_pairs_models_in_order_and_a_miscount_stops_before_encoding(
    exported_head, reference_head, suite_file, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "report"
    argv = ["--model", str(exported_head), "--reference", str(reference_head), "--suite", str(suite_file)]
    assert run_cli(argv + ["--output", str(out), "--resamples", "100", "--no-progress"]) == 0
    assert "Δ vs reference" in capsys.readouterr().out
    rows = json.loads((out / "suite.json").read_text())["rows"]
    mine = [r for r in rows if r["model"] == "my-head"]
    assert [r["reference"] for r in mine] == ["their-head"] * 4 and mine[-1]["set"] == "macro"
    assert mine[-1]["versus_reference_delta"] == pytest.approx(
        np.mean([r["versus_reference_delta"] for r in mine if r["task"] == "score" and r["set"] != "macro"])
    )

    def no_encoding(*args, **kwargs):
        raise AssertionError("compare ran before the references were checked")

    monkeypatch.setattr(sys.modules["poolhead.evaluation.compare"], "compare", no_encoding)
    argv = ["--model", str(exported_head), "--model", str(exported_head), "--reference", str(reference_head)]
    argv += ["--reference", str(reference_head), "--reference", str(reference_head), "--suite", str(suite_file)]
    assert run_cli(argv + ["--output", str(tmp_path / "x")]) == 2
    assert "--reference was given 3 times" in capsys.readouterr().err
    assert run_cli(["--model", str(exported_head), "--reference", str(reference_head), "--output", str(tmp_path)]) == 2
    assert "add --suite ood" in capsys.readouterr().err
