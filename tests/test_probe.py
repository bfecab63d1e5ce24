"""Probes: a linear classifier reads a label back from each embedding; the query check of a clinician's search."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from poolhead.errors import UserValueError
from poolhead.evaluation import compare
from poolhead.evaluation.probe import ProbeDraws, ProbeSet, probe_metrics
from poolhead.evaluation.sets import load_any_set

#: 10 per status: 5 stratified folds hold out 2 of each, so every probe trains on balanced classes.
CONCEPTS = ["pneumonia", "fever", "cough", "rash", "fracture", "edema", "nausea", "anemia", "sepsis", "angina"]


def assertion_rows() -> list[tuple[str, str, str]]:
    """(sentence, concept, status): each concept present, absent and possible."""
    rows = []
    for concept in CONCEPTS:
        rows.append((f"Patient has {concept}.", concept, "present"))
        rows.append((f"Patient has no {concept}.", concept, "absent"))
        rows.append((f"Patient may have {concept}.", concept, "possible"))
    return rows


def probe_of(rows, with_concepts: bool = True) -> ProbeSet:
    sentences, concepts, labels = (list(column) for column in zip(*rows, strict=True))
    return ProbeSet("toy", sentences, labels, concepts if with_concepts else None)


def bag_of_words(texts: list[str], ignore: tuple[str, ...] = ()) -> torch.Tensor:
    words = [[w for w in t.lower().strip(".").split() if w not in ignore] for t in texts]
    vocabulary = sorted({w for ws in words for w in ws})
    return torch.tensor([[Counter(ws)[v] for v in vocabulary] for ws in words], dtype=torch.float32)


def score(probe: ProbeSet, encode, resamples: int = 100) -> dict:
    texts = probe.sentences()
    index = {t: i for i, t in enumerate(texts)}
    return probe_metrics(encode(texts), index, probe, ProbeDraws.of(probe, resamples, seed=0, confidence=0.95))


def test_a_vector_that_holds_the_label_is_read_back_and_one_that_does_not_scores_chance():
    probe = probe_of(assertion_rows(), with_concepts=False)
    # Word counts carry "no" and "may": a linear probe reads the status back from every held-out sentence.
    assert score(probe, bag_of_words)["balanced_accuracy"].value == pytest.approx(100.0)
    # The same vector for every sentence holds nothing: each fold's probe predicts one class, and balanced accuracy
    # is chance, 1/3 (with unbalanced training folds it would even fall below chance).
    constant = score(probe, lambda texts: torch.ones(len(texts), 4))["balanced_accuracy"]
    assert constant.value == pytest.approx(100 / 3)
    assert "query_accuracy" not in score(probe, bag_of_words)


def test_the_query_check_counts_a_sentence_nearer_its_own_status_query():
    probe = probe_of(assertion_rows())
    # "Patient has no fever." shares "no fever" with the query "no fever" and only "fever" with "fever".
    words = score(probe, bag_of_words)["query_accuracy"]
    assert words.value == pytest.approx(100.0)
    # Blind to "no", the two queries are one text: every sentence ties, and ties count half.
    blind = score(probe, lambda texts: bag_of_words(texts, ignore=("no",)))["query_accuracy"]
    assert blind.value == pytest.approx(50.0)
    assert blind.low == pytest.approx(50.0) and blind.high == pytest.approx(50.0)


def test_the_query_check_leaves_out_statuses_without_a_template_and_balances_the_rest():
    # 3 present sentences scored right, 2 absent ones wrong ("denies rash" shares "rash" with the present query
    # only): balanced (100 + 0) / 2, not 3 / 5.
    rows = [(f"Patient has {c}.", c, "present") for c in CONCEPTS[:3]]
    rows += [(f"Patient denies {c}.", c, "absent") for c in CONCEPTS[3:5]]
    rows += [(f"Patient may have {c}.", c, "possible") for c in CONCEPTS[:2]]
    probe = probe_of(rows)
    assert probe.queried() == [0, 1, 2, 3, 4]
    assert score(probe, bag_of_words)["query_accuracy"].value == pytest.approx(50.0)


def test_every_pooling_of_a_set_gets_the_same_folds():
    probe = probe_of(assertion_rows())
    first, second = ProbeDraws.of(probe, 10, 0, 0.95), ProbeDraws.of(probe, 10, 0, 0.95)
    assert np.array_equal(first.folds, second.folds)
    # Stratified: each fold holds out every status in the same share.
    for fold in np.unique(first.folds):
        held_out = Counter(np.asarray(probe.labels)[first.folds == fold])
        assert len(set(held_out.values())) == 1


def write_assertions(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "concept", "status"])
        writer.writerows(assertion_rows())
    return path


def test_a_probe_file_is_read_from_its_columns_and_refused_when_it_cannot_be_scored(tmp_path):
    data = write_assertions(tmp_path / "assertions.csv")
    probe = load_any_set(data, columns={"sentence": "text", "label": "status"})
    assert isinstance(probe, ProbeSet) and len(probe.queried()) == 2 * len(CONCEPTS)
    with pytest.raises(UserValueError, match="no label is one of the query templates' statuses"):
        templates = {"yes": "{concept}", "no": "no {concept}"}
        load_any_set(data, columns={"sentence": "text", "label": "status"}, query_templates=templates)
    lonely = tmp_path / "lonely.csv"
    lonely.write_text("sentence,label\nA.,0\nB.,0\nC.,1\n", encoding="utf-8")
    with pytest.raises(UserValueError, match="at least 2 classes with 2 sentences each"):
        ProbeDraws.of(load_any_set(lonely), 10, 0, 0.95)


def test_compare_puts_probe_sets_in_their_own_table(tiny_model_dir, tmp_path):
    from poolhead.evaluation.report import to_markdown

    data = write_assertions(tmp_path / "assertions.csv")
    comparison = compare([tiny_model_dir], [data], strategies=["mean", "cls"], resamples=30, show_progress_bar=False,
                         columns={"sentence": "text", "label": "status"})  # fmt: skip
    rows = comparison.rows_of("assertions")
    assert [r.task for r in rows] == ["probe", "probe"]
    for row in rows:
        for name in ("balanced_accuracy", "query_accuracy"):
            estimate = row.metrics[name]
            assert 0 <= estimate.low <= estimate.value <= estimate.high <= 100
    markdown = to_markdown(comparison)
    assert "## assertions (30 sentences, linear probe" in markdown
    assert "Balanced accuracy" in markdown and "Query check" in markdown


def test_a_sentence_and_its_negation_are_held_out_together():
    sentences = [f"Sentence {i}." for i in range(20)] + [f"Sentence {i} is not so." for i in range(20)]
    probe = ProbeSet("pairs", sentences, ["0"] * 20 + ["1"] * 20, groups=list(range(20)) * 2)
    folds = probe.folds(seed=0)
    assert np.array_equal(folds[:20], folds[20:])
    assert len(np.unique(folds)) == 5
