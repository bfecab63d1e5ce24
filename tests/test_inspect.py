"""`poolhead inspect`: the notebook's strategy comparison for one text, plus what a learned head attends to."""

from __future__ import annotations

import math

import pytest
import torch
from catalogue import trained_looking

from poolhead import Encoder
from poolhead.evaluation import EmbeddingModel
from poolhead.evaluation.inspect import inspect_text, plot_inspection
from poolhead.pooling import FIXED_POOLERS, AttentionPooling, LatentAttentionPooling, WeightedLayerPooling

TEXT = "Patient has no history of fatigue, weight change, loss of appetite, or weakness."


def run_cli(argv: list[str]) -> int:
    """The command as a user runs it: cli.main reports user errors once."""
    from poolhead.cli import main

    return main(["inspect", *argv])


def test_cli_prints_tokens_and_a_similarity_matrix_with_unit_diagonal(tiny_model_dir, tmp_path, capsys):
    assert run_cli([TEXT, "--model", tiny_model_dir, "--output", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "[CLS]" in printed and "fatigue" in printed and "[SEP]" in printed

    lines = printed.splitlines()
    start = lines.index("Cosine similarity between the embeddings of the text:") + 2
    same_size = [name for name in FIXED_POOLERS if name != "mean_max"]  # mean_max is twice as long
    matrix = {line.split()[0]: line.split()[1:] for line in lines[start : start + len(same_size)]}
    assert list(matrix) == same_size
    for i, name in enumerate(same_size):
        assert matrix[name][i] == "1.00"
        assert all(-1 <= float(value) <= 1 for value in matrix[name])
    assert "mean_max" in printed.split("Cosine similarity")[1]  # said to be left out, not silently dropped
    assert (tmp_path / "inspect.png").read_bytes()[:4] == b"\x89PNG"


def test_exported_attention_head_shows_a_weight_per_token(tiny_model_dir, tmp_path):
    from poolhead.export import export_sentence_transformer

    head = trained_looking(AttentionPooling(32, num_heads=2))
    folder = export_sentence_transformer(tiny_model_dir, head, tmp_path / "head")
    inspection = inspect_text(TEXT, str(folder))

    assert inspection.attention.shape == (len(inspection.tokens), 2)
    assert inspection.attention.sum(axis=0) == pytest.approx([1.0, 1.0])
    assert inspection.attention.std() > 0  # not the uniform weights of an untrained head
    assert inspection.names[-1] == "head (attention)"
    assert inspection.similarities[-1, -1] == 1.0
    assert plot_inspection(inspection, tmp_path / "head.png").stat().st_size > 0


def test_layer_weights_and_attention_over_the_mixed_layers(tiny_model_dir):
    head = trained_looking(WeightedLayerPooling(AttentionPooling(32), layers=2))
    model = EmbeddingModel.from_encoder(Encoder(tiny_model_dir, pooler=head), "layers+attention")
    inspection = inspect_text(TEXT, model, strategies=["cls", "mean"])

    expected = torch.softmax(head.layer_logits.detach(), dim=0).numpy()
    assert inspection.layer_labels == ["layer 1", "layer 2"]  # tiny BERT: embeddings + 2 layers
    assert inspection.layer_weights == pytest.approx(expected)
    assert inspection.attention.sum() == pytest.approx(1.0)
    assert inspection.names == ["cls", "mean", "layers+attention (weighted_layer)"]


def test_a_head_scoring_an_earlier_layer_shows_the_weights_it_pools_with(tiny_model_dir):
    head = trained_looking(AttentionPooling(32, num_heads=2, score_layer=1, uniform_floor=0.3))
    encoder = Encoder(tiny_model_dir, pooler=head)
    inspection = inspect_text(TEXT, EmbeddingModel.from_encoder(encoder, "early"), strategies=["mean"])

    features = encoder.backbone.tokenizer([TEXT], return_tensors="pt")
    mask = features["attention_mask"].bool()
    with torch.no_grad():
        hidden_states = encoder.model(**features, output_hidden_states=True).hidden_states
        # The weights the head gives the first layer's tokens, not those it would give the last layer's.
        expected, on_last = (head.attention_weights(hidden_states[i], mask)[0].numpy() for i in (1, -1))
    assert inspection.attention == pytest.approx(expected, abs=1e-6)
    assert not inspection.attention == pytest.approx(on_last)
    assert inspection.attention.min() >= 0.3 / len(inspection.tokens) - 1e-6  # the floor


def test_latent_attention_probabilities_are_the_ones_the_head_pools_with():
    head = trained_looking(LatentAttentionPooling(32, num_heads=4, num_latents=2, mlp_ratio=2.0))
    tokens = torch.randn(2, 6, 32, generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)

    probabilities = head.attention_weights(tokens, mask)  # B, latents, heads, T
    assert probabilities.shape == (2, 2, 4, 6)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2, 2, 4))
    assert probabilities[1, :, :, 3:].abs().max() == 0  # padding gets no attention

    # Rebuild the head's output from these probabilities: it must be what the head returns.
    values = head.kv(tokens).view(2, 6, 2, 4, 8)[:, :, 1].permute(0, 2, 1, 3)  # B, heads, T, head_dim
    attended = torch.einsum("blht,bhtd->blhd", probabilities, values).reshape(2, 2, 32)
    latents = head.proj(attended)
    latents = latents + head.mlp(head.norm(latents))
    torch.testing.assert_close(latents.mean(dim=1), head(tokens, mask), atol=1e-5, rtol=0)


def test_cosines_are_those_of_the_notebook(tiny_model_dir):
    """The matrix entry for cls vs mean is the notebook's cosine_similarity of the two pooled vectors."""
    from poolhead import cosine_similarity, embedding_pooling

    inspection = inspect_text(TEXT, tiny_model_dir, strategies=["cls", "eos", "max", "mean"])
    encoder = Encoder(tiny_model_dir)
    tokens, mask, _ = encoder.backbone_outputs([TEXT])
    cls, mean = embedding_pooling(tokens, "cls"), embedding_pooling(tokens, mask, "mean")
    i, j = inspection.names.index("cls"), inspection.names.index("mean")
    assert inspection.similarities[i, j] == pytest.approx(cosine_similarity(cls[0], mean[0]), abs=1e-6)
    assert not math.isclose(inspection.similarities[i, j], 1.0)


def test_an_empty_text_is_refused(tiny_model_dir, capsys):
    assert run_cli(["  ", "--model", tiny_model_dir]) == 2
    assert "non-empty text" in capsys.readouterr().err


def test_a_layer_mix_exported_as_sentence_transformers_modules_still_shows_its_weights(tiny_model_dir, tmp_path):
    from poolhead.evaluation import load_model_for_eval
    from poolhead.export import export_sentence_transformer
    from poolhead.pooling import MeanPooling

    head = trained_looking(WeightedLayerPooling(MeanPooling(32), layers=[1, 2]))
    folder = export_sentence_transformer(tiny_model_dir, head, tmp_path / "mix")
    assert "PoolheadPooling" not in (folder / "modules.json").read_text()  # the case under test: no poolhead module

    inspection = inspect_text(TEXT, str(folder), strategies=["mean"])
    assert inspection.layer_weights == pytest.approx(torch.softmax(head.layer_logits.detach(), 0).numpy())
    model = load_model_for_eval(folder)
    rebuilt = Encoder(model.backbone, pooler=model.pooler).encode([TEXT])
    torch.testing.assert_close(rebuilt, model.encode([TEXT], 1, False), atol=1e-5, rtol=0)
