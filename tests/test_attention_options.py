"""AttentionPooling's uniform_floor (a share of every text's weight kept even) and score_layer (weights
scored from another layer than the one averaged)."""

from __future__ import annotations

import pytest
import torch
from standins import padded_batch

from poolhead import AttentionPooling, build_pooler, pooler_from_config
from poolhead.pooling.errors import UserValueError

HIDDEN = 16
LENGTHS = [5, 1, 9, 3, 0]  # the last row is an empty text


def batch(num_layers: int = 3):
    tokens, mask, hidden_states = padded_batch(LENGTHS, HIDDEN, "right", torch.float32, num_layers=num_layers, seed=0)
    return tokens, mask.bool(), hidden_states


def trained_looking(head: AttentionPooling, scale: float = 3.0) -> AttentionPooling:
    with torch.no_grad():
        head.scorer.weight.normal_(std=scale, generator=torch.Generator().manual_seed(0))
    return head.eval()


def masked_mean(tokens, mask):
    return (tokens * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


@pytest.mark.parametrize("floor", [0.0, 0.3, 0.7])
def test_every_token_keeps_its_floor_share_and_the_weights_still_sum_to_one(floor):
    tokens, mask, _ = batch()
    head = trained_looking(AttentionPooling(HIDDEN, num_heads=2, uniform_floor=floor))
    weights = head.attention_weights(tokens, mask)  # B, T, heads
    counts = mask.sum(1).float()
    real = counts > 0

    torch.testing.assert_close(weights.sum(1)[real], torch.ones(int(real.sum()), 2))
    assert (weights[~mask] == 0).all()  # padding and the empty text get nothing
    floors = (floor / counts.clamp(min=1))[:, None, None].expand_as(weights)
    assert (weights[mask] >= floors[mask] - 1e-6).all()
    if floor:  # the scorer's sharp logits would put some tokens far below an even share without it
        unfloored = trained_looking(AttentionPooling(HIDDEN, num_heads=2)).attention_weights(tokens, mask)
        assert (unfloored[mask] < floors[mask] - 1e-3).any()


def test_a_floor_of_one_is_mean_pooling_whatever_the_scorer_learned():
    tokens, mask, _ = batch()
    head = trained_looking(AttentionPooling(HIDDEN, num_heads=4, uniform_floor=1.0))
    torch.testing.assert_close(head(tokens, mask), masked_mean(tokens, mask))


def test_scores_come_from_the_score_layer_and_the_average_from_the_last():
    tokens, mask, hidden_states = batch(num_layers=3)
    head = trained_looking(AttentionPooling(HIDDEN, num_heads=2, score_layer=0))
    assert head.layers == (0, -1) and head.needs_hidden_states
    pooled = head(tokens, mask, hidden_states=hidden_states)

    # The average is over the last layer, weighted as the scorer rates layer 0's tokens.
    weights = head.attention_weights(hidden_states[0], mask)
    expected = torch.einsum("bth,bthc->bhc", weights, tokens.view(*tokens.shape[:2], 2, HIDDEN // 2))
    torch.testing.assert_close(pooled, expected.reshape(len(LENGTHS), HIDDEN))

    # Another layer 0 moves the weights; the same weights over another last layer move only the values.
    other_first = (hidden_states[0] + torch.randn(hidden_states[0].shape), *hidden_states[1:])
    assert not torch.allclose(head(tokens, mask, hidden_states=other_first), pooled)
    head_on_last = trained_looking(AttentionPooling(HIDDEN, num_heads=2))
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
