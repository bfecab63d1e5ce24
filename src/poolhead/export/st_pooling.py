"""The sentence-transformers modules that reproduce a poolhead pooler.

sentence-transformers' own ``Pooling`` and ``WeightedLayerPooling`` load anywhere with
``trust_remote_code=False``, so every pooler they can express exactly is exported with
them; the rest travel as :class:`PoolheadPooling` with the pooling code beside them.
"""

from __future__ import annotations

import copy

import torch
from sentence_transformers.base.modules.module import Module
from sentence_transformers.sentence_transformer.modules import Pooling, WeightedLayerPooling
from torch import Tensor, nn

from poolhead.errors import UserValueError
from poolhead.export.st_module import PoolheadPooling
from poolhead.pooling.base import Pooler
from poolhead.pooling.layers import WeightedLayerPooling as PoolheadLayerPooling
from poolhead.pooling.registry import FIXED_POOLERS, LEARNED_POOLERS, pooler_from_config

#: poolhead strategy -> sentence-transformers ``Pooling(pooling_mode=...)`` computing the same vector.
#: ``mean_max`` is a tuple: ST concatenates tuple modes in the order given, i.e. [mean, max].
ST_POOLING_MODES: dict[str, str | tuple[str, ...]] = {
    "cls": "cls",
    "eos": "lasttoken",
    "mean": "mean",
    "max": "max",
    "mean_sqrt_len": "mean_sqrt_len_tokens",
    "weighted_mean": "weightedmean",
    "mean_max": ("mean", "max"),
}


def sentence_transformers_pooling(pooler: Pooler, num_hidden_states: int) -> list[Module]:
    """Modules that turn the Transformer's features into this pooler's sentence embedding.

    Args:
        pooler: a registered poolhead pooler with its hidden size set.
        num_hidden_states: length of the backbone's ``hidden_states`` (embeddings + layers).

    sentence-transformers modules where they compute the same vector; otherwise one
    :class:`PoolheadPooling` holding a copy of the pooler (the caller's stays untouched).
    """
    check_exportable(pooler)
    native = native_pooling(pooler, num_hidden_states)
    if native is not None:
        return native
    return [PoolheadPooling(copy.deepcopy(pooler).cpu().eval())]


def native_pooling(pooler: Pooler, num_hidden_states: int) -> list[Module] | None:
    """sentence-transformers' own modules for ``pooler``, or None where they cannot express it."""
    hidden_size = pooler.hidden_size
    if pooler.name == "weighted_layer":
        mode = ST_POOLING_MODES.get(pooler.inner.name)
        if mode is None or type(pooler.inner) is not FIXED_POOLERS[pooler.inner.name]:
            return None
        weights = pooler.layer_weights().detach().float().cpu()
        mix = layer_mix(pooler.layer_indices(num_hidden_states), weights, num_hidden_states, hidden_size)
        return [mix, Pooling(hidden_size, pooling_mode=mode)]
    if pooler.name == "first_last_avg":
        # The average of two layers is a layer mix with weights 1/2 and 1/2.
        mix = layer_mix(pooler.layer_indices(num_hidden_states), torch.full((2,), 0.5), num_hidden_states, hidden_size)
        return [mix, Pooling(hidden_size, pooling_mode="mean")]
    mode = ST_POOLING_MODES.get(pooler.name)
    if mode is None or pooler.needs_hidden_states:
        return None
    return [Pooling(hidden_size, pooling_mode=mode)]


def layer_mix(indices: list[int], weights: Tensor, num_hidden_states: int, hidden_size: int) -> WeightedLayerPooling:
    """ST's WeightedLayerPooling giving ``sum_i weights[i] * hidden_states[indices[i]]`` for weights summing to 1.

    ST mixes *every* layer from ``layer_start`` to the last and divides by the sum of its
    weights: layers poolhead does not read get weight 0, so the sum stays 1 and the mix
    is poolhead's own.
    """
    layer_start = min(indices)
    full = torch.zeros(num_hidden_states - layer_start)
    for index, weight in zip(indices, weights, strict=False):
        full[index - layer_start] += weight
    return WeightedLayerPooling(
        hidden_size,
        num_hidden_layers=num_hidden_states - 1,
        layer_start=layer_start,
        layer_weights=nn.Parameter(full),
    )


def pooler_from_layer_mix(modules: list[Module]) -> Pooler | None:
    """Inverse of :func:`layer_mix` + ``Pooling``: the poolhead head those modules compute (``inspect``
    shows its weights), or None where they hold no layer mix followed by a mode poolhead knows."""
    mix = next((i for i, m in enumerate(modules) if isinstance(m, WeightedLayerPooling)), None)
    if mix is None or mix + 1 >= len(modules) or not isinstance(modules[mix + 1], Pooling):
        return None
    mode = modules[mix + 1].get_config_dict().get("pooling_mode")
    strategy = next((name for name, st_mode in ST_POOLING_MODES.items() if st_mode == mode), None)
    if strategy is None or not isinstance(mode, str):  # a concatenation (mean_max) is no layer-mix head
        return None
    weights = modules[mix].layer_weights.detach().float().cpu()
    layers = [modules[mix].layer_start + i for i in torch.nonzero(weights).flatten().tolist()]
    inner = FIXED_POOLERS[strategy](modules[mix].embedding_dimension)
    head = PoolheadLayerPooling(inner, layers=layers)
    with torch.no_grad():
        # softmax(log w) = w / sum(w): the mix sentence-transformers computes.
        head.layer_logits.copy_(torch.log(weights[weights != 0] / weights.sum()))
    return head.eval()


def check_exportable(pooler: Pooler) -> None:
    """Refuse poolers an export could not rebuild: unregistered, no hidden size, or another pooler from its config."""
    registered = {**FIXED_POOLERS, **LEARNED_POOLERS}
    if type(pooler) is not registered.get(pooler.name):
        raise UserValueError(
            f"{type(pooler).__name__} (name {pooler.name!r}) is not one of poolhead's registered poolers "
            f"({', '.join(registered)}): an export rebuilds the pooler from its config by name, so "
            f"register the class or export a built-in pooler"
        )
    if pooler.hidden_size is None:
        raise UserValueError(f"pooler '{pooler.name}' has no hidden_size; build it with hidden_size=<the backbone's>")
    config = pooler.get_config()
    try:
        rebuilt = pooler_from_config(config)
    except (TypeError, ValueError) as error:
        raise UserValueError(f"pooler '{pooler.name}' cannot be rebuilt from its config {config} ({error})") from error
    lost = [key for key, value in config.items() if rebuilt.get_config().get(key) != value]
    if lost or rebuilt.state_dict().keys() != pooler.state_dict().keys():
        raise UserValueError(
            f"pooler '{pooler.name}' does not round-trip through get_config(): rebuilt from its config it "
            f"differs in {sorted(lost) or 'its weights'}; give its constructor every key in config_keys"
        )
