"""Every fixed strategy of one backbone, pooled from one backbone pass per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from poolhead.backbone import Backbone
from poolhead.encoder import Encoder, check_texts, encode_in_length_order
from poolhead.errors import UserValueError
from poolhead.evaluation.models import display_name
from poolhead.pooling.base import Pooler
from poolhead.pooling.registry import FIXED_POOLERS, build_pooler, canonical_name


def fixed_strategy_names(strategies: Sequence[str] | None = None) -> list[str]:
    """Canonical names of the fixed strategies to evaluate (all of them by default)."""
    if not strategies:
        return list(FIXED_POOLERS)
    names = []
    for strategy in strategies:
        name = canonical_name(strategy)
        if name not in FIXED_POOLERS:
            raise UserValueError(
                f"{strategy!r} is a learned head, not a fixed strategy; train it and pass the model with "
                f"--model, or choose fixed strategies among {', '.join(FIXED_POOLERS)}"
            )
        names.append(name)
    return list(dict.fromkeys(names))


class FixedStrategies:
    """Every fixed strategy of one backbone, pooled from a single forward pass per batch.

    Args:
        backbone: the encoder (a :class:`poolhead.backbone.Backbone`).
        strategies: fixed strategy names; default all of them.
        device: where the backbone runs; default CUDA when available.
        heads: learned heads (by row name) of models on this same backbone, pooled from the same pass.
    """

    def __init__(
        self,
        backbone: Backbone,
        strategies: Sequence[str] | None = None,
        device: str | torch.device | None = None,
        heads: dict[str, Pooler] | None = None,
    ) -> None:
        # The Encoder brings the tokenizer settings, device placement and eval mode.
        self.encoder = Encoder(backbone, pooler="mean", device=device)
        hidden_size = backbone.hidden_size
        self.poolers = {name: build_pooler(name, hidden_size=hidden_size) for name in fixed_strategy_names(strategies)}
        # Learned heads of models on this very backbone ride along: one backbone pass serves them too.
        for name, head in (heads or {}).items():
            if name in self.poolers:
                raise UserValueError(f"a head is named {name!r} like a fixed strategy; rename the model")
            self.poolers[name] = head.to(self.encoder.device).eval()
        for pooler in self.poolers.values():
            pooler.layer_indices(backbone.num_hidden_states)

    @torch.inference_mode()
    def backbone_pass(self, texts: Sequence[str]) -> tuple[dict[str, Tensor], Any]:
        """Tokenizer features and the backbone's outputs, with every layer's hidden states."""
        features = self.encoder.tokenize(texts)
        # All layers in the one pass: layer strategies (first_last_avg) read them, the rest ignore them.
        return features, self.encoder.model(**features, output_hidden_states=True)

    @torch.inference_mode()
    def pool(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """(B, D) embeddings of one batch for every strategy (and head)."""
        features, outputs = self.backbone_pass(texts)
        tokens, mask = outputs.last_hidden_state, features["attention_mask"]
        return {name: p(tokens, mask, hidden_states=outputs.hidden_states).float() for name, p in self.poolers.items()}

    def encode(self, texts: Sequence[str], batch_size: int = 32, show_progress_bar: bool = False) -> dict[str, Tensor]:
        """Strategy (or head) name -> (N, D) float32 CPU embeddings, in the order of ``texts``."""
        texts = list(texts)
        check_texts(texts)
        if not texts:
            raise UserValueError("no texts to encode; the evaluation data has no pairs")
        description = f"encode {display_name(self.encoder.backbone.name_or_path)} ({len(self.poolers)} strategies)"
        return encode_in_length_order(texts, self.pool, batch_size, description, show_progress_bar)
