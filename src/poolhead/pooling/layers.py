"""WeightedLayerPooling: a learned, softmax-normalised mix of layers around any pooler."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .base import ACCUMULATION_DTYPE, Pooler, zero_padding
from .errors import UserValueError


class WeightedLayerPooling(Pooler):
    """Mix chosen layers with learned softmax weights, then pool with ``inner``.

    "Weighted layers + attention" is ``WeightedLayerPooling(inner=AttentionPooling(...))``:
    a composition, not another class.

    Args:
        inner: the pooler applied to the mixed token embeddings (any pooler that reads
            only one layer, fixed or learned).
        layers: which entries of the backbone's ``hidden_states`` to mix. An int ``n``
            means the top ``n`` layers; a sequence gives indices (0 = embedding layer,
            negative from the top).

    The weights are logits passed through a softmax, so the mix is always a convex
    combination (sentence-transformers' own class divides by an unconstrained sum, which
    can flip signs or blow up). ``init_weights`` starts them equal: a plain layer average.
    """

    name = "weighted_layer"
    config_keys = ("layers", "inner")

    def __init__(self, inner: Pooler, layers: int | Sequence[int] = 4) -> None:
        super().__init__(inner.hidden_size)
        if inner.needs_hidden_states:
            raise UserValueError(
                f"inner pooler '{inner.name}' reads several layers itself; WeightedLayerPooling "
                f"needs an inner pooler over one layer, e.g. 'mean' or 'attention'"
            )
        self.layers = tuple(range(-layers, 0)) if isinstance(layers, int) else tuple(layers)
        if not self.layers:
            raise UserValueError("WeightedLayerPooling needs at least one layer; got layers=[]")
        self.inner = inner
        self.layer_logits = nn.Parameter(torch.empty(len(self.layers)))
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.zeros_(self.layer_logits)

    @property
    def output_dim(self) -> int:
        return self.inner.output_dim

    def layer_weights(self) -> Tensor:
        return self.layer_logits.softmax(dim=0)

    def mix(self, layers: list[Tensor]) -> Tensor:
        """The weighted sum of ``layers``, in float32."""
        stacked = torch.stack([layer.to(ACCUMULATION_DTYPE) for layer in layers])  # L, B, T, H
        return torch.einsum("l,lbth->bth", self.layer_weights().to(ACCUMULATION_DTYPE), stacked)

    def pool_layers(self, layers: list[Tensor], attention_mask: Tensor) -> Tensor:
        # Padding is zeroed before mixing: the layer weights' gradient sums over every position.
        real_layers = [zero_padding(layer, attention_mask) for layer in layers]
        # The mix stays float32 into the inner pooler: rounding it to bf16 there would round twice.
        return self.inner(self.mix(real_layers), attention_mask).to(layers[-1].dtype)
