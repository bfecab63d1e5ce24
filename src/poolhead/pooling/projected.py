"""ProjectedPooling: any pooler's vector plus a learned linear correction that starts at zero."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import ACCUMULATION_DTYPE, Pooler, has_tokens
from .errors import UserValueError


class ProjectedPooling(Pooler):
    """Pool with ``inner``, then add a learned linear map of the pooled vector: ``v + W v + b``.

    A frozen backbone trained with mean pooling (all-MiniLM-L6-v2 and most sentence-transformers
    models) already gives a good mean; re-weighting its tokens fights that training. A linear
    adapter keeps the mean and learns which directions of it to stretch, shrink or rotate for the
    task (and, with ``bias``, a shift such as removing a common direction shared by all texts).

    Args:
        inner: the pooler whose vector is corrected (default mean pooling; any pooler, fixed or
            learned, e.g. an ``attention`` head or a ``weighted_layer`` mix).
        bias: learn the shift ``b`` too.

    ``init_weights`` zeroes ``W`` and ``b``, so at step 0 the head *equals* ``inner``. ``W`` is a
    matrix, so the optimiser's weight decay pulls it back towards that start: a larger
    ``weight_decay`` keeps the head nearer to ``inner`` and lets it move only where the data insists.
    """

    name = "projected"
    config_keys = ("inner", "bias")

    def __init__(self, inner: Pooler, bias: bool = True) -> None:
        super().__init__(inner.hidden_size)
        if inner.hidden_size is None:
            raise UserValueError(
                f"ProjectedPooling needs an inner pooler with its hidden size set; build it with "
                f"build_pooler({inner.name!r}, hidden_size=<the backbone's hidden size>)"
            )
        self.inner = inner
        self.bias = bias
        self.correction = nn.Linear(inner.output_dim, inner.output_dim, bias=bias)
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.zeros_(self.correction.weight)
        if self.correction.bias is not None:
            nn.init.zeros_(self.correction.bias)

    @property
    def layers(self) -> tuple[int, ...] | None:
        return self.inner.layers

    @property
    def output_dim(self) -> int:
        return self.inner.output_dim

    def project(self, pooled: Tensor, attention_mask: Tensor) -> Tensor:
        corrected = pooled + self.correction(pooled.to(self.correction.weight.dtype)).to(pooled.dtype)
        # A text without tokens stays the zero vector every pooler gives it, not the bias b.
        return torch.where(has_tokens(attention_mask), corrected, torch.zeros_like(corrected))

    # The inner pooler runs on float32 copies: rounding its vector to bf16 before the correction
    # would round twice.
    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        pooled = self.inner(token_embeddings.to(ACCUMULATION_DTYPE), attention_mask)
        return self.project(pooled, attention_mask).to(token_embeddings.dtype)

    def pool_layers(self, layers: list[Tensor], attention_mask: Tensor) -> Tensor:
        pooled = self.inner.pool_layers([layer.to(ACCUMULATION_DTYPE) for layer in layers], attention_mask)
        return self.project(pooled, attention_mask).to(layers[-1].dtype)
