"""AttentionPooling's uniform_penalty: a pull towards the mean pooling it starts from, added to the training loss."""

from __future__ import annotations

import pytest
import torch
from quiet_fit import quiet_fit
from standins import padded_batch

from poolhead import AttentionPooling, PoolingModule, SentencePairDataModule, resolve_pooler
from poolhead.pooling.attention import distance_from_uniform
from poolhead.pooling.errors import UserValueError

HIDDEN = 16
TEXTS = ["A man is playing a guitar.", "Hi", "Two dogs run across the wet grass of the park."]


def batch():
    tokens, mask, _ = padded_batch([5, 1, 9, 3], HIDDEN, "right", torch.float32, num_layers=1, seed=0)
    return tokens, mask


def test_the_penalty_is_zero_at_the_start_and_the_kl_to_uniform_once_moved(one_thread):
    tokens, mask = batch()
    head = AttentionPooling(HIDDEN, num_heads=2, uniform_penalty=0.5).train()
    head(tokens, mask)
    assert head.training_penalty().item() == 0.0  # uniform weights: nothing to pull back

    with torch.no_grad():
        head.scorer.weight.normal_(generator=torch.Generator().manual_seed(0))
    head(tokens, mask)
    head(tokens, mask)  # a pair's second side: the mean over the step's passes, not their sum
    weights = head.attention_weights(tokens, mask.bool())
    n = mask.sum(dim=1).float()[:, None, None]  # texts, 1, 1
    kl = (weights * (weights.clamp(min=1e-12) * n).log()).sum(dim=1)  # texts, heads
    torch.testing.assert_close(head.training_penalty(), 0.5 * kl.mean())
    assert head.training_penalty() is None  # read once per step


def test_no_penalty_in_eval_or_when_off_and_a_wrapped_head_reports_its_inner_penalty(one_thread):
    tokens, mask = batch()
    evaluated = AttentionPooling(HIDDEN, uniform_penalty=1.0).eval()
    evaluated(tokens, mask)
    assert evaluated.training_penalty() is None
    off = AttentionPooling(HIDDEN).train()
    off(tokens, mask)
    assert off.training_penalty() is None

    wrapped = resolve_pooler(
        {"name": "projected", "inner": "attention", "inner_kwargs": {"uniform_penalty": 1.0}}, HIDDEN
    ).train()
    with torch.no_grad():
        wrapped.inner.scorer.weight.fill_(1.0)
    wrapped(tokens, mask)
    assert wrapped.training_penalty() > 0


def fitted_head(tiny_model_dir, data_dir, tmp_path, uniform_penalty):
    torch.manual_seed(0)
    model = PoolingModule(
        tiny_model_dir, pooler="attention", pooler_kwargs={"uniform_penalty": uniform_penalty}, lr=0.05
    )
    data = SentencePairDataModule(
        str(data_dir / "stsb"), tokenizer=tiny_model_dir, batch_size=8, limit_train_pairs=48, limit_eval_pairs=8
    )
    trainer = quiet_fit(model, data, tmp_path)
    return model, trainer


def test_a_fit_with_the_penalty_logs_it_and_stays_nearer_uniform(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "feature-cache"))
    torch.set_num_threads(1)
    free, _ = fitted_head(tiny_model_dir, data_dir, tmp_path / "free", 0.0)
    anchored, trainer = fitted_head(tiny_model_dir, data_dir, tmp_path / "anchored", 10.0)

    assert "train/penalty" in trainer.callback_metrics
    features = dict(free.backbone.tokenizer(TEXTS, padding=True, return_tensors="pt"))

    def distance(model):
        model.eval()
        with torch.no_grad():
            tokens, mask, _ = model.backbone_forward(features)
            return distance_from_uniform(model.pooler.attention_weights(tokens, mask.bool()), mask.bool()).item()

    assert distance(free) > 0  # the free head moved, so the comparison below can fail
    assert distance(anchored) < 0.5 * distance(free)


def test_a_negative_penalty_is_refused_with_the_fix():
    with pytest.raises(UserValueError, match="uniform_penalty=-1.0 must be 0 or more"):
        resolve_pooler({"name": "attention", "uniform_penalty": -1.0}, HIDDEN)
