"""String-keyed registry: ``build_pooler("mean")``, ``build_pooler("attention", hidden_size=384)``."""

from __future__ import annotations

from typing import Any

from . import fixed
from .attention import AttentionPooling
from .base import Pooler
from .errors import UserTypeError, UserValueError
from .latent_attention import LatentAttentionPooling
from .layers import WeightedLayerPooling
from .options import check_pooler_options
from .projected import ProjectedPooling
from .token_interaction import TokenInteractionPooling

FIXED_POOLERS: dict[str, type[Pooler]] = {
    cls.name: cls
    for cls in (
        fixed.CLSPooling,
        fixed.EOSPooling,
        fixed.MeanPooling,
        fixed.MaxPooling,
        fixed.MinPooling,
        fixed.MeanSqrtLenPooling,
        fixed.WeightedMeanPooling,
        fixed.FirstLastAvgPooling,
        fixed.MeanMaxPooling,
    )
}
LEARNED_POOLERS: dict[str, type[Pooler]] = {
    cls.name: cls
    for cls in (
        AttentionPooling,
        LatentAttentionPooling,
        TokenInteractionPooling,
        WeightedLayerPooling,
        ProjectedPooling,
    )
}
#: Heads built around an ``inner`` pooler (given as a name, a config or a pooler, plus ``inner_kwargs``).
COMPOSITIONS: dict[str, type[Pooler]] = {cls.name: cls for cls in (WeightedLayerPooling, ProjectedPooling)}
#: Other names users know from sentence-transformers and papers.
ALIASES = {
    "lasttoken": "eos",
    "last": "eos",
    "mean_sqrt_len_tokens": "mean_sqrt_len",
    "weightedmean": "weighted_mean",
}


def available_poolers() -> list[str]:
    """Every name ``build_pooler`` accepts, fixed strategies first."""
    return [*FIXED_POOLERS, *LEARNED_POOLERS, *ALIASES]


def canonical_name(name: str) -> str:
    key = ALIASES.get(name, name)
    if key not in FIXED_POOLERS and key not in LEARNED_POOLERS:
        raise UserValueError(f"unknown pooling strategy {name!r}; choose one of {', '.join(available_poolers())}")
    return key


def build_pooler(name: str, hidden_size: int | None = None, **kwargs: Any) -> Pooler:
    """Build any pooler by name.

    Fixed strategies need no ``hidden_size`` (give it to get ``output_dim`` and a shape
    check); learned heads require it. ``weighted_layer`` and ``projected`` take ``inner`` as a
    name or a pooler (default ``mean``), plus ``inner_kwargs`` for a named inner head.
    """
    key = canonical_name(name)
    if key in FIXED_POOLERS:
        if kwargs:
            raise UserValueError(f"fixed strategy {key!r} takes no options; got {sorted(kwargs)}")
        return FIXED_POOLERS[key](hidden_size)
    if key in COMPOSITIONS:
        check_pooler_options(COMPOSITIONS[key], key, kwargs, extra=("inner_kwargs",))
        inner = kwargs.pop("inner", "mean")
        inner_kwargs = kwargs.pop("inner_kwargs", None) or {}
        if isinstance(inner, dict):
            inner = pooler_from_config({**inner, "hidden_size": inner.get("hidden_size") or hidden_size})
        elif isinstance(inner, str):
            inner = build_pooler(inner, hidden_size=hidden_size, **inner_kwargs)
        return COMPOSITIONS[key](inner, **kwargs)
    if hidden_size is None:
        raise UserValueError(f"learned head {key!r} needs hidden_size=<the backbone's hidden size>")
    check_pooler_options(LEARNED_POOLERS[key], key, kwargs)
    return LEARNED_POOLERS[key](hidden_size, **kwargs)


def pooler_from_config(config: dict[str, Any]) -> Pooler:
    """Inverse of ``Pooler.get_config()``: rebuild a pooler (weights not included)."""
    config = dict(config)
    if "name" not in config:
        raise UserValueError(f"pooler config {config} has no 'name'; expected e.g. {{'name': 'mean'}}")
    return build_pooler(config.pop("name"), **config)


def resolve_pooler(pooler: str | dict[str, Any] | Pooler, hidden_size: int, **options: Any) -> Pooler:
    """The pooler for a backbone of ``hidden_size`` (training, encoding, export and loading all ask here).

    A missing hidden size is filled in (an instance is rebuilt from its config, weights kept); another
    hidden size is refused before any forward pass. ``options`` go with a pooler given by name."""
    if options:
        if not isinstance(pooler, str):
            raise UserValueError(
                f"options {sorted(options)} go with a pooler given by name; put them in its config instead"
            )
        pooler = {"name": pooler, **options}
    if isinstance(pooler, Pooler):
        registered = type(pooler) is {**FIXED_POOLERS, **LEARNED_POOLERS}.get(pooler.name)
        if pooler.hidden_size is None and registered:
            rebuilt = resolve_pooler(pooler.get_config(), hidden_size)
            rebuilt.load_state_dict(pooler.state_dict())
            return rebuilt.train(pooler.training)
        if pooler.hidden_size not in (None, hidden_size):
            raise UserValueError(
                f"pooler '{pooler.name}' was built for hidden size {pooler.hidden_size} but the backbone's "
                f"hidden size is {hidden_size}: build it with hidden_size={hidden_size}"
            )
        return pooler
    if isinstance(pooler, str):
        pooler = {"name": pooler}
    if not isinstance(pooler, dict):
        raise UserTypeError(f"pooler must be a strategy name, a config dict or a Pooler, got {type(pooler).__name__}")
    built = pooler_from_config({**pooler, "hidden_size": pooler.get("hidden_size") or hidden_size})
    # A config dict may carry its own hidden_size (e.g. copied from another backbone's run).
    if built.hidden_size != hidden_size:
        raise UserValueError(
            f"pooler {pooler!r} is set to hidden_size={built.hidden_size} but the backbone's hidden size is "
            f"{hidden_size}: set hidden_size: {hidden_size} (or leave it out)"
        )
    return built
