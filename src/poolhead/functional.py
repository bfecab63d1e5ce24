"""The notebook's one-line API: pool token embeddings, compare the vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from poolhead.errors import UserTypeError, UserValueError
from poolhead.pooling.registry import FIXED_POOLERS, build_pooler, canonical_name


def _split_model_output(hidden_states: Any) -> tuple[Tensor, Sequence[Tensor] | None]:
    """Accept a (B, T, H) tensor, an HF ``hidden_states`` tuple, or a model output."""
    if hasattr(hidden_states, "last_hidden_state"):
        return hidden_states.last_hidden_state, getattr(hidden_states, "hidden_states", None)
    if isinstance(hidden_states, (tuple, list)):
        return hidden_states[-1], hidden_states
    if isinstance(hidden_states, Tensor):
        return hidden_states, None
    raise UserTypeError(
        f"pool() expects a (batch, tokens, hidden) tensor, a tuple of per-layer tensors or a model "
        f"output; got {type(hidden_states).__name__}"
    )


def pool(hidden_states: Any, attention_mask: Tensor | None = None, strategy: str = "mean") -> Tensor:
    """Pool token embeddings into one vector per text with a fixed strategy.

    Args:
        hidden_states: ``last_hidden_state`` (B, T, H); or the model output / the
            ``hidden_states`` tuple (needed by layer strategies such as ``first_last_avg``).
        attention_mask: (B, T) mask from the tokenizer; ``None`` treats every token as real.
        strategy: any fixed strategy name (``cls``, ``eos``, ``mean``, ``max``, ...).

    Returns:
        (B, D) tensor in the input dtype.
    """
    key = canonical_name(strategy)
    if key not in FIXED_POOLERS:
        raise UserValueError(
            f"pool() takes a fixed strategy; {strategy!r} is a learned head: build it with "
            f"poolhead.build_pooler({strategy!r}, hidden_size=...) and train it first"
        )
    token_embeddings, layers = _split_model_output(hidden_states)
    return build_pooler(key)(token_embeddings, attention_mask, hidden_states=layers)


def embedding_pooling(output: Any, attention_mask: Tensor | str | None = None, strategy: str | None = None) -> Tensor:
    """``pool`` under the notebook's name, accepting both of its call shapes.

    ``embedding_pooling(output, 'cls')`` and ``embedding_pooling(output, mask, 'mean')``.
    """
    if isinstance(attention_mask, str):
        if strategy is not None:
            raise UserTypeError(f"strategy given twice: {attention_mask!r} and {strategy!r}")
        attention_mask, strategy = None, attention_mask
    return pool(output, attention_mask, strategy or "mean")


def _as_vector(x: Any, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    array = np.asarray(x, dtype=np.float64)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise UserValueError(f"{name} must be one vector, got shape {array.shape}; index a row first, e.g. emb[0]")
    return array


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    u, v = _as_vector(a, "a"), _as_vector(b, "b")
    if u.shape != v.shape:
        raise UserValueError(f"vectors differ in size: {u.shape[0]} vs {v.shape[0]}; compare embeddings of one model")
    return u, v


def cosine_similarity(a: Any, b: Any) -> float:
    """Cosine similarity of two vectors (numpy or torch), as a Python float.

    Computed in float64 as ``a.b / sqrt(|a|^2 |b|^2)``, so a vector with itself gives exactly
    1.0 (the notebook asserts it). A zero vector has similarity 0 with anything.
    """
    u, v = _pair(a, b)
    denominator = np.sqrt(np.dot(u, u) * np.dot(v, v))
    if denominator == 0:
        return 0.0
    return float(np.clip(np.dot(u, v) / denominator, -1.0, 1.0))


def euclidean_distance(a: Any, b: Any) -> float:
    """Euclidean distance of two vectors (numpy or torch), as a Python float."""
    u, v = _pair(a, b)
    return float(np.linalg.norm(u - v))


def show_tokenization(inputs: Any, tokenizer: Any, index: int = 0) -> list[str]:
    """Print one row of tokenizer output as a table (position, id, token, mask); return its tokens."""
    ids = inputs["input_ids"][index]
    ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    mask = inputs.get("attention_mask")
    mask = mask[index].tolist() if mask is not None else [1] * len(ids)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    width = max(len(t) for t in tokens) if tokens else 5
    print(f"{'pos':>4}  {'id':>7}  {'token':<{width}}  mask")
    for position, (token_id, token, m) in enumerate(zip(ids, tokens, mask, strict=False)):
        print(f"{position:>4}  {token_id:>7}  {token:<{width}}  {m}")
    return tokens
