"""Learned pooling heads: how they start, that they learn, that they ignore padding, that they save."""

from __future__ import annotations

import json

import pytest
import torch
from catalogue import HEADS, build, trained_looking
from standins import add_garbage_padding, padded_batch

from poolhead import (
    FIXED_POOLERS,
    AttentionPooling,
    WeightedLayerPooling,
    build_pooler,
    pooler_from_config,
)

HIDDEN = 16
NUM_HIDDEN_STATES = 4  # embeddings + 3 transformer layers


def run(pooler, tokens, mask, hidden_states):
    return pooler(tokens, mask, hidden_states=hidden_states)


def batch(lengths=(5, 1, 9, 3), side="right", seed=0, dtype=torch.float32):
    return padded_batch(list(lengths), HIDDEN, side, dtype, num_layers=NUM_HIDDEN_STATES, seed=seed)


@pytest.mark.parametrize("head", HEADS)
def test_gradients_reach_every_parameter_from_the_first_step(head):
    # AttentionPooling's scorer and WeightedLayerPooling's layer logits start at zero,
    # yet their gradient is not zero: no parameter is stuck at initialisation.
    pooler = build(HEADS[head], HIDDEN).train()
    tokens, mask, hidden_states = batch()
    target = torch.randn(pooler.output_dim, generator=torch.Generator().manual_seed(1))

    if head == "token_interaction":
        # Its residual branches end in zeroed projections (the identity at step 0): only those
        # learn at first, and after one step of SGD every parameter must receive a gradient.
        (run(pooler, tokens, mask, hidden_states) * target).sum().backward()
        with torch.no_grad():
            for parameter in pooler.parameters():
                parameter -= 0.1 * parameter.grad
        pooler.zero_grad()
    (run(pooler, tokens, mask, hidden_states) * target).sum().backward()

    for name, parameter in pooler.named_parameters():
        assert parameter.grad is not None, f"{head}: {name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{head}: {name} has a non-finite gradient"
        assert parameter.grad.abs().sum() > 0, f"{head}: {name} has an all-zero gradient"


@pytest.mark.parametrize("head", HEADS)
def test_an_empty_text_and_nan_padding_keep_the_gradients_finite(head):
    pooler = trained_looking(build(HEADS[head], HIDDEN)).train()
    _, mask, hidden_states = batch(lengths=(4, 0, 6))
    hidden_states, mask = add_garbage_padding(hidden_states, mask, extra=2, side="right", fill="nonfinite")

    pooled = run(pooler, hidden_states[-1], mask, hidden_states)
    pooled.sum().backward()

    assert torch.isfinite(pooled).all()
    for name, parameter in pooler.named_parameters():
        assert torch.isfinite(parameter.grad).all(), f"{head}: {name} has a non-finite gradient"


@pytest.mark.parametrize("strategy", [*FIXED_POOLERS, *HEADS])
def test_backbone_gradient_is_zero_on_padding(strategy):
    # When the backbone is fine-tuned, what sits under the padding must not be trained.
    pooler = trained_looking(build(HEADS[strategy], HIDDEN)) if strategy in HEADS else build_pooler(strategy)
    _, mask, hidden_states = batch(side="left")
    hidden_states = tuple(layer.requires_grad_() for layer in hidden_states)

    run(pooler, hidden_states[-1], mask, hidden_states).sum().backward()

    for layer in hidden_states:
        if layer.grad is not None:
            assert torch.isfinite(layer.grad).all()
            assert torch.equal(layer.grad[mask == 0], torch.zeros_like(layer.grad[mask == 0]))
    assert any(layer.grad is not None and layer.grad.abs().sum() > 0 for layer in hidden_states)


@pytest.mark.parametrize("num_heads", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("side", ["right", "left"])
def test_attention_pooling_starts_as_mean_pooling(num_heads, side):
    tokens, mask, _ = batch(side=side)
    head = AttentionPooling(HIDDEN, num_heads=num_heads)

    torch.testing.assert_close(head(tokens, mask), build_pooler("mean")(tokens, mask))
    # ...and training moves it away from the mean (so the check above can fail).
    assert not torch.allclose(trained_looking(head)(tokens, mask), build_pooler("mean")(tokens, mask), atol=1e-3)


@pytest.mark.parametrize("side", ["right", "left"])
def test_token_interaction_starts_as_mean_pooling_and_moves_once_trained(side):
    tokens, mask, hidden_states = batch(side=side)
    head = build(HEADS["token_interaction"], HIDDEN)
    mean = build_pooler("mean", hidden_size=HIDDEN)
    torch.testing.assert_close(run(head, tokens, mask, hidden_states), run(mean, tokens, mask, hidden_states))
    moved = run(trained_looking(head), tokens, mask, hidden_states)
    assert (moved - run(mean, tokens, mask, hidden_states)).abs().max() > 1e-2


def test_attention_weights_sum_to_one_over_real_tokens_and_skip_padding():
    tokens, mask, _ = batch(side="left")
    head = trained_looking(AttentionPooling(HIDDEN, num_heads=4))

    weights = head.attention_weights(tokens, mask.bool())

    assert weights.shape == (4, tokens.shape[1], 4)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4, 4))
    assert torch.equal(weights[mask == 0], torch.zeros_like(weights[mask == 0]))


@pytest.mark.parametrize("inner", ["mean", "cls", "max"])
def test_weighted_layer_pooling_starts_as_the_plain_average_of_its_layers(inner):
    tokens, mask, hidden_states = batch(side="left")
    head = WeightedLayerPooling(build_pooler(inner), layers=[0, 2, 3])

    average = (hidden_states[0] + hidden_states[2] + hidden_states[3]) / 3

    torch.testing.assert_close(head.layer_weights(), torch.full((3,), 1 / 3))
    torch.testing.assert_close(head(tokens, mask, hidden_states=hidden_states), build_pooler(inner)(average, mask))


def test_weighted_layer_pooling_with_a_count_mixes_the_top_layers():
    tokens, mask, hidden_states = batch()
    head = WeightedLayerPooling(build_pooler("mean"), layers=2)

    assert head.layer_indices(NUM_HIDDEN_STATES) == [2, 3]
    expected = build_pooler("mean")((hidden_states[2] + hidden_states[3]) / 2, mask)
    torch.testing.assert_close(head(tokens, mask, hidden_states=hidden_states), expected)


@pytest.mark.parametrize("fill", ["large", "nonfinite"])
@pytest.mark.parametrize("extra_side", ["right", "left"])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("head", HEADS)
def test_extra_padding_with_garbage_changes_nothing(head, side, extra_side, fill):
    pooler = trained_looking(build(HEADS[head], HIDDEN))
    tokens, mask, hidden_states = batch(side=side, seed=2)
    expected = run(pooler, tokens, mask, hidden_states)

    padded_states, padded_mask = add_garbage_padding(hidden_states, mask, extra=6, side=extra_side, fill=fill)
    pooled = run(pooler, padded_states[-1], padded_mask, padded_states)

    torch.testing.assert_close(pooled, expected)


@pytest.mark.parametrize("head", HEADS)
def test_a_row_without_real_tokens_pools_to_a_finite_zero_vector(head):
    pooler = trained_looking(build(HEADS[head], HIDDEN))
    tokens, mask, hidden_states = batch(lengths=(3, 0, 7), seed=3)
    for layer in hidden_states:
        layer[1] = float("nan")  # whatever the backbone left in an empty text

    pooled = run(pooler, tokens, mask, hidden_states)

    assert torch.equal(pooled[1], torch.zeros_like(pooled[1]))
    others = [0, 2]
    alone = run(pooler, tokens[others], mask[others], tuple(layer[others] for layer in hidden_states))
    torch.testing.assert_close(pooled[others], alone)


@pytest.mark.parametrize("head", HEADS)
def test_bfloat16_token_embeddings_give_bfloat16_close_to_float32(head):
    pooler = trained_looking(build(HEADS[head], HIDDEN))
    tokens, mask, hidden_states = batch(dtype=torch.bfloat16, seed=4)

    pooled = run(pooler, tokens, mask, hidden_states)
    in_float32 = run(pooler, tokens.float(), mask, tuple(layer.float() for layer in hidden_states))

    assert pooled.dtype == torch.bfloat16
    # float32 inside the head: only the final rounding to bf16 differs (half an ulp, 2**-8).
    torch.testing.assert_close(pooled.float(), in_float32, rtol=2**-8, atol=1e-6)


@pytest.mark.parametrize("strategy", [*FIXED_POOLERS, *HEADS])
def test_config_round_trip_rebuilds_the_same_pooler(strategy):
    original = trained_looking(build(HEADS[strategy], HIDDEN)) if strategy in HEADS else build_pooler(strategy, HIDDEN)
    tokens, mask, hidden_states = batch(seed=5)

    config = json.loads(json.dumps(original.get_config()))  # it must survive a JSON file
    rebuilt = pooler_from_config(config).eval()

    assert type(rebuilt) is type(original)
    assert rebuilt.get_config() == original.get_config()
    assert rebuilt.output_dim == original.output_dim
    if strategy in HEADS:  # fresh weights differ; the saved ones make it the same head
        assert not torch.allclose(run(rebuilt, tokens, mask, hidden_states), run(original, tokens, mask, hidden_states))
    rebuilt.load_state_dict(original.state_dict())
    assert torch.equal(run(rebuilt, tokens, mask, hidden_states), run(original, tokens, mask, hidden_states))


@pytest.mark.parametrize("name", ["attention", "latent_attention"])
def test_learned_head_without_hidden_size_says_what_to_pass(name):
    with pytest.raises(ValueError, match=rf"learned head '{name}' needs hidden_size=<the backbone's hidden size>"):
        build_pooler(name)


def test_weighted_layer_with_a_learned_inner_head_needs_hidden_size_too():
    with pytest.raises(ValueError, match=r"learned head 'attention' needs hidden_size"):
        build_pooler("weighted_layer", inner="attention")


def test_num_heads_that_do_not_divide_the_hidden_size_are_named():
    with pytest.raises(ValueError, match=r"num_heads=3 must divide hidden_size=16"):
        build_pooler("attention", hidden_size=HIDDEN, num_heads=3)
    with pytest.raises(ValueError, match=r"num_heads=5 must divide hidden_size=16"):
        build_pooler("latent_attention", hidden_size=HIDDEN, num_heads=5)


@pytest.mark.parametrize("layers, missing", [([0, 5], r"\[5\]"), (6, r"\[-6, -5\]"), ([-9, -1], r"\[-9\]")])
def test_weighted_layer_with_layers_the_backbone_lacks_names_them(layers, missing):
    tokens, mask, hidden_states = batch()
    head = WeightedLayerPooling(build_pooler("mean"), layers=layers)

    with pytest.raises(ValueError, match=rf"gives 4 hidden states .* layer\(s\) {missing} do not exist"):
        head(tokens, mask, hidden_states=hidden_states)


def test_weighted_layer_without_hidden_states_says_how_to_get_them():
    tokens, mask, _ = batch()
    with pytest.raises(ValueError, match=r"'weighted_layer' reads layers \[-3, -2, -1\].*output_hidden_states=True"):
        build_pooler("weighted_layer", layers=3)(tokens, mask)


def test_weighted_layer_refuses_an_inner_pooler_that_reads_layers():
    with pytest.raises(ValueError, match=r"inner pooler 'first_last_avg' reads several layers"):
        build_pooler("weighted_layer", inner="first_last_avg")


def test_hidden_states_of_another_forward_pass_are_refused():
    tokens, mask, hidden_states = batch()
    other = tuple(layer[:, :3] for layer in hidden_states)
    with pytest.raises(ValueError, match=r"hidden_states of shape\(s\) \[\(4, 3, 16\).*\(4, 9, 16\)"):
        build_pooler("weighted_layer", layers=2)(tokens, mask, hidden_states=other)
