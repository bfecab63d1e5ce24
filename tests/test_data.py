"""SentencePairDataModule on the shared STS-B / MSRP files and on small files written here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from synthetic_pairs import LABEL_HEADER, write_rows
from torch.utils.data import DistributedSampler

from poolhead.backbone import load_backbone
from poolhead.data import LengthGroupedBatchSampler, SentencePairDataModule


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


GOOD_ROWS = [
    ["A man is playing a guitar.", "A man plays the guitar.", 0.9],
    ["A woman is slicing an onion.", "A dog runs in the park.", 0.0],
    ["Two kids play football.", "Children are playing soccer.", 0.75],
    ["A man is playing a guitar.", "A cat sleeps.", 0.05],
]


@pytest.fixture(scope="module")
def stsb(data_dir, minilm_path):
    """The whole of STS-B, tokenized with the packaged MiniLM's tokenizer (a sentence-transformers folder)."""
    data = SentencePairDataModule(str(data_dir / "stsb"), tokenizer=minilm_path, batch_size=8)
    data.setup()
    return data


def batches_of(loader) -> list[list[int]]:
    return [batch["pair_ids"].tolist() for batch in loader]


# --- real data ------------------------------------------------------------------------------


def test_stsb_batch_holds_the_file_pairs_tokenized(stsb, data_dir):
    rows = read_rows(data_dir / "stsb" / "train.csv")
    batch = next(iter(stsb.train_dataloader()))
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (8,)
    for key in ("sentence_ids_a", "sentence_ids_b", "pair_ids"):
        assert batch[key].dtype == torch.long and batch[key].shape == (8,)
    for side, column in (("a", "sentence1"), ("b", "sentence2")):
        features = batch[f"features_{side}"]
        assert set(features) == {"input_ids", "attention_mask", "token_type_ids"}
        mask = features["attention_mask"]
        assert mask.shape == features["input_ids"].shape and mask.shape[0] == 8
        assert (mask.cumprod(dim=1) == mask).all()  # right padding: no real token after a pad
        assert mask.sum(dim=1).max() == mask.shape[1]  # as long as the longest sentence, no longer
        for row, (pair_id, sentence_id) in enumerate(
            zip(batch["pair_ids"], batch[f"sentence_ids_{side}"], strict=False)
        ):
            text = rows[pair_id][column]
            assert stsb.sentences[sentence_id] == text
            expected = stsb.tokenizer(text, truncation=True, max_length=stsb.max_length)["input_ids"]
            assert features["input_ids"][row, : mask[row].sum()].tolist() == expected
    expected_scores = [float(rows[i]["score"]) for i in batch["pair_ids"]]
    torch.testing.assert_close(batch["labels"], torch.tensor(expected_scores))


def test_stsb_tokenizes_each_unique_sentence_once(stsb, data_dir):
    texts, pairs = set(), 0
    for split in ("train", "validation", "test"):
        rows = read_rows(data_dir / "stsb" / f"{split}.csv")
        pairs += len(rows)
        texts |= {row["sentence1"] for row in rows} | {row["sentence2"] for row in rows}
    assert sum(len(p) for p in stsb.pairs.values()) == pairs
    assert len(stsb.sentences) == len(texts) < 2 * pairs
    assert len(stsb.table.encodings["input_ids"]) == len(texts)
    assert stsb.label_kind == "score" and stsb.num_labels is None


def test_sentence_transformers_folder_sets_max_length(stsb, minilm_path):
    config = json.loads((Path(minilm_path) / "sentence_bert_config.json").read_text())
    assert stsb.max_length == config["max_seq_length"]


def test_msrp_gives_integer_labels(data_dir, tiny_model_dir):
    data = SentencePairDataModule(
        str(data_dir / "msrp"), tokenizer=tiny_model_dir, limit_train_pairs=40, limit_eval_pairs=10
    )
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    assert data.label_kind == "label" and data.num_labels == 2
    assert batch["labels"].dtype == torch.long
    rows = read_rows(data_dir / "msrp" / "validation.csv")
    assert batch["labels"].tolist() == [int(rows[i]["label"]) for i in batch["pair_ids"]]
    assert len(data.pairs["train"]) == 40 and "test" not in data.pairs


# --- options --------------------------------------------------------------------------------


def test_max_length_matches_load_backbone_and_truncates(tmp_path, tiny_model_dir):
    folder = tmp_path / "pairs"
    write_rows(folder / "train.csv", GOOD_ROWS)
    data = SentencePairDataModule(str(folder / "train.csv"), tokenizer=tiny_model_dir)
    data.setup("test")
    assert data.max_length == load_backbone(tiny_model_dir).max_length
    short = SentencePairDataModule(str(folder / "train.csv"), tokenizer=tiny_model_dir, max_length=5)
    short.setup("test")
    assert max(len(ids) for ids in short.table.encodings["input_ids"]) == 5


def test_tokenizer_object_and_missing_tokenizer(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    path = write_rows(tmp_path / "pairs.csv", GOOD_ROWS)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = SentencePairDataModule(str(path), tokenizer=tokenizer, batch_size=2)
    assert next(iter(data.test_dataloader()))["pair_ids"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="needs a tokenizer: pass tokenizer="):
        SentencePairDataModule(str(path)).setup("test")


def test_jsonl_and_parquet_folders(tmp_path, tiny_model_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: [row[i] for row in GOOD_ROWS] for i, name in enumerate(("sentence1", "sentence2", "score"))}
    (tmp_path / "jsonl").mkdir()
    with open(tmp_path / "jsonl" / "test.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(dict(zip(columns, row, strict=False))) + "\n" for row in GOOD_ROWS)
    (tmp_path / "parquet").mkdir()
    pq.write_table(pa.table(columns), tmp_path / "parquet" / "test.parquet")
    for folder in ("jsonl", "parquet"):
        data = SentencePairDataModule(str(tmp_path / folder), tokenizer=tiny_model_dir, batch_size=4)
        batch = next(iter(data.test_dataloader()))
        assert [data.sentences[i] for i in batch["sentence_ids_b"]] == columns["sentence2"]
        torch.testing.assert_close(batch["labels"], torch.tensor(columns["score"]))
        assert len(data.sentences) == 7  # the first sentence appears twice


def test_training_order_follows_seed_everything_unless_a_data_seed_is_given(data_dir, tiny_model_dir, monkeypatch):
    """``poolhead fit --seed_everything S`` gives each seed its own training order (3 seeds of a head
    without dropout were one model three times when the order stayed at seed 42)."""
    import lightning as L

    def order(everything, seed=None):
        L.seed_everything(everything, verbose=False)
        module = SentencePairDataModule(
            str(data_dir / "stsb"), tokenizer=tiny_model_dir, batch_size=16, limit_train_pairs=96, seed=seed
        )
        module.setup("fit")
        return sum(batches_of(module.train_dataloader()), []), module.hparams.seed

    (zero, recorded), (one, _) = order(0), order(1)
    assert zero != one and recorded == 0  # the checkpointed hyperparameters say which order was used
    assert order(0, seed=7)[0] == order(1, seed=7)[0]
    monkeypatch.delenv("PL_GLOBAL_SEED")  # no seed_everything: the fixed default
    plain = SentencePairDataModule(str(data_dir / "stsb"), tokenizer=tiny_model_dir, limit_train_pairs=96)
    assert plain.hparams.seed == 42


def test_training_order_is_shuffled_and_seeded_evaluation_is_not(data_dir, tiny_model_dir):
    def data(seed):
        module = SentencePairDataModule(
            str(data_dir / "stsb"),
            tokenizer=tiny_model_dir,
            batch_size=16,
            limit_train_pairs=96,
            limit_eval_pairs=40,
            seed=seed,
        )
        module.setup("fit")
        return module

    first, again, other = data(1), data(1), data(2)
    order = sum(batches_of(first.train_dataloader()), [])
    assert order == sum(batches_of(again.train_dataloader()), [])
    assert order != sorted(order) and order != sum(batches_of(other.train_dataloader()), [])
    assert sorted(order) == [int(i) for i in first.pairs["train"].pair_ids]
    evaluation = sum(batches_of(first.val_dataloader()), [])
    assert evaluation == sorted(evaluation) and len(evaluation) == 40


def test_workers_persist(tmp_path, tiny_model_dir):
    path = write_rows(tmp_path / "pairs.csv", GOOD_ROWS)
    data = SentencePairDataModule(str(path), tokenizer=tiny_model_dir, batch_size=4, num_workers=1)
    loader = data.test_dataloader()
    assert loader.persistent_workers and loader.num_workers == 1
    assert batches_of(loader) == batches_of(loader) == [[0, 1, 2, 3]]  # the second epoch reuses the worker
    del loader  # stop the worker now rather than at some later garbage collection


# --- length grouping ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grouped(data_dir, minilm_path):
    data = SentencePairDataModule(
        str(data_dir / "stsb"),
        tokenizer=minilm_path,
        batch_size=16,
        group_by_length=True,
        limit_train_pairs=800,
        limit_eval_pairs=16,
        seed=3,
    )
    data.setup("fit")
    return data


def padded_tokens(loader) -> int:
    return sum(batch[side]["input_ids"].numel() for batch in loader for side in ("features_a", "features_b"))


def test_group_by_length_pads_less_and_covers_every_pair(grouped):
    loader = grouped.train_dataloader()
    epoch_one, epoch_two = batches_of(loader), batches_of(loader)
    assert sorted(sum(epoch_one, [])) == sorted(grouped.pairs["train"].pair_ids)
    assert epoch_one != epoch_two  # a new batch order each epoch
    grouped.group_by_length = False
    try:
        plain = padded_tokens(grouped.train_dataloader())
    finally:
        grouped.group_by_length = True
    assert padded_tokens(loader) < 0.8 * plain


def test_group_by_length_shards_across_ranks(grouped):
    pairs = grouped.pairs["train"]
    lengths = [
        len(grouped.table.encodings["input_ids"][a]) + len(grouped.table.encodings["input_ids"][b])
        for a, b in zip(pairs.ids_a, pairs.ids_b, strict=False)
    ]
    shards = []
    for rank in (0, 1):
        sampler = DistributedSampler(pairs, num_replicas=2, rank=rank, shuffle=True, seed=0)
        shards.append(list(LengthGroupedBatchSampler(sampler, lengths, batch_size=16)))
    seen = [sum(batches, []) for batches in shards]
    # Same number of batches, and the one smaller batch at the same step on both ranks.
    assert [len(batch) for batch in shards[0]] == [len(batch) for batch in shards[1]]
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(len(pairs)))


def test_lightning_rebuilds_the_grouping_sampler_per_rank(grouped):
    """What the Trainer does under DDP: re-create the batch sampler around a DistributedSampler."""
    from lightning.fabric.utilities.data import _replace_dunder_methods
    from lightning.pytorch.trainer.states import RunningStage
    from lightning.pytorch.utilities.data import _update_dataloader
    from torch.utils.data import BatchSampler, DataLoader

    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        loader = grouped.train_dataloader()
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        sharded = _update_dataloader(loader, sampler, mode=RunningStage.TRAINING)
        assert isinstance(sharded.batch_sampler, LengthGroupedBatchSampler)
        seen.append([i for batch in sharded.batch_sampler for i in batch])
    assert not set(seen[0]) & set(seen[1]) and len(seen[0]) == len(seen[1]) == len(loader.dataset) // 2


# --- validation at load: each message names the file, the row and the column ----------------


def load(path: Path, tokenizer: str, stage: str = "test", **options) -> SentencePairDataModule:
    data = SentencePairDataModule(str(path), tokenizer=tokenizer, **options)
    data.setup(stage)
    return data


def test_missing_split_names_split_path_and_files(tmp_path, tiny_model_dir):
    write_rows(tmp_path / "train.csv", GOOD_ROWS)
    write_rows(tmp_path / "dev.csv", GOOD_ROWS)
    expected = r"split 'validation' not found in .*\(files found: dev.csv, train.csv\); add validation.csv"
    with pytest.raises(FileNotFoundError, match=expected):
        load(tmp_path, tiny_model_dir, "fit")
    assert len(load(tmp_path, tiny_model_dir, "fit", validation_split="dev").pairs["validation"]) == 4


def test_missing_column_lists_found_columns_and_schema(tmp_path, tiny_model_dir):
    path = write_rows(tmp_path / "test.csv", GOOD_ROWS, header=("sentence1", "text2", "score"))
    expected = (
        r"test.csv: missing column\(s\) sentence2; found columns sentence1, text2, score; "
        r"expected sentence1, sentence2 and either score"
    )
    with pytest.raises(ValueError, match=expected):
        load(path, tiny_model_dir)


def test_empty_sentences_raise_with_row_and_column(tmp_path, tiny_model_dir):
    path = write_rows(tmp_path / "test.csv", [GOOD_ROWS[0], ["A cat.", "", 0.5], ["   ", "A dog.", 0.5]])
    expected = (
        r"test.csv: 2 empty or whitespace-only sentence\(s\): data row 2 column sentence2; "
        r"data row 3 column sentence1 \(data rows count from 1.*empty_sentences='skip'"
    )
    with pytest.raises(ValueError, match=expected):
        load(path, tiny_model_dir)


def test_empty_sentences_skip_drops_and_counts(tmp_path, tiny_model_dir):
    path = write_rows(tmp_path / "test.csv", [GOOD_ROWS[0], ["A cat.", "", 0.5], ["   ", "A dog.", 0.5], GOOD_ROWS[1]])
    with pytest.warns(UserWarning, match="skipped 2 pair"):
        data = load(path, tiny_model_dir, empty_sentences="skip")
    assert data.dropped == {"test": 2}
    assert data.pairs["test"].pair_ids == [0, 3]  # row indices in the file, so pairs stay traceable


@pytest.mark.parametrize(
    ("score", "shown"), [("abc", "'abc'"), ("", "empty"), ("nan", "'nan'")], ids=["text", "empty", "nan"]
)
def test_scores_must_be_numbers(tmp_path, tiny_model_dir, score, shown):
    path = write_rows(tmp_path / "test.csv", [GOOD_ROWS[0], GOOD_ROWS[1], ["A cat.", "A dog.", score]])
    expected = rf"test.csv: column 'score' must hold numbers; 1 row\(s\) do not: data row 3 \({shown}\)"
    with pytest.raises(ValueError, match=expected):
        load(path, tiny_model_dir)


def test_scores_outside_unit_interval_suggest_score_scale(tmp_path, tiny_model_dir):
    path = write_rows(tmp_path / "test.csv", [["A cat.", "A dog.", 4.2], ["A man.", "A woman.", 0.5], ["A.", "B.", 5]])
    with pytest.raises(
        ValueError,
        match=r"must lie in \[0, 1\]; 2 row\(s\) do not: data row 1 \('4.2'\); data row 3 "
        r"\('5'\).*pass score_scale=5.0",
    ):
        load(path, tiny_model_dir)
    data = load(path, tiny_model_dir, score_scale=5.0)
    assert data.pairs["test"].labels == pytest.approx([0.84, 0.1, 1.0])


@pytest.mark.parametrize(("label", "shown"), [("0.5", "'0.5'"), ("yes", "'yes'")])
def test_labels_must_be_integer_classes(tmp_path, tiny_model_dir, label, shown):
    rows = [["A cat.", "A dog.", 1], ["A man.", "A woman.", label]]
    path = write_rows(tmp_path / "test.csv", rows, LABEL_HEADER)
    expected = rf"test.csv: column 'label' must hold integer classes.*data row 2 \({shown}\)"
    with pytest.raises(ValueError, match=expected):
        load(path, tiny_model_dir)


def write_latin1(folder: Path, suffix: str) -> Path:
    if suffix == ".csv":
        text = "sentence1,sentence2,score\nA caf\u00e9.,A bar.,0.5\n"
    else:
        text = json.dumps({"sentence1": "A caf\u00e9.", "sentence2": "A bar.", "score": 0.5}, ensure_ascii=False) + "\n"
    (folder / f"test{suffix}").write_bytes(text.encode("latin-1"))
    return folder / f"test{suffix}"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_latin1_file_asks_for_utf8(tmp_path, tiny_model_dir, suffix):
    line = 2 if suffix == ".csv" else 1
    expected = rf"test{suffix} is not UTF-8 text \(line {line}, byte 0xe9\): re-save it as UTF-8"
    with pytest.raises(ValueError, match=expected):
        load(write_latin1(tmp_path, suffix), tiny_model_dir)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_latin1_error_from_datasets_itself_is_caught(tmp_path, tiny_model_dir, suffix, monkeypatch):
    """Without poolhead's own line-by-line check, what datasets / pyarrow raise gets the same advice."""
    monkeypatch.setattr("poolhead.data.files.check_utf8", lambda file: None)
    with pytest.raises(ValueError, match=rf"test{suffix} is not UTF-8 text: re-save it as UTF-8"):
        load(write_latin1(tmp_path, suffix), tiny_model_dir)


# --- hub dataset ids --------------------------------------------------------------------------


def test_path_that_is_neither_local_nor_on_the_hub(tmp_path, tiny_model_dir):
    with pytest.raises(ValueError, match=r"'.*stbs' is neither a local file or folder nor a loadable hub dataset"):
        load(tmp_path / "stbs", tiny_model_dir)


def test_hub_dataset_splits_are_checked_by_row_index(tiny_model_dir, monkeypatch):
    """This machine has no hub: a DatasetDict built here stands in for what load_dataset(id) returns."""
    from datasets import Dataset, DatasetDict

    rows = {"sentence1": ["A cat.", "A man."], "sentence2": ["A dog.", ""], "score": [0.5, 0.25]}
    hub = DatasetDict({"train": Dataset.from_dict(rows), "test": Dataset.from_dict(rows)})
    monkeypatch.setattr("poolhead.data.files.datasets.load_dataset", lambda path: hub)
    expected = r"split 'validation' not found in hub dataset 'someone/pairs' \(splits found: train, test\)"
    with pytest.raises(FileNotFoundError, match=expected):
        load("someone/pairs", tiny_model_dir, "validate")
    expected = r"hub dataset someone/pairs, split test: 1 empty .*row index 1 column sentence2"
    with pytest.raises(ValueError, match=expected):
        load("someone/pairs", tiny_model_dir)
    with pytest.warns(UserWarning, match="split test: skipped 1 pair"):
        data = load("someone/pairs", tiny_model_dir, empty_sentences="skip")
    assert data.dropped == {"test": 1} and len(data.pairs["test"]) == 1
