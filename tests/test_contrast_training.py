"""A contrast set (premise, hypothesis, negated) trains as scored pairs: keepers score 1, flippers 0.

So a negation set such as SemAntoNeg goes into a fit (alone or in a mixture, with CoSENT) by its own
columns, and the loss pushes each negation below its premise's paraphrase, never above it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from quiet_fit import quiet_fit
from synthetic_pairs import write_rows

from poolhead import Encoder
from poolhead.data import SentencePairDataModule
from poolhead.training.module import PoolingModule

pytestmark = pytest.mark.usefixtures("one_thread")

ROWS = [
    ["It's not healthy.", "It's unhealthy.", 0],
    ["It's not healthy.", "It's healthy.", 1],
    ["The door is open.", "The door is not closed.", 0],
    ["The door is open.", "The door is not open.", 1],
    ["The door is open.", "The door is closed.", 1],
]


def write_contrast(folder: Path, rows: list[list], splits=("train", "validation")) -> Path:
    for split in splits:
        write_rows(folder / f"{split}.csv", rows, header=("premise", "hypothesis", "negated"))
    return folder


def test_a_contrast_set_is_read_as_scored_pairs_with_keepers_scored_one(tmp_path, tiny_model_dir, caplog):
    data = SentencePairDataModule(str(write_contrast(tmp_path / "negation", ROWS)), tokenizer=tiny_model_dir)
    with caplog.at_level("INFO"):
        data.setup("fit")
    assert data.label_kind == "score"
    train = data.pairs["train"]
    assert list(train.labels) == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert [data.sentences[i] for i in list(train.ids_a)[:2]] == ["It's not healthy.", "It's not healthy."]
    assert [data.sentences[i] for i in list(train.ids_b)[:2]] == ["It's unhealthy.", "It's healthy."]
    assert any("contrast set, read as scored pairs" in message for message in caplog.messages)


def test_a_negated_value_other_than_0_or_1_is_refused_by_row_value(tmp_path, tiny_model_dir):
    rows = [*ROWS, ["The sky is blue.", "The sky is not blue.", 0.5]]
    data = SentencePairDataModule(str(write_contrast(tmp_path / "negation", rows)), tokenizer=tiny_model_dir)
    with pytest.raises(ValueError, match=r"'negated' column holds 0 .* or 1 .*; found 0\.5; fix those rows"):
        data.setup("fit")


def test_a_fit_on_a_contrast_set_moves_negations_below_their_paraphrases(tmp_path, tiny_model_dir):
    # The projected head can learn any linear map: a few CoSENT steps must order this tiny set's pairs.
    rows = ROWS * 8
    folder = write_contrast(tmp_path / "negation", rows)
    data = SentencePairDataModule(str(folder), tokenizer=tiny_model_dir, batch_size=10)
    torch.manual_seed(0)
    module = PoolingModule(tiny_model_dir, pooler="projected", freeze_backbone=True, lr=3e-2, loss="cosent")
    data.setup("fit")
    train = data.pairs["train"]

    def keeper_margin() -> float:
        vectors = Encoder(module.backbone, pooler=module.pooler.eval(), device="cpu").encode(list(data.sentences))
        ids_a, ids_b = torch.as_tensor(train.ids_a.array), torch.as_tensor(train.ids_b.array)
        cosines = torch.nn.functional.cosine_similarity(vectors[ids_a], vectors[ids_b])
        keepers = torch.tensor([negated == 0 for *_, negated in rows])  # the file's word, not the reader's
        return (cosines[keepers].mean() - cosines[~keepers].mean()).item()

    before = keeper_margin()
    quiet_fit(module, data, tmp_path, epochs=6)
    after = keeper_margin()
    assert after > before and after > 0, (before, after)
