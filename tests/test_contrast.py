"""Contrast sets: keepers vs flippers of each premise, scored with known answers and through `poolhead compare`."""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from poolhead.cli import main
from poolhead.commands import compare as compare_command
from poolhead.errors import UserValueError
from poolhead.evaluation import compare
from poolhead.evaluation.contrast import ContrastSet, contrast_metrics
from poolhead.evaluation.sets import load_any_set
from poolhead.evaluation.stats import PairResamples

# (premise, keeper, flipper): a double negation keeps the meaning, a single one flips it.
TRIPLES = [
    ("The test is positive.", "The test is not not positive.", "The test is not positive."),
    ("The patient has a fever.", "The patient does not not have a fever.", "The patient does not have a fever."),
    ("The road is open.", "The road is not not open.", "The road is not open."),
    ("Sam likes tea.", "Sam does not not like tea.", "Sam does not like tea."),
    ("The door is locked.", "The door is not not locked.", "The door is not locked."),
    ("It rained today.", "It did not not rain today.", "It did not rain today."),
]


def contrast_of(triples) -> ContrastSet:
    premise, hypothesis, flips = [], [], []
    for p, keeper, flipper in triples:
        premise += [p, p]
        hypothesis += [keeper, flipper]
        flips += [0, 1]
    return ContrastSet("toy", premise, hypothesis, flips)


def bag_of_words(texts: list[str], ignore: tuple[str, ...] = ()) -> torch.Tensor:
    """A toy encoder: word counts, blind to the words in ``ignore``."""
    words = [[w for w in t.lower().strip(".").split() if w not in ignore] for t in texts]
    vocabulary = sorted({w for ws in words for w in ws})
    return torch.tensor([[Counter(ws)[v] for v in vocabulary] for ws in words], dtype=torch.float64)


def cosines(contrast: ContrastSet, encode) -> np.ndarray:
    texts = contrast.sentences()
    embeddings = encode(texts)
    index = {t: i for i, t in enumerate(texts)}
    first = embeddings[[index[t] for t in contrast.premise]]
    second = embeddings[[index[t] for t in contrast.hypothesis]]
    return F.cosine_similarity(first, second, dim=-1).numpy()


def metrics_of(contrast: ContrastSet, similarities: np.ndarray, resamples: int = 200) -> dict:
    draws = PairResamples(contrast.num_premises, resamples, seed=0)
    return {name: e for name, e in contrast_metrics(similarities, contrast, draws).items()}


def test_a_pooling_that_follows_meaning_scores_100_and_its_reverse_0():
    contrast = contrast_of(TRIPLES)
    closer = np.where(contrast.flips, 0.2, 0.9)  # every keeper nearer its premise than every flipper
    for similarities, expected in ((closer, 100.0), (-closer, 0.0)):
        metrics = metrics_of(contrast, similarities)
        for name in ("pairwise_accuracy", "strict_accuracy", "auroc"):
            assert metrics[name].value == pytest.approx(expected)
            assert metrics[name].low == pytest.approx(expected) and metrics[name].high == pytest.approx(expected)


def test_a_pooling_blind_to_not_ties_every_pair_and_scores_chance():
    contrast = contrast_of(TRIPLES)
    # Without "not", "X is not not Y" and "X is not Y" are the same bag: every (keeper, flipper) pair ties.
    metrics = metrics_of(contrast, cosines(contrast, lambda texts: bag_of_words(texts, ignore=("not",))))
    assert metrics["pairwise_accuracy"].value == pytest.approx(50.0)  # ties count half
    assert metrics["auroc"].value == pytest.approx(50.0)
    assert metrics["strict_accuracy"].value == pytest.approx(0.0)  # a tie is not "strictly closer"
    # Plain word counts see one "not" more in the keeper than in the flipper: word overlap ranks the flipper first.
    overlap = metrics_of(contrast, cosines(contrast, bag_of_words))
    assert overlap["pairwise_accuracy"].value == pytest.approx(0.0)


def test_pairwise_accuracy_averages_each_premises_share_and_strict_counts_premises():
    # Premise a: 2 keepers and 1 flipper, one keeper below the flipper: 1 of 2 pairs right, premise not strict.
    # Premise b: its one pair right. Each premise counts once: (1/2 + 1) / 2, not 2 of 3 pairs.
    contrast = ContrastSet("toy", ["a"] * 3 + ["b"] * 2, ["k1", "k2", "f", "k", "f"], [0, 0, 1, 0, 1])
    metrics = metrics_of(contrast, np.array([0.9, 0.1, 0.5, 0.8, 0.3]))
    assert metrics["pairwise_accuracy"].value == pytest.approx(75.0)
    assert metrics["strict_accuracy"].value == pytest.approx(50.0)


def test_intervals_resample_premises_not_hypotheses():
    rng = np.random.default_rng(3)
    contrast = contrast_of(TRIPLES * 2)  # premises repeat: the clusters are the 6 distinct premises
    contrast = ContrastSet("toy", [f"{p} {i // 2}" for i, p in enumerate(contrast.premise)], contrast.hypothesis,
                           contrast.flips)  # fmt: skip
    similarities = rng.uniform(size=len(contrast))
    draws = PairResamples(contrast.num_premises, 5, seed=0)
    metrics = contrast_metrics(similarities, contrast, draws)
    block = next(draws.index_blocks())
    for r, drawn in enumerate(block):
        # Resample r by hand: the drawn premises' hypotheses, a premise drawn twice counted twice.
        rows = [i for copy, premise in enumerate(drawn) for i in np.flatnonzero(contrast.premise_ids == premise)]
        premises = [f"{contrast.premise[i]}#{copy}" for copy, p in enumerate(drawn) for i in
                    np.flatnonzero(contrast.premise_ids == p)]  # fmt: skip
        by_hand = ContrastSet("r", premises, [contrast.hypothesis[i] for i in rows], contrast.flips[rows])
        expected = metrics_of(by_hand, similarities[rows], resamples=1)
        for name, estimate in metrics.items():
            if np.isfinite(estimate.samples[r]):
                assert estimate.samples[r] == pytest.approx(expected[name].value)


def write_contrast(path: Path, negated_column: str = "negated") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["premise", "hypothesis", negated_column])
        for premise, keeper, flipper in TRIPLES:
            writer.writerows([[premise, keeper, 0], [premise, flipper, 1]])
    return path


def test_columns_make_a_contrast_set_and_mapped_names_do_too(tmp_path):
    loaded = load_any_set(write_contrast(tmp_path / "toy.csv"))
    assert isinstance(loaded, ContrastSet) and loaded.num_premises == len(TRIPLES)
    mapped = load_any_set(write_contrast(tmp_path / "mapped.csv", "flipped"), columns={"negated": "flipped"})
    assert isinstance(mapped, ContrastSet) and mapped.flips.sum() == len(TRIPLES)


def test_a_contrast_set_without_both_kinds_per_premise_is_refused(tmp_path):
    path = tmp_path / "keepers.csv"
    path.write_text("premise,hypothesis,negated\nA.,B.,0\nC.,D.,0\n", encoding="utf-8")
    with pytest.raises(UserValueError, match="no premise has both"):
        load_any_set(path)
    path.write_text("premise,hypothesis,negated\nA.,B.,0\nA.,D.,yes\n", encoding="utf-8")
    with pytest.raises(UserValueError, match="row 2: negated is 'yes'"):
        load_any_set(path)


def test_compare_scores_a_contrast_set_for_every_fixed_strategy(tiny_model_dir, tmp_path):
    comparison = compare([tiny_model_dir], [write_contrast(tmp_path / "toy.csv")], resamples=50,
                         show_progress_bar=False)  # fmt: skip
    rows = comparison.rows_of("toy")
    assert rows and all(r.task == "contrast" and r.pairs == 2 * len(TRIPLES) for r in rows)
    assert sum(r.best_fixed for r in rows) == 1
    for row in rows:
        pairwise = row.metrics["pairwise_accuracy"]
        assert 0 <= pairwise.low <= pairwise.value <= pairwise.high <= 100
        assert pairwise.samples.shape == (50,)


def test_the_cli_maps_columns_and_writes_the_contrast_table(tiny_model_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    compare_command.add_arguments(parser)
    data = write_contrast(tmp_path / "toy.csv", "flipped")
    argv = ["--model", tiny_model_dir, "--data", str(data), "--data-columns", "negated=flipped",
            "--output", str(tmp_path / "out"), "--resamples", "20", "--no-progress", "--strategy", "mean",
            "--strategy", "cls"]  # fmt: skip
    assert compare_command.run(parser.parse_args(argv)) == 0
    printed = capsys.readouterr().out
    assert "Pairwise accuracy" in printed and "Strict accuracy" in printed and "AUROC" in printed
    with (tmp_path / "out" / "comparison.csv").open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    assert {r["strategy"] for r in records} == {"mean", "cls"}
    assert all(0 <= float(r["pairwise_accuracy"]) <= 100 for r in records)
    bad = ["--model", tiny_model_dir, "--data", str(data), "--data-columns", "negated", "--output", str(tmp_path)]
    assert main(["compare", *bad]) == 2  # as a user runs it: cli.main reports the error once
    assert "--data-columns got 'negated'" in capsys.readouterr().err


def test_a_contrast_set_in_a_suite_gets_its_own_line_and_stays_out_of_the_macro(tiny_model_dir, tmp_path):
    from synthetic_pairs import write_pairs

    from poolhead.evaluation import suite_sets, summarize_suite, write_suite_report
    from poolhead.export import export_sentence_transformer
    from poolhead.pooling import AttentionPooling

    head = AttentionPooling(32, num_heads=2)
    torch.nn.init.normal_(head.scorer.weight, std=0.5, generator=torch.Generator().manual_seed(0))
    model = export_sentence_transformer(tiny_model_dir, head, tmp_path / "my-head")
    (tmp_path / "sts-a").mkdir(), (tmp_path / "negation").mkdir()
    write_pairs(tmp_path / "sts-a" / "test.csv", "score", 30, 0)
    write_contrast(tmp_path / "negation" / "test.csv")
    listing = tmp_path / "mini.suite"
    listing.write_text("sts-a\nnegation\n", encoding="utf-8")
    comparison = compare([str(model)], suite_sets(str(listing)), resamples=100, show_progress_bar=False)
    (summary,) = summarize_suite(comparison)
    assert [(s.dataset, s.task, s.metric) for s in summary.sets] == [
        ("sts-a", "score", "spearman"),
        ("negation", "contrast", "pairwise_accuracy"),
    ]
    assert summary.macro_sets == ["sts-a"]  # pairwise accuracy is never averaged with Spearman
    negation = summary.sets[1]
    mean = next(r for r in comparison.rows_of("negation") if r.strategy == "mean" and r.kind == "fixed")
    assert negation.versus_mean.delta == pytest.approx(negation.score.value - mean.primary.value)
    paths = write_suite_report([summary], tmp_path / "out", comparison.confidence)
    assert "| negation " in paths["md"].read_text(encoding="utf-8")
    assert "Pairwise accuracy" in paths["md"].read_text(encoding="utf-8")
    assert paths["png"].stat().st_size > 0


def test_the_ood_suite_lists_semantoneg_beside_the_sts_sets(tmp_path):
    from poolhead.evaluation import suite_sets

    for name in ("sts12", "sts13", "sts14", "sts15", "sts16", "msrp", "semantoneg"):
        (tmp_path / name).mkdir()  # local copies: a set the data root lacks is read from the hub
    assert [Path(p).name for p in suite_sets("ood", tmp_path)][-1] == "semantoneg"


def test_a_model_card_takes_contrast_and_probe_results():
    from poolhead.export.card_data import eval_results

    contrast = {"dataset": "semantoneg", "task": "contrast", "metrics": {"pairwise_accuracy": 17.7}}
    probe = {"dataset": "negation", "task": "probe", "metrics": {"balanced_accuracy": 90.0}}
    found = eval_results({"results": [contrast, probe]})
    assert [(r.task_name, r.metric_type, r.metric_value) for r in found] == [
        ("Contrast Set", "pairwise_accuracy", 0.177),
        ("Linear Probe", "balanced_accuracy", 0.9),
    ]
