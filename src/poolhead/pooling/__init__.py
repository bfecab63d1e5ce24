"""Pooling modules: fixed strategies and learnable heads behind one interface."""

from .attention import AttentionPooling
from .base import Pooler
from .fixed import (
    CLSPooling,
    EOSPooling,
    FirstLastAvgPooling,
    MaxPooling,
    MeanMaxPooling,
    MeanPooling,
    MeanSqrtLenPooling,
    MinPooling,
    WeightedMeanPooling,
)
from .latent_attention import LatentAttentionPooling
from .layers import WeightedLayerPooling
from .projected import ProjectedPooling
from .registry import (
    FIXED_POOLERS,
    LEARNED_POOLERS,
    available_poolers,
    build_pooler,
    pooler_from_config,
    resolve_pooler,
)
from .token_interaction import TokenInteractionPooling

__all__ = [
    "AttentionPooling",
    "CLSPooling",
    "EOSPooling",
    "FIXED_POOLERS",
    "FirstLastAvgPooling",
    "LEARNED_POOLERS",
    "LatentAttentionPooling",
    "MaxPooling",
    "MeanMaxPooling",
    "MeanPooling",
    "MeanSqrtLenPooling",
    "MinPooling",
    "Pooler",
    "ProjectedPooling",
    "TokenInteractionPooling",
    "WeightedLayerPooling",
    "WeightedMeanPooling",
    "available_poolers",
    "build_pooler",
    "pooler_from_config",
    "resolve_pooler",
]
