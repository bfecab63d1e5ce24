"""Data at scale: setup keeps per-pair data in compact arrays, tokenizes in several processes alike, same batches."""

from __future__ import annotations

import csv
import gc
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from poolhead.data import SentencePairDataModule

WORDS = "a man woman dog cat plays runs reads the in park city guitar book red blue small old new happy".split()


def sentences(count: int) -> list[str]:
    generator = random.Random(0)
    return [" ".join(generator.choices(WORDS, k=generator.randint(4, 12))) + f" {i}." for i in range(count)]


def write_pairs(folder: Path, pairs: int, unique: int = 2000) -> Path:
    """``pairs`` scored pairs whose sentences are ``unique`` ones; the first pairs use each sentence once, so every
    size holds the same unique sentences and only the number of pairs differs."""
    texts = sentences(unique)
    generator = random.Random(1)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", "score"])
        for i in range(pairs):
            a, b = (
                (2 * i, 2 * i + 1) if 2 * i + 1 < unique else (generator.randrange(unique), generator.randrange(unique))
            )
            writer.writerow([texts[a], texts[b], f"{generator.uniform(0, 5):.2f}"])
    return folder


def set_up(folder: Path, tokenizer: str, **options) -> SentencePairDataModule:
    data = SentencePairDataModule(str(folder), tokenizer=tokenizer, validation_split=None, score_scale=5.0, **options)
    data.setup("fit")
    return data


def retained_bytes(folder: Path, tokenizer: str) -> tuple[int, SentencePairDataModule]:
    """Python-traced memory still held after a setup (numpy arrays count: numpy reports them to tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        data = set_up(folder, tokenizer)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, data
    finally:
        tracemalloc.stop()


def test_setup_memory_per_pair_is_a_few_bytes_not_python_objects(tmp_path, tiny_model_dir, one_thread):
    set_up(write_pairs(tmp_path / "warm", 50), tiny_model_dir)  # imports and first-call caches, outside the count
    small, data_small = retained_bytes(write_pairs(tmp_path / "5k", 5_000), tiny_model_dir)
    large, data_large = retained_bytes(write_pairs(tmp_path / "20k", 20_000), tiny_model_dir)
    assert len(data_small.sentences) == len(data_large.sentences) == 2000  # only the number of pairs differs
    per_pair = (large - small) / 15_000
    # Two int32 sentence ids, a float32 score and an int64 pair id: 20 bytes. As Python lists the same pairs
    # cost about 150 (an int object and a pointer per id, a float per score).
    assert per_pair < 40, f"{per_pair:.0f} bytes per pair"
    pairs = data_large.pairs["train"]
    assert [(column.array.dtype, len(column)) for column in (pairs.ids_a, pairs.ids_b, pairs.labels)] == [
        (np.int32, 20_000),
        (np.int32, 20_000),
        (np.float32, 20_000),
    ]
    assert all(isinstance(flat, np.ndarray) for flat in data_large.table.tokens.flat.values())


def test_num_proc_2_gives_the_same_token_ids_and_batches(tmp_path, tiny_model_dir, one_thread):
    folder = write_pairs(tmp_path / "pairs", 600, unique=900)
    alone, pooled = set_up(folder, tiny_model_dir), set_up(folder, tiny_model_dir, num_proc=2)
    assert pooled.sentences == alone.sentences
    for key, rows in alone.table.encodings.items():
        assert [row.tolist() for row in pooled.table.encodings[key]] == [row.tolist() for row in rows]
    expected = alone.tokenizer(alone.sentences[7], truncation=True, max_length=alone.max_length)["input_ids"]
    assert alone.table.encodings["input_ids"][7].tolist() == expected
    for left, right in zip(alone.train_dataloader(), pooled.train_dataloader(), strict=True):
        assert left.keys() == right.keys()
        torch.testing.assert_close(left["features_a"], right["features_a"])
        assert torch.equal(left["pair_ids"], right["pair_ids"])


@pytest.mark.parametrize("group_by_length", [False, True])
def test_equal_seeds_give_equal_batches_that_hold_the_file_rows(tmp_path, tiny_model_dir, group_by_length):
    folder = write_pairs(tmp_path / "pairs", 500, unique=700)
    rows = list(csv.DictReader(open(folder / "train.csv", encoding="utf-8")))
    first, second, other = (
        set_up(folder, tiny_model_dir, seed=seed, batch_size=16, group_by_length=group_by_length) for seed in (3, 3, 4)
    )
    batches = [[batch["pair_ids"].tolist() for batch in data.train_dataloader()] for data in (first, second, other)]
    assert batches[0] == batches[1] != batches[2]
    batch = next(iter(first.train_dataloader()))
    for i, pair in enumerate(batch["pair_ids"].tolist()):
        assert first.sentences[batch["sentence_ids_a"][i]] == rows[pair]["sentence1"]
        assert first.sentences[batch["sentence_ids_b"][i]] == rows[pair]["sentence2"]
        assert batch["labels"][i].item() == pytest.approx(float(rows[pair]["score"]) / 5.0)
        length = int(batch["features_a"]["attention_mask"][i].sum())
        expected = first.tokenizer(rows[pair]["sentence1"], truncation=True, max_length=first.max_length)
        assert batch["features_a"]["input_ids"][i, :length].tolist() == expected["input_ids"]
