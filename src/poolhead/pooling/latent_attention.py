"""LatentAttentionPooling: learned latent queries cross-attend to the tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Pooler, check_inputs, has_tokens, zero_padding
from .errors import UserValueError


class LatentAttentionPooling(Pooler):
    """Multi-head cross-attention from learned latent queries to the real tokens.

    The attention-pooling head of timm's ``AttentionPoolLatent`` (MAP) and the latent
    attention idea of NV-Embed: ``num_latents`` learned queries attend over the tokens
    (padding masked out), an optional residual MLP refines them, the latents are averaged
    and optionally projected to ``output_dim``.

    Args:
        hidden_size: hidden size of the token embeddings.
        num_heads: attention heads; must divide ``hidden_size``.
        num_latents: number of learned queries (averaged at the end).
        mlp_ratio: hidden width of the residual MLP as a multiple of ``hidden_size``;
            0 disables the MLP.
        output_dim: size of the returned vector; ``None`` keeps ``hidden_size``.
        dropout: dropout on the attention weights and the MLP during training.
    """

    name = "latent_attention"
    config_keys = ("hidden_size", "num_heads", "num_latents", "mlp_ratio", "output_dim", "dropout")

    def __init__(
        self,
        hidden_size: int,
        num_heads: int = 8,
        num_latents: int = 1,
        mlp_ratio: float = 4.0,
        output_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(hidden_size)
        if hidden_size % num_heads:
            raise UserValueError(f"num_heads={num_heads} must divide hidden_size={hidden_size}")
        self.num_heads = num_heads
        self.num_latents = num_latents
        self.dropout = dropout
        self.mlp_ratio = mlp_ratio
        self._output_dim = output_dim
        self.latents = nn.Parameter(torch.empty(1, num_latents, hidden_size))
        self.q = nn.Linear(hidden_size, hidden_size)
        self.kv = nn.Linear(hidden_size, 2 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)
        mlp_hidden = int(hidden_size * mlp_ratio)
        self.norm = nn.LayerNorm(hidden_size) if mlp_hidden else None
        self.mlp = (
            nn.Sequential(
                nn.Linear(hidden_size, mlp_hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_hidden, hidden_size)
            )
            if mlp_hidden
            else None
        )
        self.out = nn.Linear(hidden_size, output_dim) if output_dim else None
        self.init_weights()

    def init_weights(self) -> None:
        """timm's choice: latents ~ N(0, d^-1/2) (unit-scale queries), linears Xavier, biases 0."""
        nn.init.trunc_normal_(self.latents, std=self.hidden_size**-0.5)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def output_dim(self) -> int:
        return self._output_dim or self.hidden_size

    def _attention_inputs(self, token_embeddings: Tensor, attention_mask: Tensor) -> tuple[Tensor, ...]:
        """Queries (B, heads, latents, d), keys and values (B, heads, T, d) and the (B, 1, 1, T) key mask."""
        B, T, H = token_embeddings.shape
        heads, head_dim = self.num_heads, H // self.num_heads
        x = zero_padding(token_embeddings.to(self.q.weight.dtype), attention_mask)
        q = self.q(self.latents.expand(B, -1, -1)).view(B, self.num_latents, heads, head_dim).transpose(1, 2)
        k, v = self.kv(x).view(B, T, 2, heads, head_dim).permute(2, 0, 3, 1, 4)
        # Empty rows attend to everything (avoids an all -inf softmax = NaN) and are zeroed later.
        key_mask = attention_mask | ~has_tokens(attention_mask)
        return q, k, v, key_mask.view(B, 1, 1, T)

    def attention_weights(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        """(B, latents, heads, T): each query's weights over the tokens, as ``pool`` attends (no dropout); 0 on
        padding and empty rows. ``pool``'s fused attention never exposes them."""
        attention_mask = check_inputs(self, token_embeddings, attention_mask)
        q, k, _, key_mask = self._attention_inputs(token_embeddings, attention_mask)
        scores = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).masked_fill(~key_mask, float("-inf"))
        weights = scores.softmax(dim=-1) * attention_mask.view(q.shape[0], 1, 1, -1)
        return weights.transpose(1, 2)

    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        B, T, H = token_embeddings.shape
        q, k, v, key_mask = self._attention_inputs(token_embeddings, attention_mask)
        drop = self.dropout if self.training else 0.0
        latents = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=drop)
        latents = self.proj(latents.transpose(1, 2).reshape(B, self.num_latents, H))
        if self.mlp is not None:
            latents = latents + self.mlp(self.norm(latents))
        pooled = latents.mean(dim=1)
        if self.out is not None:
            pooled = self.out(pooled)
        pooled = torch.where(has_tokens(attention_mask), pooled, torch.zeros_like(pooled))
        return pooled.to(token_embeddings.dtype)
