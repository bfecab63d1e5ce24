"""Every registered pooler with its options, as a user writes them in a config, and a head made to look trained.

One catalogue for every parametrised test, so that a new head or option is covered everywhere at once
(tests/test_catalogue.py fails until it is listed here). The configs fit every backbone the tests use:
hidden sizes 16 to 384 (so num_heads is 1, 2 or 4) and at least 3 hidden states (embeddings + 2 layers,
as the tiny BERT has), so ``layers`` and ``score_layer`` stay within indices -3..2.
"""

from __future__ import annotations

from typing import Any

import torch

from poolhead import build_pooler
from poolhead.pooling.registry import ALIASES, FIXED_POOLERS

#: The fixed strategies, by their registered names.
FIXED: list[str] = list(FIXED_POOLERS)
#: Other names users know them by (sentence-transformers', papers').
ALIAS_NAMES: list[str] = list(ALIASES)

#: The learned heads, each option of each head in at least one entry.
HEADS: dict[str, dict[str, Any]] = {
    "attention": {"name": "attention", "num_heads": 4},
    "attention_1_head": {"name": "attention", "num_heads": 1, "temperature": 2.0},
    "attention_floor_scored_early": {"name": "attention", "num_heads": 2, "uniform_floor": 0.3, "score_layer": 1},
    "attention_pulled_to_uniform": {"name": "attention", "num_heads": 2, "uniform_penalty": 0.5, "dropout": 0.1},
    "latent_attention": {"name": "latent_attention", "num_heads": 4, "num_latents": 2, "output_dim": 24},
    "latent_attention_no_mlp": {"name": "latent_attention", "num_heads": 2, "mlp_ratio": 0.0, "dropout": 0.1},
    "token_interaction": {"name": "token_interaction", "num_heads": 2, "ffn_size": 8, "num_blocks": 2, "dropout": 0.2},
    "weighted_layer+attention": {
        "name": "weighted_layer",
        "inner": "attention",
        "inner_kwargs": {"num_heads": 2},
        "layers": 3,
    },
    # Softmax weights over layers around a fixed pooler: exported as sentence-transformers' own modules.
    "weighted_layer+mean": {"name": "weighted_layer", "inner": "mean", "layers": [0, 2]},
    "projected": {"name": "projected"},
    "projected_without_bias": {"name": "projected", "inner": "max", "bias": False},
    "projected+attention": {"name": "projected", "inner": "attention", "inner_kwargs": {"num_heads": 2}},
    "projected+weighted_layer+attention": {
        "name": "projected",
        "inner": {"name": "weighted_layer", "inner": "attention", "layers": 2},
    },
}


def build(config: dict[str, Any] | str, hidden_size: int):
    """The pooler a config file describes (``{"name": ..., **options}`` or a bare name), for ``hidden_size``."""
    config = {"name": config} if isinstance(config, str) else dict(config)
    return build_pooler(config.pop("name"), hidden_size=hidden_size, **config)


def trained_looking(pooler: torch.nn.Module, seed: int = 0, scale: float = 0.5) -> torch.nn.Module:
    """``pooler`` with every parameter moved off its initial value, as after training; in eval mode.

    Every learned head starts as exactly mean pooling (or its inner pooler): a test that compared an
    untrained head would pass for a head that silently fell back to the mean. Each parameter gets
    Gaussian noise of std ``scale`` added (seeded, so reruns see the same head); adding rather than
    replacing keeps the init's structure (layer norms near one) and moves zero-initialised scorers and
    layer logits to random ones. A larger ``scale`` gives sharper attention.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in pooler.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return pooler.eval()
