"""TokenInteractionPooling: tokens attend to each other in a small transformer block, then the mean."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .base import ACCUMULATION_DTYPE, Pooler, masked_mean, zero_padding
from .errors import UserValueError


class InteractionBlock(nn.Module):
    """A pre-norm transformer block (self-attention over the real tokens, then a GELU MLP).

    Both residual branches end in a zero-initialised projection, so the block starts as the identity.
    """

    def __init__(self, hidden_size: int, num_heads: int, ffn_size: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.attention_norm = nn.LayerNorm(hidden_size)
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.attention_out = nn.Linear(hidden_size, hidden_size)
        self.ffn_norm = nn.LayerNorm(hidden_size)
        self.ffn_in = nn.Linear(hidden_size, ffn_size)
        self.ffn_out = nn.Linear(ffn_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def init_weights(self) -> None:
        for projection in (self.attention_out, self.ffn_out):
            nn.init.zeros_(projection.weight)
            nn.init.zeros_(projection.bias)

    def forward(self, x: Tensor, attend: Tensor) -> Tensor:
        B, T, H = x.shape
        q, k, v = self.qkv(self.attention_norm(x)).view(B, T, 3, self.num_heads, H // self.num_heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # B, heads, T, H / heads
        dropout = self.dropout.p if self.training else 0.0
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=attend[:, None, None, :], dropout_p=dropout)
        x = x + self.dropout(self.attention_out(mixed.transpose(1, 2).reshape(B, T, H)))
        return x + self.dropout(self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x)))))


class TokenInteractionPooling(Pooler):
    """Let the tokens of a text exchange information, then average them.

    Frozen token embeddings are each computed for the whole text already; a small trainable
    block on top lets them adapt to one another for the task (which tokens matter beside which)
    before the mean, something a per-token weighting (``attention``) cannot express.

    Args:
        hidden_size: hidden size of the token embeddings (also the output size).
        num_heads: attention heads of each block; must divide ``hidden_size``.
        ffn_size: width of each block's MLP; default ``hidden_size``.
        num_blocks: blocks applied in turn.
        dropout: dropout on attention weights and on each residual branch during training.

    ``init_weights`` zeroes the last projection of every residual branch, so at step 0 the
    blocks are the identity and the head *equals* mean pooling. Those projections are matrices,
    so the optimiser's weight decay pulls them back towards that start: a larger
    ``weight_decay`` keeps the head nearer to mean pooling.
    """

    name = "token_interaction"
    config_keys = ("hidden_size", "num_heads", "ffn_size", "num_blocks", "dropout")

    def __init__(
        self,
        hidden_size: int,
        num_heads: int = 4,
        ffn_size: int | None = None,
        num_blocks: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(hidden_size)
        if hidden_size % num_heads:
            raise UserValueError(f"num_heads={num_heads} must divide hidden_size={hidden_size}")
        if num_blocks < 1:
            raise UserValueError(f"num_blocks must be at least 1, got {num_blocks}")
        self.num_heads, self.num_blocks, self.dropout = num_heads, num_blocks, dropout
        self.ffn_size = ffn_size or hidden_size
        self.blocks = nn.ModuleList(
            InteractionBlock(hidden_size, num_heads, self.ffn_size, dropout) for _ in range(num_blocks)
        )
        self.init_weights()

    def init_weights(self) -> None:
        for block in self.blocks:
            block.init_weights()

    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        dtype = self.blocks[0].qkv.weight.dtype
        x = zero_padding(token_embeddings.to(ACCUMULATION_DTYPE), attention_mask).to(dtype)
        # A text without tokens would attend to nothing (softmax of all -inf = NaN): let it attend
        # everywhere instead; its output is masked away by the mean below.
        attend = attention_mask | ~attention_mask.any(dim=1, keepdim=True)
        for block in self.blocks:
            x = block(x, attend)
        return masked_mean(x, attention_mask).to(token_embeddings.dtype)

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, num_heads={self.num_heads}, num_blocks={self.num_blocks}"
