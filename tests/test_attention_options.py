"""AttentionPooling's options that keep it near the mean pooling it starts from, or score elsewhere:
uniform_floor (a share of every text's weight kept even), score_layer (weights scored from another layer
than the one averaged) and uniform_penalty (a pull towards uniform weights, added to the training loss)."""

from __future__ import annotations

import pytest
import torch
from catalogue import trained_looking
from quiet_fit import quiet_fit
from standins import padded_batch

from poolhead import (
    AttentionPooling,
    PoolingModule,
    SentencePairDataModule,
    build_pooler,
    pooler_from_config,
    resolve_pooler,
)
from poolhead.pooling.attention import distance_from_uniform
from poolhead.pooling.errors import UserValueError

HIDDEN = 16
LENGTHS = [5, 1, 9, 3, 0]  # the last row is an empty text
TEXTS = ["A man is playing a guitar.", "Hi", "Two dogs run across the wet grass of the park."]
SHARP = 3.0  # the scorer's spread: sharp enough to put some tokens far below an even share


def batch(num_layers: int = 3):
    tokens, mask, hidden_states = padded_batch(LENGTHS, HIDDEN, "right", torch.float32, num_layers=num_layers, seed=0)
    return tokens, mask.bool(), hidden_states


def masked_mean(tokens, mask):
    return (tokens * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


@pytest.mark.parametrize("floor", [0.0, 0.3, 0.7])
def test_every_token_keeps_its_floor_share_and_the_weights_still_sum_to_one(floor):
    tokens, mask, _ = batch()
    head = trained_looking(AttentionPooling(HIDDEN, num_heads=2, uniform_floor=floor), scale=SHARP)
    weights = head.attention_weights(tokens, mask)  # B, T, heads
    counts = mask.sum(1).float()
    real = counts > 0

    torch.testing.assert_close(weights.sum(1)[real], torch.ones(int(real.sum()), 2))
    assert (weights[~mask] == 0).all()  # padding and the empty text get nothing
    floors = (floor / counts.clamp(min=1))[:, None, None].expand_as(weights)
    assert (weights[mask] >= floors[mask] - 1e-6).all()
    if floor:  # the scorer's sharp logits would put some tokens far below an even share without it
        unfloored = trained_looking(AttentionPooling(HIDDEN, num_heads=2), scale=SHARP).attention_weights(tokens, mask)
        assert (unfloored[mask] < floors[mask] - 1e-3).any()


def test_a_floor_of_one_is_mean_pooling_whatever_the_scorer_learned():
    tokens, mask, _ = batch()
    head = trained_looking(AttentionPooling(HIDDEN, num_heads=4, uniform_floor=1.0), scale=SHARP)
    torch.testing.assert_close(head(tokens, mask), masked_mean(tokens, mask))


def test_scores_come_from_the_score_layer_and_the_average_from_the_last():
    tokens, mask, hidden_states = batch(num_layers=3)
    head = trained_looking(AttentionPooling(HIDDEN, num_heads=2, score_layer=0), scale=SHARP)
    assert head.layers == (0, -1) and head.needs_hidden_states
    pooled = head(tokens, mask, hidden_states=hidden_states)

    # The average is over the last layer, weighted as the scorer rates layer 0's tokens.
    weights = head.attention_weights(hidden_states[0], mask)
    expected = torch.einsum("bth,bthc->bhc", weights, tokens.view(*tokens.shape[:2], 2, HIDDEN // 2))
    torch.testing.assert_close(pooled, expected.reshape(len(LENGTHS), HIDDEN))

    # Another layer 0 moves the weights; the same weights over another last layer move only the values.
    other_first = (hidden_states[0] + torch.randn(hidden_states[0].shape), *hidden_states[1:])
    assert not torch.allclose(head(tokens, mask, hidden_states=other_first), pooled)
    head_on_last = trained_looking(AttentionPooling(HIDDEN, num_heads=2), scale=SHARP)
    assert not torch.allclose(head_on_last(tokens, mask), pooled)


def test_a_zero_scorer_on_another_layer_starts_as_mean_pooling_of_the_last():
    tokens, mask, hidden_states = batch(num_layers=3)
    head = AttentionPooling(HIDDEN, num_heads=2, score_layer=1, uniform_floor=0.3).eval()
    torch.testing.assert_close(head(tokens, mask, hidden_states=hidden_states), masked_mean(tokens, mask))


def test_a_head_that_scores_another_layer_asks_for_hidden_states():
    tokens, mask, _ = batch()
    head = AttentionPooling(HIDDEN, score_layer=1)
    with pytest.raises(ValueError, match="reads layers \\[1, -1\\] but was given no hidden_states"):
        head(tokens, mask)


def test_the_options_survive_the_config_round_trip():
    head = build_pooler("attention", hidden_size=HIDDEN, num_heads=2, uniform_floor=0.3, score_layer=1)
    config = head.get_config()
    assert config["uniform_floor"] == 0.3 and config["score_layer"] == 1
    rebuilt = pooler_from_config(config)
    assert (rebuilt.uniform_floor, rebuilt.score_layer, rebuilt.layers) == (0.3, 1, (1, -1))
    # A config saved before these options existed still loads as the head it was.
    old = {key: value for key, value in config.items() if key not in ("uniform_floor", "score_layer")}
    assert pooler_from_config(old).layers is None and pooler_from_config(old).uniform_floor == 0.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"uniform_floor": 1.5}, "uniform_floor=1.5 is outside \\[0, 1\\]"),
        ({"uniform_floor": -0.1}, "uniform_floor=-0.1 is outside \\[0, 1\\]"),
        ({"score_layer": "1"}, "score_layer='1' must be an index into the backbone's hidden_states"),
        ({"score_layer": True}, "score_layer=True must be an index"),
    ],
)
def test_bad_options_are_refused_with_the_value_and_the_range(options, message):
    with pytest.raises(UserValueError, match=message):
        AttentionPooling(HIDDEN, **options)


def test_a_score_layer_the_backbone_does_not_have_is_named():
    tokens, mask, hidden_states = batch(num_layers=3)
    head = AttentionPooling(HIDDEN, score_layer=5)
    with pytest.raises(UserValueError, match="layer\\(s\\) \\[5\\] do not exist"):
        head(tokens, mask, hidden_states=hidden_states)


def batch_of_real_texts():
    """Four texts, none empty: the penalty is a KL divergence to 1/length."""
    tokens, mask, _ = padded_batch([5, 1, 9, 3], HIDDEN, "right", torch.float32, num_layers=1, seed=0)
    return tokens, mask


def test_the_penalty_is_zero_at_the_start_and_the_kl_to_uniform_once_moved(one_thread):
    tokens, mask = batch_of_real_texts()
    head = AttentionPooling(HIDDEN, num_heads=2, uniform_penalty=0.5).train()
    head(tokens, mask)
    assert head.training_penalty().item() == 0.0  # uniform weights: nothing to pull back

    trained_looking(head, scale=1.0).train()
    head(tokens, mask)
    head(tokens, mask)  # a pair's second side: the mean over the step's passes, not their sum
    weights = head.attention_weights(tokens, mask.bool())
    n = mask.sum(dim=1).float()[:, None, None]  # texts, 1, 1
    kl = (weights * (weights.clamp(min=1e-12) * n).log()).sum(dim=1)  # texts, heads
    torch.testing.assert_close(head.training_penalty(), 0.5 * kl.mean())
    assert head.training_penalty() is None  # read once per step


def test_no_penalty_in_eval_or_when_off_and_a_wrapped_head_reports_its_inner_penalty(one_thread):
    tokens, mask = batch_of_real_texts()
    evaluated = AttentionPooling(HIDDEN, uniform_penalty=1.0).eval()
    evaluated(tokens, mask)
    assert evaluated.training_penalty() is None
    off = AttentionPooling(HIDDEN).train()
    off(tokens, mask)
    assert off.training_penalty() is None

    wrapped = resolve_pooler(
        {"name": "projected", "inner": "attention", "inner_kwargs": {"uniform_penalty": 1.0}}, HIDDEN
    )
    trained_looking(wrapped).train()
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
