"""Length-sorted chunks of a training batch: ``PoolingModule(forward_chunk_size=...)`` runs the backbone on them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def length_chunks(sides: Sequence[dict[str, Tensor]], chunk_size: int) -> list[tuple[Tensor, dict[str, Tensor]]] | None:
    """The sentences of all ``sides`` of a batch, sorted by length, in chunks padded to their own longest.

    A random batch is padded to its longest sentence, so much of what the backbone computes is
    padding (docs/results.md counts it for STS-B). Sorting the batch's sentences (both sides
    together) by length and cutting them into chunks of ``chunk_size`` leaves each chunk only its
    own padding. The batch itself does not change, nor does the loss: with the mask, a sentence's
    token embeddings do not depend on the padding behind it or on the rows beside it.

    Args:
        sides: right-padded features (``input_ids``, ``attention_mask``, ...), e.g. both
            sides of a pair batch; widths may differ.
        chunk_size: sentences per chunk.

    Returns:
        ``(rows, features)`` per chunk, ``rows`` indexing the sides concatenated in order; or
        ``None`` when a mask is not right padding (the caller then runs the batch as it is).
    """
    width = max(side["attention_mask"].shape[1] for side in sides)
    # Padded positions are masked out, so 0 is as good a fill as the pad id.
    merged = {
        key: torch.cat([torch.nn.functional.pad(side[key], (0, width - side[key].shape[1])) for side in sides])
        for key in sides[0]
    }
    mask = merged["attention_mask"]
    lengths = mask.sum(dim=1)
    if not torch.equal(lengths, mask.cumprod(dim=1).sum(dim=1)):  # a 0 before a 1: not right padding
        return None
    order = torch.argsort(lengths, descending=True, stable=True)
    chunks = []
    for start in range(0, len(order), chunk_size):
        rows = order[start : start + chunk_size]
        longest = int(lengths[rows].max())
        chunks.append((rows, {key: value[rows, :longest] for key, value in merged.items()}))
    return chunks
