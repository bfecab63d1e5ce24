"""`poolhead compare`: learned heads beside every fixed strategy, with figures checked independently."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from catalogue import trained_looking
from quiet_fit import saved_checkpoint
from scipy import stats as scipy_stats
from synthetic_pairs import sentence, write_pairs

from poolhead import Encoder
from poolhead.backbone import load_backbone
from poolhead.data.sources import seeded_subset
from poolhead.evaluation import EmbeddingModel, FixedStrategies, compare, write_report
from poolhead.pooling import FIXED_POOLERS, AttentionPooling

N_FIXED = len(FIXED_POOLERS)


@pytest.fixture(scope="module")
def data_folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval-data")
    scores, labels = root / "sts-mini", root / "para-mini"
    scores.mkdir(), labels.mkdir()
    write_pairs(scores / "test.csv", "score", 24, 0)
    write_pairs(scores / "train.csv", "score", 4, 50)  # never read
    write_pairs(labels / "test.csv", "label", 24, 7)
    write_pairs(labels / "validation.csv", "label", 20, 13)
    return {"score": scores, "label": labels}


def trained_looking_head(hidden_size: int) -> AttentionPooling:
    return trained_looking(AttentionPooling(hidden_size, num_heads=2))


@pytest.fixture(scope="module")
def exported_head(tiny_model_dir, tmp_path_factory) -> Path:
    """What a user has after `poolhead export`: a sentence-transformers folder of a trained head."""
    from poolhead.export import export_sentence_transformer

    out = tmp_path_factory.mktemp("exports") / "attention-head"
    return export_sentence_transformer(tiny_model_dir, trained_looking_head(32), out)


def run_cli(argv: list[str]) -> int:
    """The command as a user runs it: cli.main reports user errors once."""
    from poolhead.cli import main

    return main(["compare", *argv])


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_cli_writes_table_markdown_csv_and_chart(tiny_model_dir, exported_head, data_folders, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["--model", tiny_model_dir, "--model", str(exported_head), "--output", str(out)]
    argv += ["--data", str(data_folders["score"]), "--data", str(data_folders["label"]), "--resamples", "200"]
    assert run_cli(argv + ["--no-progress"]) == 0

    printed = capsys.readouterr().out
    assert "## sts-mini" in printed and "## para-mini" in printed
    assert "attention-head (attention)" in printed and "(best fixed)" in printed
    assert (out / "comparison.md").read_text().count("## ") == 2
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = read_rows(out / "comparison.csv")
    # The HF folder and the export share one backbone: its fixed strategies appear once per set.
    assert len(rows) == 2 * (N_FIXED + 1)
    assert {(r["dataset"], r["name"]) for r in rows} == {
        (d, n) for d in ("sts-mini", "para-mini") for n in [*FIXED_POOLERS, "attention-head"]
    }
    for dataset, metric in (("sts-mini", "spearman"), ("para-mini", "accuracy")):
        fixed = [r for r in rows if r["dataset"] == dataset and r["kind"] == "fixed"]
        best = [r for r in fixed if r["best_fixed"] == "True"]
        assert len(best) == 1 and float(best[0][metric]) == max(float(r[metric]) for r in fixed)
        (model,) = [r for r in rows if r["dataset"] == dataset and r["kind"] == "model"]
        assert model["versus"] == best[0]["name"]
        assert float(model["delta"]) == pytest.approx(float(model[metric]) - float(best[0][metric]))
        assert 0 < float(model["p_value"]) <= 1
        assert float(model[f"{metric}_low"]) <= float(model[metric]) <= float(model[f"{metric}_high"])


def test_one_backbone_pass_pools_like_one_encoder_per_strategy(tiny_model_dir):
    texts = [sentence(i) for i in range(40)]
    backbone = load_backbone(tiny_model_dir)
    pooled = FixedStrategies(backbone).encode(texts, batch_size=16)
    assert list(pooled) == list(FIXED_POOLERS)
    for strategy, embeddings in pooled.items():
        torch.testing.assert_close(embeddings, Encoder(backbone, pooler=strategy).encode(texts), atol=1e-5, rtol=0)


def test_figures_equal_scipy_on_the_cosines_of_each_strategy(tiny_model_dir, exported_head, data_folders):
    strategies = ["mean", "max", "first_last_avg"]
    comparison = compare([str(exported_head)], [data_folders["score"]], strategies, resamples=50,
                         show_progress_bar=False)  # fmt: skip
    test = read_rows(data_folders["score"] / "test.csv")
    gold = [float(r["score"]) for r in test]
    figures = {row.name: row.metrics for row in comparison.rows}
    head = Encoder(tiny_model_dir, pooler=trained_looking_head(32))
    for name, encoder in [*((s, Encoder(tiny_model_dir, pooler=s)) for s in strategies), ("attention-head", head)]:
        a, b = encoder.encode([r["sentence1"] for r in test]), encoder.encode([r["sentence2"] for r in test])
        cosines = torch.nn.functional.cosine_similarity(a.double(), b.double()).numpy()
        assert figures[name]["spearman"].value == pytest.approx(100 * scipy_stats.spearmanr(cosines, gold)[0], abs=1e-4)
        assert figures[name]["pearson"].value == pytest.approx(100 * scipy_stats.pearsonr(cosines, gold)[0], abs=1e-4)


def test_label_thresholds_come_from_validation_pairs(tiny_model_dir, data_folders):
    from sentence_transformers.sentence_transformer.evaluation import BinaryClassificationEvaluator as Evaluator

    comparison = compare([tiny_model_dir], [data_folders["label"]], strategies=["mean"], show_progress_bar=False)
    (row,) = comparison.rows
    encoder = Encoder(tiny_model_dir, pooler="mean")

    def cosines(split: str) -> tuple[np.ndarray, np.ndarray]:
        rows = read_rows(data_folders["label"] / f"{split}.csv")
        a, b = encoder.encode([r["sentence1"] for r in rows]), encoder.encode([r["sentence2"] for r in rows])
        return torch.nn.functional.cosine_similarity(a, b).numpy(), np.array([int(r["label"]) for r in rows])

    validation, validation_labels = cosines("validation")
    _, threshold = Evaluator.find_best_acc_and_threshold(validation, validation_labels, True)
    test, test_labels = cosines("test")
    assert row.thresholds.chosen_on == "validation"
    assert row.thresholds.accuracy == pytest.approx(threshold, abs=1e-6)
    expected = 100 * np.mean((test >= threshold) == (test_labels == 1))
    assert row.metrics["accuracy"].value == pytest.approx(expected)
    assert comparison.notes == []


def test_a_lone_label_file_says_its_thresholds_were_tuned_on_test(tiny_model_dir, data_folders, tmp_path):
    comparison = compare(
        [tiny_model_dir], [data_folders["label"] / "test.csv"], strategies=["cls", "mean"], show_progress_bar=False
    )
    assert {row.thresholds.chosen_on for row in comparison.rows} == {"test"}
    assert "optimistic" in comparison.notes[0]
    assert "optimistic" in write_report(comparison, tmp_path)["markdown"].read_text()


def test_same_seed_gives_identical_reports(tiny_model_dir, data_folders, tmp_path):
    head = EmbeddingModel.from_encoder(Encoder(tiny_model_dir, pooler=trained_looking_head(32)), "my-head")

    def report(seed: int, folder: str) -> str:
        result = compare([head], [data_folders["score"]], resamples=100, seed=seed, show_progress_bar=False)
        return write_report(result, tmp_path / folder)["csv"].read_text()

    assert report(0, "a") == report(0, "b")
    assert report(0, "a") != report(1, "c")


def test_checkpoint_is_compared_like_its_encoder(tiny_model_dir, data_folders, tmp_path):

    from poolhead.training import module

    model = module.PoolingModule(backbone=tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2})
    model.pooler.load_state_dict(trained_looking_head(32).state_dict())
    checkpoint = saved_checkpoint(model, tmp_path / "head.ckpt")

    comparison = compare([str(checkpoint)], [data_folders["score"]], strategies=["mean"], resamples=50,
                         show_progress_bar=False)  # fmt: skip
    (row,) = [r for r in comparison.rows if r.kind == "model"]
    assert (row.name, row.strategy, row.versus) == ("head", "attention", "mean")
    direct = compare([EmbeddingModel.from_encoder(Encoder(model.backbone, pooler=model.pooler))],
                     [data_folders["score"]], strategies=["mean"], resamples=50, show_progress_bar=False)  # fmt: skip
    assert row.metrics["spearman"].value == pytest.approx(direct.rows[-1].metrics["spearman"].value, abs=1e-6)


def test_cli_errors_name_the_fix(tiny_model_dir, data_folders, tmp_path, capsys):
    base = ["--model", tiny_model_dir, "--output", str(tmp_path)]
    assert run_cli(base + ["--data", str(data_folders["score"]), "--strategy", "attention"]) == 2
    assert "learned head" in capsys.readouterr().err
    assert run_cli(base + ["--data", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


@pytest.mark.integration
def test_mean_pooling_figures_agree_with_sentence_transformers_evaluator(minilm_path, data_dir):
    """poolhead's Spearman/Pearson equal EmbeddingSimilarityEvaluator's on the packaged MiniLM (mean + Normalize)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    comparison = compare([minilm_path], [data_dir / "stsb"], strategies=["mean"], limit=200, resamples=100,
                         show_progress_bar=False)  # fmt: skip
    file_rows = read_rows(data_dir / "stsb" / "test.csv")
    test = [file_rows[i] for i in seeded_subset(len(file_rows), 200, seed=0)]  # the pairs compare's --limit takes
    evaluator = EmbeddingSimilarityEvaluator(
        [r["sentence1"] for r in test], [r["sentence2"] for r in test], [float(r["score"]) for r in test],
        main_similarity="cosine", write_csv=False,
    )  # fmt: skip
    expected = evaluator(SentenceTransformer(minilm_path, device="cpu"))
    rows = {row.kind: row for row in comparison.rows}
    for row in (rows["fixed"], rows["model"]):  # poolhead's mean pooling, and the packaged model as users load it
        assert row.metrics["spearman"].value == pytest.approx(100 * expected["spearman_cosine"], abs=1e-4)
        assert row.metrics["pearson"].value == pytest.approx(100 * expected["pearson_cosine"], abs=1e-4)
    assert rows["model"].difference.p_value == 1.0  # the packaged model *is* mean pooling


def test_a_head_on_the_compared_backbone_is_pooled_from_its_one_pass(tiny_model_dir, data_folders):
    import dataclasses

    head = EmbeddingModel.from_encoder(Encoder(tiny_model_dir, pooler=trained_looking_head(32)), "my-head")
    own_pass = dataclasses.replace(head, head_only=False)  # encodes the texts itself, as its users do

    def no_second_pass(*args):
        raise AssertionError("the head ran the backbone again")

    head.encode = no_second_pass
    figures = [
        next(
            r
            for r in compare(
                [m], [data_folders["score"]], strategies=["mean"], resamples=50, show_progress_bar=False
            ).rows
            if r.kind == "model"
        ).metrics  # fmt: skip
        for m in (head, own_pass)
    ]
    for metric in ("spearman", "pearson"):
        assert figures[0][metric].value == pytest.approx(figures[1][metric].value, abs=1e-6)
