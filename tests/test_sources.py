"""Data from anywhere: a folder laid out as a hub dataset repository (two subsets), column mappings,
(anchor, positive, negative) tuples trained with hard negatives, NLI labels, and the shape report."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from quiet_fit import quiet_fit
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from poolhead.data import SentencePairDataModule
from poolhead.training.losses import InBatchNegativesLoss
from poolhead.training.module import PoolingModule

pytestmark = pytest.mark.usefixtures("one_thread")

CARD = """---
configs:
- config_name: pair-class
  data_files:
  - split: train
    path: pair-class/train.csv
  - split: dev
    path: pair-class/dev.csv
- config_name: triplet
  data_files:
  - split: train
    path: triplet/train-*.csv
  - split: dev
    path: triplet/dev.csv
---
# nli-like: premise / hypothesis / label (0 entailment, 1 neutral, 2 contradiction), and triplets
"""
SUBJECTS = ["A man", "A woman", "Two children", "A dog", "An old man", "A girl", "Three players", "A cat"]
ACTIONS = ["plays the guitar", "rides a bike", "cooks dinner", "reads a book", "runs in a park", "sings a song"]


def nli_rows(count: int, offset: int = 0) -> list[list]:
    rows = []
    for i in range(offset, offset + count):
        subject, action = SUBJECTS[i % len(SUBJECTS)], ACTIONS[(i // len(SUBJECTS)) % len(ACTIONS)]
        rows.append([f"{subject} {action}.", f"{subject} {action} today.", 0])
        rows.append([f"{subject} {action}.", f"Someone is outside, {i}.", 1])
        rows.append([f"{subject} {action}.", f"Nobody {action}, {i}.", 2])
    return rows


def triplet_rows(count: int, offset: int = 0) -> list[list]:
    return [
        [f"{SUBJECTS[i % 8]} {ACTIONS[i % 6]} ({i}).", f"{SUBJECTS[i % 8]} is {ACTIONS[i % 6]}.", f"Nobody, {i}."]
        for i in range(offset, offset + count)
    ]


def write(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def hub_folder(tmp_path: Path) -> Path:
    """A local folder laid out as a hub dataset repository, with two subsets and their own column names."""
    folder = tmp_path / "nli-like"
    folder.mkdir()
    (folder / "README.md").write_text(CARD, encoding="utf-8")
    write(folder / "pair-class" / "train.csv", ["premise", "hypothesis", "label"], nli_rows(16))
    write(folder / "pair-class" / "dev.csv", ["premise", "hypothesis", "label"], nli_rows(4, offset=16))
    header = ["anchor", "positive", "negative"]
    write(folder / "triplet" / "train-00000.csv", header, triplet_rows(24))  # two shards: one split
    write(folder / "triplet" / "train-00001.csv", header, triplet_rows(8, offset=24))
    write(folder / "triplet" / "dev.csv", header, triplet_rows(8, offset=40))
    return folder


def hub_data(folder: Path, tokenizer: str, subset: str, **options) -> SentencePairDataModule:
    return SentencePairDataModule(str(folder), tokenizer=tokenizer, subset=subset, validation_split="dev", **options)


def test_hub_layout_folder_loads_each_subset_with_a_column_mapping(hub_folder, tiny_model_dir, caplog):
    columns = {"sentence1": "premise", "sentence2": "hypothesis", "label": "label"}
    pairs = hub_data(hub_folder, tiny_model_dir, "pair-class", columns=columns, test_split="dev")
    pairs.setup("fit")
    assert pairs.label_kind == "label" and pairs.num_labels == 3
    assert len(pairs.pairs["train"]) == 48 and len(pairs.pairs["validation"]) == 12
    first = pairs.pairs["train"]
    assert pairs.sentences[first.ids_a[0]] == "A man plays the guitar."
    assert pairs.sentences[first.ids_b[0]] == "A man plays the guitar today."

    triplets = hub_data(hub_folder, tiny_model_dir, "triplet")
    caplog.clear()
    with caplog.at_level("INFO"):
        triplets.setup("fit")
    assert triplets.label_kind == "positive" and len(triplets.pairs["train"]) == 32  # both shards
    assert len(triplets.pairs["train"].negatives) == 1
    # The shape is reported once per data set, from its columns.
    assert caplog.messages.count("nli-like/triplet: 3 columns -> anchor, positive, 1 negative") == 1

    batch = next(iter(triplets.val_dataloader()))
    assert [side["input_ids"].shape[0] for side in batch["features_negatives"]] == [8]


def test_unknown_subset_and_unknown_column_name_what_exists(hub_folder, tiny_model_dir):
    with pytest.raises(ValueError, match=r"subset 'pairs'.*Available: \['pair-class', 'triplet'\]"):
        hub_data(hub_folder, tiny_model_dir, "pairs").setup("fit")
    mapping = {"sentence1": "premise", "sentence2": "hypotesis"}
    expected = (
        r"columns.sentence2 names column 'hypotesis', but hub dataset .*nli-like \(pair-class\), split train has "
        r"columns premise, hypothesis, label; set columns.sentence2 to one of them"
    )
    with pytest.raises(ValueError, match=expected):
        hub_data(hub_folder, tiny_model_dir, "pair-class", columns=mapping).setup("fit")
    # Without a mapping, the error says which columns are missing and how to map them.
    with pytest.raises(ValueError, match=r"missing column\(s\) sentence1, sentence2.*found columns premise"):
        hub_data(hub_folder, tiny_model_dir, "pair-class").setup("fit")


def test_column_mapping_on_a_local_csv_with_its_own_names(tmp_path, tiny_model_dir):
    rows = [["Patient has fever.", "Patient is febrile.", 4.5], ["No pain.", "Severe pain.", 0.5]]
    write(tmp_path / "notes" / "test.csv", ["note_a", "note_b", "similarity"], rows)
    columns = {"sentence1": "note_a", "sentence2": "note_b", "score": "similarity"}
    data = SentencePairDataModule(str(tmp_path / "notes"), tokenizer=tiny_model_dir, columns=columns, score_scale=5.0)
    data.setup("test")
    assert data.label_kind == "score" and data.pairs["test"].labels == pytest.approx([0.9, 0.1])
    with pytest.raises(ValueError, match="columns maps unknown role 'text'; the roles are sentence1, sentence2"):
        SentencePairDataModule(str(tmp_path / "notes"), tokenizer=tiny_model_dir, columns={"text": "x"}).setup("test")
    with pytest.raises(ValueError, match="subset='pair' was given but .*notes is a folder of split files"):
        SentencePairDataModule(str(tmp_path / "notes"), tokenizer=tiny_model_dir, subset="pair").setup("test")


def test_hard_negatives_loss_equals_sentence_transformers_mnrl():
    torch.manual_seed(0)
    anchors, positives, negatives_1, negatives_2 = torch.randn(4, 6, 16).unbind(0)
    labels = torch.ones(6, dtype=torch.long)
    ours = InBatchNegativesLoss(scale=20.0)(anchors, positives, labels, [negatives_1, negatives_2])
    theirs = MultipleNegativesRankingLoss(torch.nn.Identity(), scale=20.0).compute_loss_from_embeddings(
        [anchors, positives, negatives_1, negatives_2], labels
    )
    torch.testing.assert_close(ours, theirs)
    # The negatives count: without them the loss is another (smaller: fewer candidates).
    assert InBatchNegativesLoss(scale=20.0)(anchors, positives, labels) < ours


def test_triplets_train_with_their_hard_negatives(hub_folder, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "cache"))
    data = hub_data(hub_folder, tiny_model_dir, "triplet", batch_size=8)
    model = PoolingModule(tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2}, loss="in_batch_negatives")
    seen = []
    original = model.loss.forward
    model.loss.forward = lambda a, b, labels, negatives=None: (
        seen.append(len(negatives or [])) or original(a, b, labels, negatives)
    )
    trainer = quiet_fit(model, data, tmp_path)
    assert seen and set(seen) == {1}  # every training and validation batch scored its negative
    assert model.loss.last_num_candidates == 2 * 8  # the batch's positives and its negatives
    assert 0.0 <= float(trainer.callback_metrics["val/accuracy"]) <= 100.0  # positive closer than the negative
    with pytest.raises(ValueError, match="holds \\(anchor, positive\\) pairs without a score or label; use in_batch"):
        quiet_fit(PoolingModule(tiny_model_dir, pooler_kwargs={"num_heads": 2}, loss="cosent"), data, tmp_path)


def test_nli_three_classes_train_with_pair_classification(hub_folder, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "cache"))
    columns = {"sentence1": "premise", "sentence2": "hypothesis"}
    data = hub_data(hub_folder, tiny_model_dir, "pair-class", columns=columns, batch_size=12)
    model = PoolingModule(tiny_model_dir, pooler_kwargs={"num_heads": 2}, loss="pair_classification", num_labels=3)
    trainer = quiet_fit(model, data, tmp_path, epochs=1)
    assert model.loss.classifier.out_features == 3
    assert {"val/accuracy", "val/f1"} <= set(trainer.callback_metrics)
    with pytest.raises(ValueError, match="data has 3 classes but the model was built with num_labels=2"):
        quiet_fit(
            PoolingModule(tiny_model_dir, pooler_kwargs={"num_heads": 2}, loss="pair_classification"), data, tmp_path
        )
