"""Fixed (parameter-free) pooling strategies.

Every strategy honours the attention mask with padding on either side, accumulates in
float32 and returns the input dtype. A row with no real token (an all-zero mask) pools
to a zero vector for every strategy: finite, so one empty text never turns a batch's
loss into NaN, and easy to spot (its norm is 0).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import ACCUMULATION_DTYPE, Pooler, has_tokens, masked_mean, zero_padding


def _gather_position(token_embeddings: Tensor, positions: Tensor) -> Tensor:
    B, T, H = token_embeddings.shape
    index = positions.view(B, 1, 1).expand(B, 1, H)
    return token_embeddings.gather(1, index).squeeze(1)


def zero_empty_rows(pooled: Tensor, attention_mask: Tensor) -> Tensor:
    # torch.where, not a product with the mask: an empty row's token may hold NaN or inf.
    return torch.where(has_tokens(attention_mask), pooled, torch.zeros_like(pooled))


def first_token_positions(attention_mask: Tensor) -> Tensor:
    # argmax returns the first maximal index: the first real token with left padding too.
    return attention_mask.to(torch.int8).argmax(dim=1)


def last_token_positions(attention_mask: Tensor) -> Tensor:
    T = attention_mask.shape[1]
    return T - 1 - attention_mask.flip(1).to(torch.int8).argmax(dim=1)


class CLSPooling(Pooler):
    """The first real token ([CLS] for BERT-style models), wherever padding sits."""

    name = "cls"

    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        first = _gather_position(token_embeddings, first_token_positions(attention_mask))
        return zero_empty_rows(first, attention_mask)


class EOSPooling(Pooler):
    """The last real token ([SEP] for BERT, the final token for decoders)."""

    name = "eos"

    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        last = _gather_position(token_embeddings, last_token_positions(attention_mask))
        return zero_empty_rows(last, attention_mask)


class MeanPooling(Pooler):
    """Average of the real tokens."""

    name = "mean"

    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        return masked_mean(token_embeddings, attention_mask).to(token_embeddings.dtype)


class MeanSqrtLenPooling(Pooler):
    """Sum of the real tokens divided by the square root of their count (SBERT's mean_sqrt_len_tokens)."""

    name = "mean_sqrt_len"

    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        counts = attention_mask.sum(dim=1, keepdim=True).to(ACCUMULATION_DTYPE)
        summed = zero_padding(token_embeddings.to(ACCUMULATION_DTYPE), attention_mask).sum(dim=1)
        return (summed / counts.clamp(min=1.0).sqrt()).to(token_embeddings.dtype)


class WeightedMeanPooling(Pooler):
    """Position-weighted mean: the i-th real token has weight i (SGPT; SBERT's weightedmean).

    Weights count real tokens only, so left padding does not shift them.
    """

    name = "weighted_mean"

    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        mask = attention_mask.to(ACCUMULATION_DTYPE)
        weights = (mask.cumsum(dim=1) * mask).unsqueeze(-1)
        real = zero_padding(token_embeddings.to(ACCUMULATION_DTYPE), attention_mask)
        summed = (real * weights).sum(dim=1)
        return (summed / weights.sum(dim=1).clamp(min=1.0)).to(token_embeddings.dtype)


def masked_extremum(token_embeddings: Tensor, attention_mask: Tensor, largest: bool) -> Tensor:
    # Fill padding with -inf/+inf *before* the reduction, so padding can never win;
    # then zero the rows that had no token at all (they would stay infinite).
    fill = float("-inf") if largest else float("inf")
    filled = token_embeddings.masked_fill(~attention_mask.unsqueeze(-1), fill)
    reduced = filled.amax(dim=1) if largest else filled.amin(dim=1)
    return zero_empty_rows(reduced, attention_mask)


class _MaskedExtremumPooling(Pooler):
    largest: bool = True

    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        return masked_extremum(token_embeddings, attention_mask, self.largest)


class MaxPooling(_MaskedExtremumPooling):
    """Element-wise maximum over the real tokens."""

    name = "max"
    largest = True


class MinPooling(_MaskedExtremumPooling):
    """Element-wise minimum over the real tokens."""

    name = "min"
    largest = False


class MeanMaxPooling(Pooler):
    """Concatenation ``[mean, max]``: twice the hidden size."""

    name = "mean_max"
    output_multiplier = 2

    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        mean = masked_mean(token_embeddings, attention_mask).to(token_embeddings.dtype)
        maximum = masked_extremum(token_embeddings, attention_mask, largest=True)
        return torch.cat([mean, maximum], dim=-1)


class FirstLastAvgPooling(Pooler):
    """Mean over tokens of the average of the first transformer layer and the last.

    ``hidden_states[0]`` is the embedding layer, so the first transformer layer is index 1
    (as in SimCSE's ``avg_first_last``).
    """

    name = "first_last_avg"
    layers = (1, -1)

    def pool_layers(self, layers: list[Tensor], attention_mask: Tensor) -> Tensor:
        first, last = layers
        averaged = (first.to(ACCUMULATION_DTYPE) + last.to(ACCUMULATION_DTYPE)) / 2
        return masked_mean(averaged, attention_mask).to(last.dtype)
