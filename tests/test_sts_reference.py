"""Fixed pooling on the real all-MiniLM-L6-v2 reproduces DESIGN.md's STS-B test figures.

One backbone pass (with all hidden states) over the 2,552 unique test sentences feeds every
strategy; the Encoder is checked end to end against that pass on a slice of the sentences.
"""

from __future__ import annotations

import csv

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional import spearman_corrcoef

from poolhead import Encoder, build_pooler
from poolhead.backbone import load_backbone

pytestmark = pytest.mark.integration

# DESIGN.md: frozen all-MiniLM-L6-v2, max_length 256, Spearman x100 of cosine, STS-B test.
REFERENCE_SPEARMAN = {
    "cls": 73.50,
    "eos": 77.97,
    "mean": 82.03,
    "max": 78.80,
    "mean_sqrt_len": 82.03,
    "first_last_avg": 81.55,
}
TOLERANCE = 0.05
BATCH_SIZE = 64


@pytest.fixture(scope="module")
def stsb_test(data_dir):
    with open(data_dir / "stsb" / "test.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    scores = torch.tensor([float(row["score"]) for row in rows], dtype=torch.float64)
    return [row["sentence1"] for row in rows], [row["sentence2"] for row in rows], scores


@pytest.fixture(scope="module")
def backbone(minilm_path):
    return load_backbone(minilm_path, max_length=256)


@pytest.fixture(scope="module")
def embeddings_by_strategy(backbone, stsb_test):
    """{strategy: {sentence: embedding}} for every unique sentence, from a single backbone pass."""
    first, second, _ = stsb_test
    # Longest first, so each batch holds texts of similar length and little padding.
    sentences = sorted(set(first) | set(second), key=len, reverse=True)
    encoder = Encoder(backbone, pooler="first_last_avg")  # it asks for all hidden states
    poolers = {name: build_pooler(name, hidden_size=backbone.hidden_size) for name in REFERENCE_SPEARMAN}
    pooled = {name: [] for name in poolers}
    for start in range(0, len(sentences), BATCH_SIZE):
        tokens, mask, hidden_states = encoder.backbone_outputs(sentences[start : start + BATCH_SIZE])
        for name, pooler in poolers.items():
            pooled[name].append(pooler(tokens, mask, hidden_states=hidden_states).cpu())
    return {name: dict(zip(sentences, torch.cat(chunks), strict=True)) for name, chunks in pooled.items()}


@pytest.mark.parametrize("strategy", REFERENCE_SPEARMAN)
def test_spearman_of_cosine_matches_the_reference(strategy, stsb_test, embeddings_by_strategy):
    first, second, scores = stsb_test
    embedding = embeddings_by_strategy[strategy]

    cosine = F.cosine_similarity(
        torch.stack([embedding[s] for s in first]), torch.stack([embedding[s] for s in second])
    )
    spearman = 100 * spearman_corrcoef(cosine.double(), scores).item()

    assert spearman == pytest.approx(REFERENCE_SPEARMAN[strategy], abs=TOLERANCE)


def test_encoder_end_to_end_gives_the_single_pass_embeddings(backbone, embeddings_by_strategy):
    single_pass = embeddings_by_strategy["mean"]
    # Every 10th sentence: short and long ones, batched differently from the single pass.
    sentences = list(single_pass)[::10]

    encoded = Encoder(backbone, pooler="mean").encode(sentences, batch_size=32)

    expected = torch.stack([single_pass[s] for s in sentences])
    torch.testing.assert_close(encoded, expected, rtol=1e-4, atol=1e-5)


def test_first_last_avg_reads_the_first_and_last_of_minilm_layers(backbone):
    assert backbone.num_hidden_states == 7  # embeddings + 6 layers
    assert build_pooler("first_last_avg").layer_indices(backbone.num_hidden_states) == [1, 6]
