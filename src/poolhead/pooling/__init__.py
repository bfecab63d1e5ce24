"""Pooling modules: fixed strategies and learnable heads behind one interface."""

from poolhead.pooling.attention import AttentionPooling
from poolhead.pooling.base import Pooler
from poolhead.pooling.fixed import (
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
from poolhead.pooling.latent_attention import LatentAttentionPooling
from poolhead.pooling.layers import WeightedLayerPooling
from poolhead.pooling.registry import (
    FIXED_POOLERS,
    LEARNED_POOLERS,
    available_poolers,
    build_pooler,
    pooler_from_config,
)

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
    "WeightedLayerPooling",
    "WeightedMeanPooling",
    "available_poolers",
    "build_pooler",
    "pooler_from_config",
]
