"""forward_chunk_size: a batch run as length-sorted chunks gives the same embeddings, loss and gradients."""

from __future__ import annotations

import pytest
import torch
from quiet_fit import quiet_trainer

from poolhead.data import SentencePairDataModule
from poolhead.training.chunks import length_chunks
from poolhead.training.module import PoolingModule

SIDE_A = ["ok", "A man is playing a flute in the park on a sunny afternoon.", "A plane is taking off.", "Hi there"]
SIDE_B = ["A dog runs.", "no", "Two dogs run across a snowy field together, barking at the birds.", "Cats sleep a lot."]
LABELS = torch.tensor([0.2, 0.9, 0.5, 0.1])

pytestmark = pytest.mark.usefixtures("one_thread")


def pair_batch(model: PoolingModule) -> dict:
    tokenize = model.backbone.tokenizer
    return {
        "features_a": dict(tokenize(SIDE_A, padding=True, return_tensors="pt")),
        "features_b": dict(tokenize(SIDE_B, padding=True, return_tensors="pt")),
        "labels": LABELS,
    }


def fine_tuning(tiny_model_dir: str, chunk: int | None, pooler: str = "attention") -> PoolingModule:
    torch.manual_seed(0)
    kwargs = {"layers": 2} if pooler == "weighted_layer" else None  # the tiny BERT has 2 layers
    model = PoolingModule(
        tiny_model_dir,
        pooler=pooler,
        pooler_kwargs=kwargs,
        freeze_backbone=False,
        cache=False,
        forward_chunk_size=chunk,
    )
    return model.eval()  # no dropout: both runs must compute the same function


@pytest.mark.parametrize("pooler", ["attention", "weighted_layer"])  # a token-level and a layer-level head
def test_chunked_batch_gives_the_same_embeddings_loss_and_gradients(tiny_model_dir, pooler):
    results = []
    for chunk in (None, 3):
        model = fine_tuning(tiny_model_dir, chunk, pooler)
        a, b = model.embed_pairs(pair_batch(model))
        loss = model.loss(a, b, LABELS)
        loss.backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        results.append((a.detach(), b.detach(), loss.detach(), grads))
    (a0, b0, loss0, grads0), (a1, b1, loss1, grads1) = results
    torch.testing.assert_close(a1, a0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b1, b0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss1, loss0, atol=1e-5, rtol=1e-5)
    assert grads1.keys() == grads0.keys() and len(grads0) > 10  # the backbone's weights get gradients too
    for name in grads0:
        torch.testing.assert_close(grads1[name], grads0[name], atol=1e-4, rtol=1e-4, msg=name)


def test_each_chunk_holds_sorted_sentences_padded_to_its_own_longest():
    lengths_a, lengths_b = [2, 9, 5, 3], [4, 1, 12, 6]
    sides = [
        {"input_ids": torch.ones(4, max(ls), dtype=torch.long), "attention_mask": right_padded(ls)}
        for ls in (lengths_a, lengths_b)
    ]
    chunks = length_chunks(sides, chunk_size=3)
    all_lengths = torch.tensor(lengths_a + lengths_b)
    rows = torch.cat([rows for rows, _ in chunks])
    assert sorted(rows.tolist()) == list(range(8))  # every sentence once
    assert all_lengths[rows].tolist() == sorted(all_lengths.tolist(), reverse=True)
    widths = [features["input_ids"].shape[1] for _, features in chunks]
    assert widths == [12, 5, 2]  # longest of (12, 9, 6), (5, 4, 3), (2, 1)
    for chunk_rows, features in chunks:
        assert features["attention_mask"].sum(dim=1).tolist() == all_lengths[chunk_rows].tolist()
    padded_cells = sum(len(r) * w for (r, _), w in zip(chunks, widths, strict=False))
    assert padded_cells == 3 * 12 + 3 * 5 + 2 * 2 < 8 * 12  # 55 token slots instead of 96


def test_left_padded_features_run_unchunked(tiny_model_dir):
    mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert length_chunks([{"input_ids": torch.ones(2, 3, dtype=torch.long), "attention_mask": mask}], 1) is None
    chunked, plain = fine_tuning(tiny_model_dir, 1), fine_tuning(tiny_model_dir, None)
    plain.backbone.tokenizer.padding_side = "left"
    batch = pair_batch(plain)
    with torch.no_grad():
        for got, want in zip(chunked.embed_pairs(batch), plain.embed_pairs(batch), strict=False):
            torch.testing.assert_close(got, want)


def test_validation_scores_the_same_with_chunks(tiny_model_dir, data_dir, tmp_path):
    scores = []
    for chunk in (None, 5):
        data = SentencePairDataModule(
            str(data_dir / "stsb"), tokenizer=tiny_model_dir, batch_size=8, limit_eval_pairs=40
        )
        model = fine_tuning(tiny_model_dir, chunk)
        trainer = quiet_trainer(tmp_path)
        scores.append(trainer.validate(model, data, verbose=False)[0])
    assert scores[1]["val/spearman"] == pytest.approx(scores[0]["val/spearman"], abs=1e-3)
    assert scores[1]["val/loss"] == pytest.approx(scores[0]["val/loss"], abs=1e-4)


@pytest.mark.parametrize("bad", [0, -4])
def test_a_chunk_size_below_one_is_refused(tiny_model_dir, bad):
    with pytest.raises(ValueError, match=f"forward_chunk_size must be a positive number.*got {bad}"):
        PoolingModule(tiny_model_dir, pooler="attention", forward_chunk_size=bad)


def right_padded(lengths: list[int]) -> torch.Tensor:
    return (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
