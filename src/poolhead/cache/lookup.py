"""FeatureCache: padded batches gathered from chunks' memory-mapped token embeddings.

Nothing is copied when a cache is assembled: each text only records which chunk holds it and
where its tokens start, so a process's resident memory does not grow with the cache, and the
processes of one machine read the same pages. A lookup reads each text's rows of a chunk read
from disk straight into its place in the padded batch (store.MappedFile.read_rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from poolhead.cache.store import Chunk, MappedFile

#: layer key for ``last_hidden_state`` (poolers that read one layer); other keys index ``hidden_states``.
LAST = -1


@dataclass
class CacheStats:
    sentences: int = 0
    reused: int = 0
    encoded_here: int = 0
    seconds: float = 0.0
    bytes: int = 0

    @property
    def hit_rate(self) -> float:
        return self.reused / self.sentences if self.sentences else 0.0


@dataclass
class FeatureCache:
    """Ragged float16 features of ``texts`` for ``layers``, looked up by position in ``texts``."""

    layers: list[int]
    num_hidden_states: int
    chunks: list[dict[int, Tensor]]  # per chunk: layer -> (tokens, H), memory-mapped or this run's own
    chunk_of: Tensor  # (N,) which chunk holds text i
    starts: Tensor  # (N,) its first token's row in that chunk
    lengths: Tensor  # (N,) its number of tokens
    stats: CacheStats = field(default_factory=CacheStats)
    files: list[MappedFile | None] = field(default_factory=list, repr=False)  # per chunk: its file, None if in RAM

    def lookup(self, sentence_ids: Tensor, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, list | None]:
        """Right-padded (B, T, H) float32 token embeddings, (B, T) mask and, for layer poolers, hidden states."""
        ids = sentence_ids.cpu()
        starts, lengths, owners = self.starts[ids], self.lengths[ids], self.chunk_of[ids]
        mask = torch.arange(int(lengths.max()))[None, :] < lengths[:, None]
        # Gather and move in float16 (half the bytes to copy), widen on the device.
        padded = {
            layer: self._gather(layer, starts, lengths, owners, mask).to(device, non_blocking=True).float()
            for layer in self.layers
        }
        mask = mask.to(device)
        if self.layers == [LAST]:
            return padded[LAST], mask, None
        hidden_states = [padded.get(i) for i in range(self.num_hidden_states)]
        return padded[self.layers[-1]], mask, hidden_states

    def _gather(self, layer: int, starts: Tensor, lengths: Tensor, owners: Tensor, mask: Tensor) -> Tensor:
        """(B, T, H) float16, zero past each text's length."""
        hidden = self.chunks[0][layer].shape[1]
        padded = self.chunks[0][layer].new_zeros(*mask.shape, hidden)
        for owner in owners.unique().tolist():
            picked = (owners == owner).nonzero().squeeze(1)
            file = self.files[owner] if self.files else None
            if file is not None:  # each text's rows are contiguous: one read into its place
                spans = zip(picked.tolist(), starts[picked].tolist(), lengths[picked].tolist(), strict=True)
                for row, start, length in spans:
                    file.read_rows(f"layer_{layer}", start, padded[row, :length])
                continue
            # This run's own features, in RAM: the real tokens' rows, copied into zeros by position
            # (measured faster on CPU than a boolean-mask assignment).
            real = mask[picked]
            positions = torch.arange(mask.shape[1])[None, :]
            tokens = self.chunks[owner][layer].index_select(0, (starts[picked, None] + positions)[real])
            places = (picked[:, None] * mask.shape[1] + positions)[real]
            padded.view(-1, hidden).index_copy_(0, places, tokens)
        return padded


def assemble(
    chunks: list[Chunk], found: np.ndarray, positions: np.ndarray, layers: list[int], num_hidden_states: int
) -> FeatureCache:
    """The cache of texts: text i is unique text ``u = positions[i]``, row ``found[u, 1]`` of chunk ``found[u, 0]``."""
    owner, row = found[positions, 0], found[positions, 1]
    starts = np.empty(len(positions), dtype=np.int64)
    lengths = np.empty(len(positions), dtype=np.int64)
    for number, chunk in enumerate(chunks):
        mine = owner == number
        offsets = chunk.offsets.numpy()
        starts[mine] = offsets[row[mine]]
        lengths[mine] = offsets[row[mine] + 1] - starts[mine]
    return FeatureCache(
        layers=layers,
        num_hidden_states=num_hidden_states,
        chunks=[{layer: chunk.layers[layer] for layer in layers} for chunk in chunks],
        chunk_of=torch.from_numpy(owner.astype(np.int64)),
        starts=torch.from_numpy(starts),
        lengths=torch.from_numpy(lengths),
        files=[chunk.file for chunk in chunks],
    )
