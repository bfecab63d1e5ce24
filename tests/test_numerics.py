"""Every pooler stays finite in half precision: empty rows, one-token rows, and full-length rows of
large activations (sums of a few hundred 1e3-sized values overflow float16's 65504)."""

from __future__ import annotations

import pytest
import torch
from catalogue import FIXED, HEADS, build, trained_looking

HIDDEN = 32
NUM_HIDDEN_STATES = 3  # embeddings + 2 transformer layers
MAX_TOKENS = 256
LENGTHS = (0, 1, MAX_TOKENS, 7)  # an all-padding row, a one-token row, a full row, a short one

# Every registered name (aliases are the same classes) and every learned head with its options.
POOLERS = {**{name: {"name": name} for name in FIXED}, **HEADS}
# How half precision reaches a pooler: under autocast (training with precision="16-mixed"/"bf16-mixed")
# or as half-precision activations from a backbone loaded in half.
PRECISIONS = ["autocast-float16", "autocast-bfloat16", "inputs-float16", "inputs-bfloat16"]


pytestmark = pytest.mark.usefixtures("one_thread")


def large_batch(side: str) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Float32 hidden states around +1e3 (so sums do not cancel), with a mask padded on ``side``."""
    generator = torch.Generator().manual_seed(0)
    shape = (len(LENGTHS), MAX_TOKENS, HIDDEN)
    layers = [1e3 + 100 * torch.randn(shape, generator=generator) for _ in range(NUM_HIDDEN_STATES)]
    positions = torch.arange(MAX_TOKENS)
    lengths = torch.tensor(LENGTHS).unsqueeze(1)
    mask = positions < lengths if side == "right" else positions >= MAX_TOKENS - lengths
    return layers[-1], mask.long(), layers


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("pooler_name", POOLERS)
def test_half_precision_pooling_stays_finite(pooler_name, precision, side):
    pooler = trained_looking(build(POOLERS[pooler_name], HIDDEN))
    tokens, mask, hidden_states = large_batch(side)
    mode, dtype_name = precision.split("-")
    dtype = getattr(torch, dtype_name)
    if mode == "inputs":
        tokens, hidden_states = tokens.to(dtype), [h.to(dtype) for h in hidden_states]
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=mode == "autocast"):
        pooled = pooler(tokens, mask, hidden_states=hidden_states)

    assert pooled.shape == (len(LENGTHS), pooler.output_dim)
    assert torch.isfinite(pooled).all(), (
        f"{pooler_name} gave NaN/inf in rows {(~torch.isfinite(pooled)).any(1).nonzero().flatten().tolist()}"
    )
    assert (pooled[0] == 0).all(), "the all-padding row pools to a zero vector"


def test_texts_longer_than_max_length_are_truncated_counted_and_warned_once(tiny_model_dir):
    from poolhead import Encoder
    from poolhead.encoder import TruncationWarning

    encoder = Encoder(tiny_model_dir, pooler="mean", max_length=8)  # [CLS] + 6 words + [SEP]
    long_text = " ".join(["word"] * 50)
    texts = [long_text, "short text", long_text + " more", " ".join(["word"] * 6)]

    with pytest.warns(TruncationWarning) as caught:
        embeddings = encoder.encode(texts, batch_size=1)  # one warning per call, not per batch

    assert [str(w.message).split(";")[0] for w in caught] == [
        "2 of 4 texts were longer than max_length=8 tokens and were truncated"
    ]
    assert torch.isfinite(embeddings).all()
    # A truncated text is encoded as its first max_length tokens: the same as the 6-word text.
    torch.testing.assert_close(embeddings[0], embeddings[3])
    torch.testing.assert_close(embeddings[2], embeddings[3])
