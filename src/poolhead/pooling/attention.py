"""AttentionPooling: a learned weighted mean of the tokens that starts as the plain mean."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import ACCUMULATION_DTYPE, Pooler, has_tokens, zero_padding
from .errors import UserValueError


class AttentionPooling(Pooler):
    """Softmax-weighted average of the real tokens, with one weight per token and head.

    A linear scorer (no bias: softmax ignores a constant shift) gives each token one logit
    per head; head ``h`` averages channel slice ``h`` of the hidden size with its own
    weights, so the output keeps the hidden size.

    Args:
        hidden_size: hidden size of the token embeddings (also the output size).
        num_heads: number of independent weightings; must divide ``hidden_size``.
        dropout: dropout on the attention logits during training (regularises the head
            towards the mean it starts from).
        temperature: logits are divided by it; larger is smoother.
        uniform_penalty: weight of a penalty, added to the training loss, on how far each text's
            weights are from uniform (the KL divergence from them to uniform, averaged over texts,
            heads and a step's forward passes); anchors the head to the mean pooling it starts
            from. 0 turns it off.
        uniform_floor: the share of each text's weight spread evenly over its real tokens, the
            rest following the scorer: ``(1 - floor) * softmax + floor / n``. Every token keeps at
            least ``floor / n`` of the weight, so the head can stress tokens but never drop one;
            out of domain, dropped tokens are what cost a head against mean pooling. 0 turns it
            off, 1 is mean pooling.
        score_layer: the entry of the backbone's ``hidden_states`` that the scorer reads (0 = the
            embedding layer, 1 = the first transformer layer); the last layer is still the one
            averaged. A shallow layer gives weights that depend mostly on the word, not its
            context, as SIF's word frequencies do, which carry across domains. ``None`` scores
            the averaged layer itself.

    ``init_weights`` zeroes the scorer, so at step 0 every real token gets the same weight
    and the head *equals* mean pooling: training can only move it to something better.
    """

    name = "attention"
    config_keys = (
        "hidden_size",
        "num_heads",
        "dropout",
        "temperature",
        "uniform_penalty",
        "uniform_floor",
        "score_layer",
    )

    def __init__(
        self,
        hidden_size: int,
        num_heads: int = 1,
        dropout: float = 0.0,
        temperature: float = 1.0,
        uniform_penalty: float = 0.0,
        uniform_floor: float = 0.0,
        score_layer: int | None = None,
    ) -> None:
        super().__init__(hidden_size)
        if hidden_size % num_heads:
            raise UserValueError(f"num_heads={num_heads} must divide hidden_size={hidden_size}")
        if not 0.0 <= uniform_floor <= 1.0:
            raise UserValueError(
                f"uniform_floor={uniform_floor} is outside [0, 1]: it is the share of the weight spread evenly "
                f"(0 = the scorer alone, 1 = mean pooling)"
            )
        if score_layer is not None and (isinstance(score_layer, bool) or not isinstance(score_layer, int)):
            raise UserValueError(
                f"score_layer={score_layer!r} must be an index into the backbone's hidden_states "
                f"(0 = embeddings, 1 = first layer, -1 = last) or None"
            )
        self.uniform_floor = uniform_floor
        self.score_layer = score_layer
        # Scoring another layer reads two hidden states: the scored one, then the averaged last one.
        self.layers = None if score_layer is None else (score_layer, -1)
        self.num_heads = num_heads
        self.dropout = dropout
        self.temperature = temperature
        self.uniform_penalty = uniform_penalty
        self._penalties: list[Tensor] = []
        self.scorer = nn.Linear(hidden_size, num_heads, bias=False)
        self.logit_dropout = nn.Dropout(dropout)
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.zeros_(self.scorer.weight)

    def attention_weights(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        """(B, T, heads) weights, summing to 1 over real tokens; 0 on padding and empty rows."""
        logits = self.scorer(token_embeddings.to(self.scorer.weight.dtype)).float() / self.temperature
        logits = self.logit_dropout(logits)
        logits = logits.masked_fill(~attention_mask.unsqueeze(-1), float("-inf"))
        # An empty row would be softmax over all -inf = NaN; give it zeros instead.
        logits = torch.where(has_tokens(attention_mask).unsqueeze(-1), logits, torch.zeros_like(logits))
        weights = logits.softmax(dim=1)
        if self.uniform_floor:
            counts = attention_mask.sum(dim=1, keepdim=True).clamp(min=1).unsqueeze(-1)  # B, 1, 1
            weights = (1 - self.uniform_floor) * weights + self.uniform_floor / counts
        return weights * attention_mask.unsqueeze(-1)

    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        return self.weigh(token_embeddings, token_embeddings, attention_mask)

    def pool_layers(self, layers: list[Tensor], attention_mask: Tensor) -> Tensor:
        scored, averaged = layers
        return self.weigh(scored, averaged, attention_mask)

    def weigh(self, scored: Tensor, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        """The tokens of ``token_embeddings`` averaged with weights the scorer gives ``scored``'s."""
        B, T, H = token_embeddings.shape
        # Zero the padding before the scorer too: its gradient sums over every position.
        real = zero_padding(token_embeddings.to(ACCUMULATION_DTYPE), attention_mask)
        scored = real if scored is token_embeddings else zero_padding(scored.to(ACCUMULATION_DTYPE), attention_mask)
        weights = self.attention_weights(scored, attention_mask)  # B, T, heads
        per_head = real.view(B, T, self.num_heads, H // self.num_heads)
        pooled = torch.einsum("bth,bthc->bhc", weights, per_head).reshape(B, H)
        if self.training and self.uniform_penalty > 0:
            self._penalties.append(self.uniform_penalty * distance_from_uniform(weights, attention_mask))
        return pooled.to(token_embeddings.dtype)

    def training_penalty(self) -> Tensor | None:
        # The mean over this step's forward passes (a pair's two sides): one weight for any batch layout.
        penalties, self._penalties = self._penalties, []
        return torch.stack(penalties).mean() if penalties else None


def distance_from_uniform(weights: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean over texts with tokens and heads of KL(weights || uniform) = log n - entropy, n real tokens."""
    counts = attention_mask.sum(dim=1, keepdim=True).float()  # B, 1
    entropy = -(weights * weights.clamp(min=1e-12).log()).sum(dim=1)  # B, heads
    kl = counts.clamp(min=1).log() - entropy
    rows = has_tokens(attention_mask).squeeze(1)
    return kl[rows].mean() if rows.any() else kl.sum() * 0
