"""Fixed pooling strategies equal a naive per-row reference and sentence-transformers' Pooling.

The reference below is written independently of poolhead: a Python loop over rows that
slices out the real tokens and reduces them in float64.
"""

from __future__ import annotations

import math

import pytest
import torch
from sentence_transformers.sentence_transformer.modules import Pooling as STPooling
from standins import add_garbage_padding, padded_batch

from poolhead import FIXED_POOLERS, build_pooler

HIDDEN = 16
# Every fixed strategy, plus the names users know from sentence-transformers.
STRATEGIES = [*FIXED_POOLERS, "lasttoken", "weightedmean", "mean_sqrt_len_tokens"]
SAME_AS = {"lasttoken": "eos", "weightedmean": "weighted_mean", "mean_sqrt_len_tokens": "mean_sqrt_len"}


def reduce_real_tokens(strategy: str, real: torch.Tensor, first_layer_real: torch.Tensor) -> torch.Tensor:
    """One row's pooled vector from its real tokens (n, H), in float64."""
    n = real.shape[0]
    positions = torch.arange(1, n + 1, dtype=torch.float64).unsqueeze(1)
    reductions = {
        "cls": lambda: real[0],
        "eos": lambda: real[-1],
        "mean": lambda: real.mean(0),
        "max": lambda: real.max(0).values,
        "min": lambda: real.min(0).values,
        "mean_sqrt_len": lambda: real.sum(0) / math.sqrt(n),
        "weighted_mean": lambda: (real * positions).sum(0) / positions.sum(),
        "first_last_avg": lambda: ((first_layer_real + real) / 2).mean(0),
        "mean_max": lambda: torch.cat([real.mean(0), real.max(0).values]),
    }
    return reductions[SAME_AS.get(strategy, strategy)]()


def naive_pool(strategy: str, hidden_states: tuple[torch.Tensor, ...], mask: torch.Tensor) -> torch.Tensor:
    rows = []
    for b in range(mask.shape[0]):
        keep = mask[b].bool()
        real = hidden_states[-1][b][keep].double()
        first_layer_real = hidden_states[1][b][keep].double()
        rows.append(reduce_real_tokens(strategy, real, first_layer_real))
    return torch.stack(rows)


def random_lengths(seed: int, batch: int = 8, longest: int = 40) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, longest + 1, (batch,), generator=generator).tolist()
    return [1, longest, *lengths]  # always a one-token row and a row without padding


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_float32_matches_naive_reference(strategy, side, seed):
    tokens, mask, hidden_states = padded_batch(random_lengths(seed), HIDDEN, side, num_layers=3, seed=seed)

    pooled = build_pooler(strategy)(tokens, mask, hidden_states=hidden_states)

    assert pooled.dtype == torch.float32
    torch.testing.assert_close(pooled.double(), naive_pool(strategy, hidden_states, mask), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_bfloat16_is_the_float32_result_rounded_once(strategy, side):
    # Accumulating in float32 leaves only the final rounding to bf16: at most half a bf16
    # ulp, i.e. 2**-8 relative. Summing 40 tokens in bf16 itself would exceed that.
    tokens, mask, hidden_states = padded_batch(random_lengths(3), HIDDEN, side, torch.bfloat16, num_layers=3, seed=3)

    pooled = build_pooler(strategy)(tokens, mask, hidden_states=hidden_states)

    assert pooled.dtype == torch.bfloat16
    reference = naive_pool(strategy, hidden_states, mask)  # float64 of the bf16-rounded inputs
    torch.testing.assert_close(pooled.double(), reference, rtol=2**-8, atol=1e-6)


def test_bfloat16_mean_over_a_long_text_keeps_float32_accuracy():
    tokens, mask, _ = padded_batch([512, 300], HIDDEN, "right", torch.bfloat16, seed=4)
    tokens = tokens + 8  # a large common offset is where bf16 sums go wrong

    pooled = build_pooler("mean")(tokens, mask)

    torch.testing.assert_close(pooled.double(), naive_pool("mean", (tokens, tokens), mask), rtol=2**-8, atol=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("mode", STPooling.POOLING_MODES)
def test_matches_sentence_transformers_pooling(mode, side, dtype):
    tokens, mask, _ = padded_batch(random_lengths(5), HIDDEN, side, dtype, seed=5)

    theirs = STPooling(HIDDEN, pooling_mode=mode)({"token_embeddings": tokens, "attention_mask": mask})
    ours = build_pooler(mode)(tokens, mask)

    assert ours.dtype == theirs["sentence_embedding"].dtype
    tolerance = {"rtol": 2**-7, "atol": 1e-6} if dtype == torch.bfloat16 else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(ours, theirs["sentence_embedding"], **tolerance)


@pytest.mark.parametrize("extra_side", ["right", "left"])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_extra_padding_with_garbage_changes_nothing(strategy, side, extra_side):
    tokens, mask, hidden_states = padded_batch(random_lengths(6), HIDDEN, side, num_layers=3, seed=6)
    pooler = build_pooler(strategy)
    expected = pooler(tokens, mask, hidden_states=hidden_states)

    padded_states, padded_mask = add_garbage_padding(hidden_states, mask, extra=7, side=extra_side)
    pooled = pooler(padded_states[-1], padded_mask, hidden_states=padded_states)

    torch.testing.assert_close(pooled, expected)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_nan_and_inf_under_the_mask_never_reach_the_output(strategy):
    # Backbones can leave non-finite values at masked positions (fully masked attention
    # rows, fp16 overflow); the mask must select them away, not multiply them by zero.
    tokens, mask, hidden_states = padded_batch([4, 9, 2], HIDDEN, "left", num_layers=3, seed=7)
    pooler = build_pooler(strategy)
    expected = pooler(tokens, mask, hidden_states=hidden_states)

    padded_states, padded_mask = add_garbage_padding(hidden_states, mask, extra=3, side="right", fill="nonfinite")
    pooled = pooler(padded_states[-1], padded_mask, hidden_states=padded_states)

    torch.testing.assert_close(pooled, expected)


@pytest.mark.parametrize("fill", ["large", "nonfinite"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_row_without_real_tokens_pools_to_a_finite_zero_vector(strategy, fill):
    tokens, mask, hidden_states = padded_batch([3, 0, 5], HIDDEN, num_layers=3, seed=8)
    for layer in hidden_states:  # row 1, an empty text, holds garbage
        layer[1] = float("nan") if fill == "nonfinite" else 1e4 * layer[1]
    pooler = build_pooler(strategy)

    pooled = pooler(tokens, mask, hidden_states=hidden_states)

    assert torch.equal(pooled[1], torch.zeros_like(pooled[1]))
    others = [0, 2]
    alone = pooler(tokens[others], mask[others], hidden_states=tuple(layer[others] for layer in hidden_states))
    torch.testing.assert_close(pooled[others], alone)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_mask_means_every_token_is_real(strategy):
    tokens, mask, hidden_states = padded_batch([6, 6], HIDDEN, seed=9, num_layers=3)

    torch.testing.assert_close(
        build_pooler(strategy)(tokens, None, hidden_states=hidden_states),
        build_pooler(strategy)(tokens, mask, hidden_states=hidden_states),
    )


def test_output_dim_is_the_width_of_the_output():
    tokens, mask, hidden_states = padded_batch([3, 2], HIDDEN, num_layers=3)
    for strategy in STRATEGIES:
        pooler = build_pooler(strategy, hidden_size=HIDDEN)
        assert pooler(tokens, mask, hidden_states=hidden_states).shape == (2, pooler.output_dim), strategy
    assert build_pooler("mean_max", hidden_size=HIDDEN).output_dim == 2 * HIDDEN


def test_only_layer_strategies_ask_for_hidden_states():
    asking = {name for name in STRATEGIES if build_pooler(name).needs_hidden_states}
    assert asking == {"first_last_avg"}
    assert build_pooler("first_last_avg").layer_indices(7) == [1, 6]


def test_unknown_strategy_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown pooling strategy 'avg'; choose one of cls, eos, mean, max"):
        build_pooler("avg")


def test_fixed_strategy_rejects_options():
    with pytest.raises(ValueError, match=r"fixed strategy 'mean' takes no options; got \['num_heads'\]"):
        build_pooler("mean", num_heads=4)


def test_mask_of_another_shape_is_named():
    tokens, _, _ = padded_batch([5, 5], HIDDEN)
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 4\).*\(batch, tokens\) = \(2, 5\)"):
        build_pooler("mean")(tokens, torch.ones(2, 4))


def test_wrong_hidden_size_is_named():
    tokens, mask, _ = padded_batch([5, 3], HIDDEN)
    with pytest.raises(ValueError, match=r"built for hidden size 8 but got token embeddings of hidden size 16"):
        build_pooler("cls", hidden_size=8)(tokens, mask)


def test_two_dimensional_input_asks_for_a_batch_dimension():
    with pytest.raises(ValueError, match=r"got shape \(5, 16\).*unsqueeze\(0\)"):
        build_pooler("mean")(torch.randn(5, HIDDEN))


def test_layer_strategy_without_hidden_states_says_how_to_get_them():
    tokens, mask, _ = padded_batch([5, 3], HIDDEN)
    with pytest.raises(ValueError, match=r"'first_last_avg' reads layers \[1, -1\].*output_hidden_states=True"):
        build_pooler("first_last_avg")(tokens, mask)


def test_layer_strategy_on_a_backbone_with_only_embeddings_names_the_missing_layer():
    tokens, mask, _ = padded_batch([5, 3], HIDDEN)
    with pytest.raises(ValueError, match=r"gives 1 hidden states.*layer\(s\) \[1\] do not exist"):
        build_pooler("first_last_avg")(tokens, mask, hidden_states=(tokens,))
