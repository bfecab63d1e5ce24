"""The test catalogue (tests/catalogue.py) covers every registered pooler and every option of every head:
a head or option added to poolhead fails here until the catalogue lists it, and so every parametrised test
that reads the catalogue covers it too."""

from __future__ import annotations

import inspect

import pytest
import torch
from catalogue import ALIAS_NAMES, FIXED, HEADS, build, trained_looking

from poolhead import available_poolers
from poolhead.pooling.registry import COMPOSITIONS, LEARNED_POOLERS

# Set by the backbone, not by the user's config (composed heads take their inner pooler's).
NOT_OPTIONS = {"self", "hidden_size"}


def configs_within(config: dict | str):
    """``config`` and every config nested in it as an ``inner`` head (given as a config or a name plus inner_kwargs)."""
    if isinstance(config, str):
        yield {"name": config}
        return
    yield config
    inner = config.get("inner")
    if isinstance(inner, str):
        yield from configs_within({"name": inner, **config.get("inner_kwargs", {})})
    elif inner is not None:
        yield from configs_within(inner)


def options_given(name: str) -> set[str]:
    given = set()
    for config in HEADS.values():
        for nested in configs_within(config):
            if nested["name"] == name:
                given |= set(nested) - {"name", "inner_kwargs"}
    return given


def test_every_registered_name_is_in_the_catalogue():
    listed = {*FIXED, *ALIAS_NAMES, *(config["name"] for config in HEADS.values())}
    missing = [name for name in available_poolers() if name not in listed]
    assert not missing, f"add {missing} to tests/catalogue.py"


@pytest.mark.parametrize("name", LEARNED_POOLERS)
def test_every_option_of_every_head_is_in_the_catalogue(name):
    head_class = LEARNED_POOLERS[name]
    constructor = set(inspect.signature(head_class).parameters) - NOT_OPTIONS
    saved = set(head_class.config_keys) - NOT_OPTIONS
    missing = sorted((constructor | saved) - options_given(name))
    assert not missing, f"{name}: options {missing} are in no entry of tests/catalogue.py HEADS"


def test_composed_heads_are_listed_around_a_fixed_and_a_learned_inner_pooler():
    for name in COMPOSITIONS:
        inners = [config.get("inner", "mean") for config in HEADS.values() if config["name"] == name]
        inner_names = {inner if isinstance(inner, str) else inner["name"] for inner in inners}
        assert inner_names & set(FIXED) and inner_names & set(LEARNED_POOLERS), f"{name}: inner {inner_names}"


@pytest.mark.parametrize("head", HEADS)
def test_a_trained_looking_head_is_not_its_untrained_self(head):
    untrained = build(HEADS[head], hidden_size=16).eval()
    trained = trained_looking(build(HEADS[head], hidden_size=16))
    tokens = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))
    hidden_states = (tokens * 0.5, tokens * 2, tokens)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])

    assert not trained.training
    assert not torch.allclose(trained(tokens, mask, hidden_states=hidden_states),
                              untrained(tokens, mask, hidden_states=hidden_states), atol=1e-3)  # fmt: skip
