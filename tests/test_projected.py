"""ProjectedPooling: mean pooling plus a learned linear correction that starts at zero."""

from __future__ import annotations

import pytest
import torch
from catalogue import trained_looking
from standins import padded_batch

from poolhead import Encoder, ProjectedPooling, build_pooler, resolve_pooler
from poolhead.backbone import load_backbone
from poolhead.export import export_sentence_transformer, load_sentence_transformer
from poolhead.pooling.errors import UserValueError

HIDDEN = 16
TEXTS = ["A man is playing a guitar.", "Hi", "Padding matters when the batch mixes long and short sentences."]


def batch(side="right"):
    return padded_batch([5, 1, 9, 3], HIDDEN, side, torch.float32, num_layers=4, seed=0)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("inner", ["mean", "first_last_avg"])
def test_starts_exactly_as_its_inner_pooler_and_moves_once_trained(side, inner, one_thread):
    tokens, mask, hidden_states = batch(side)
    head = build_pooler("projected", hidden_size=HIDDEN, inner=inner)
    plain = build_pooler(inner, hidden_size=HIDDEN)

    assert torch.equal(head(tokens, mask, hidden_states), plain(tokens, mask, hidden_states))
    shifted = trained_looking(head)(tokens, mask, hidden_states)
    assert (shifted - plain(tokens, mask, hidden_states)).abs().max() > 1e-2


def test_around_attention_starts_as_mean_pooling(one_thread):
    tokens, mask, _ = batch()
    head = resolve_pooler({"name": "projected", "inner": "attention", "inner_kwargs": {"num_heads": 4}}, HIDDEN)

    torch.testing.assert_close(head(tokens, mask), build_pooler("mean")(tokens, mask))


def test_one_optimiser_step_moves_the_correction_and_the_inner_head(one_thread):
    tokens, mask, _ = batch()
    head = resolve_pooler({"name": "projected", "inner": "attention", "inner_kwargs": {"num_heads": 2}}, HIDDEN)
    before = {name: p.detach().clone() for name, p in head.named_parameters()}
    target = torch.randn(4, HIDDEN, generator=torch.Generator().manual_seed(1))

    optimiser = torch.optim.SGD(head.parameters(), lr=0.1)
    ((head(tokens, mask) - target) ** 2).sum().backward()
    optimiser.step()

    assert {name for name, p in head.named_parameters() if not torch.equal(p, before[name])} == set(before)


def test_without_bias_it_learns_only_the_matrix():
    head = build_pooler("projected", hidden_size=HIDDEN, bias=False)
    assert [name for name, _ in head.named_parameters()] == ["correction.weight"]
    assert resolve_pooler(head.get_config(), HIDDEN).bias is False


def test_an_inner_pooler_without_hidden_size_is_refused_with_the_fix():
    with pytest.raises(UserValueError, match="hidden_size="):
        ProjectedPooling(build_pooler("mean"))


def test_exports_and_reloads_with_the_trained_embeddings(tiny_model_dir, tmp_path, one_thread):
    backbone = load_backbone(tiny_model_dir)
    hidden = backbone.hidden_size
    config = {"name": "projected", "inner": {"name": "weighted_layer", "layers": 2}}
    head = trained_looking(resolve_pooler(config, hidden))
    expected = Encoder(backbone, head).encode(TEXTS)

    folder = export_sentence_transformer(backbone, head, tmp_path / "export")
    reloaded = load_sentence_transformer(folder, device="cpu").encode(TEXTS, convert_to_tensor=True)

    mean = Encoder(backbone, "mean").encode(TEXTS)
    assert (expected - mean).abs().max() > 1e-3  # the trained correction is what travels
    torch.testing.assert_close(reloaded.cpu(), expected, atol=1e-5, rtol=0)
