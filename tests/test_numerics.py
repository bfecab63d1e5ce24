"""Every pooler stays finite in half precision: empty rows, one-token rows, and full-length rows of
large activations (sums of a few hundred 1e3-sized values overflow float16's 65504)."""

from __future__ import annotations

import pytest
import torch

from poolhead import available_poolers, build_pooler
from poolhead.pooling.registry import ALIASES

HIDDEN = 32
NUM_HIDDEN_STATES = 3  # embeddings + 2 transformer layers
MAX_TOKENS = 256
LENGTHS = (0, 1, MAX_TOKENS, 7)  # an all-padding row, a one-token row, a full row, a short one

# Every registered name (aliases are the same classes), each learned head built as a user builds it.
POOLERS = {name: {"name": name} for name in available_poolers() if name not in ALIASES}
POOLERS.update(
    {
        "attention": {"name": "attention", "num_heads": 4},
        "latent_attention": {"name": "latent_attention", "num_heads": 4, "num_latents": 2},
        "weighted_layer": {
            "name": "weighted_layer",
            "inner": "attention",
            "inner_kwargs": {"num_heads": 4},
            "layers": 3,
        },
        "weighted_layer+mean": {"name": "weighted_layer", "inner": "mean", "layers": 3},
    }
)
# How half precision reaches a pooler: under autocast (training with precision="16-mixed"/"bf16-mixed")
# or as half-precision activations from a backbone loaded in half.
PRECISIONS = ["autocast-float16", "autocast-bfloat16", "inputs-float16", "inputs-bfloat16"]


pytestmark = pytest.mark.usefixtures("one_thread")


def trained(config: dict):
    """The pooler with its parameters moved off their initial values, as after training."""
    config = dict(config)
    pooler = build_pooler(config.pop("name"), hidden_size=HIDDEN, **config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in pooler.parameters():
            parameter.add_(0.5 * torch.randn(parameter.shape, generator=generator))
    return pooler.eval()


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
    pooler = trained(POOLERS[pooler_name])
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
