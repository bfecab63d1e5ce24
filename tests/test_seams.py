"""One way to build each thing: the pooler resolver, the config contract, heads that expose their
own internals, one encode loop and one fingerprint per backbone."""

from __future__ import annotations

import pytest
import torch
from quiet_fit import quiet_trainer

from poolhead import AttentionPooling, LatentAttentionPooling, MeanPooling, WeightedLayerPooling, resolve_pooler
from poolhead.export.st_pooling import check_exportable
from poolhead.pooling import LEARNED_POOLERS

pytestmark = pytest.mark.usefixtures("one_thread")


class TemperedMean(MeanPooling):
    """A head whose constructor accepts an option and forgets to keep it."""

    name = "tempered_mean"
    config_keys = ("hidden_size", "temperature")
    temperature = 1.0

    def __init__(self, hidden_size: int | None = None, temperature: float = 1.0) -> None:
        super().__init__(hidden_size)


def test_a_pooler_whose_option_is_lost_on_rebuild_is_not_exported(monkeypatch):
    monkeypatch.setitem(LEARNED_POOLERS, TemperedMean.name, TemperedMean)
    pooler = TemperedMean(8)
    pooler.temperature = 2.0  # what the user trained with; the constructor would not restore it

    with pytest.raises(ValueError, match=r"does not round-trip .* differs in \['temperature'\]"):
        check_exportable(pooler)


def test_every_declared_option_is_in_the_config():
    head = AttentionPooling(
        16, num_heads=4, dropout=0.1, temperature=2.0, uniform_penalty=0.5, uniform_floor=0.25, score_layer=1
    )
    config = head.get_config()
    assert config == {
        "name": "attention",
        "hidden_size": 16,
        "num_heads": 4,
        "dropout": 0.1,
        "temperature": 2.0,
        "uniform_penalty": 0.5,
        "uniform_floor": 0.25,
        "score_layer": 1,
    }
    assert set(config) == {"name", *AttentionPooling.config_keys}


def test_the_resolver_fills_a_missing_hidden_size_and_keeps_the_weights():
    head = WeightedLayerPooling(MeanPooling(), layers=[0, 2])
    with torch.no_grad():
        head.layer_logits.copy_(torch.tensor([0.3, -0.7]))

    resolved = resolve_pooler(head, 32)

    assert resolved.hidden_size == 32 and resolved.inner.hidden_size == 32 and resolved.output_dim == 32
    torch.testing.assert_close(resolved.layer_logits, head.layer_logits)
    trained = AttentionPooling(32)
    assert resolve_pooler(trained, 32) is trained  # a head that fits is used as given, not copied


def test_latent_attention_weights_are_zero_for_padding_and_empty_rows():
    head = LatentAttentionPooling(16, num_heads=2, num_latents=3)
    tokens = torch.randn(2, 4, 16, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)

    weights = head.attention_weights(tokens, mask)  # B, latents, heads, T

    torch.testing.assert_close(weights[0].sum(-1), torch.ones(3, 2))
    assert weights[0, :, :, 2:].abs().max() == 0 and weights[1].abs().max() == 0


def test_a_layer_mix_exported_with_sentence_transformers_modules_reads_back_as_the_same_head():
    from poolhead.export.st_pooling import native_pooling, pooler_from_layer_mix

    head = WeightedLayerPooling(MeanPooling(32), layers=[0, 2])
    with torch.no_grad():
        head.layer_logits.copy_(torch.tensor([0.3, -0.7]))

    back = pooler_from_layer_mix(native_pooling(head, num_hidden_states=3))

    assert back.get_config() == head.get_config()
    torch.testing.assert_close(back.layer_weights(), head.layer_weights())


def counting_fingerprint(monkeypatch) -> list[int]:
    import poolhead.backbone

    calls = []
    real = poolhead.backbone.fingerprint

    def counted(model):
        calls.append(1)
        return real(model)

    monkeypatch.setattr(poolhead.backbone, "fingerprint", counted)
    return calls


def test_a_frozen_run_hashes_its_backbone_once(tiny_model_dir, data_dir, tmp_path, monkeypatch):

    from poolhead.data import SentencePairDataModule
    from poolhead.training.module import PoolingModule

    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "cache"))
    calls = counting_fingerprint(monkeypatch)
    model = PoolingModule(tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2})
    data = SentencePairDataModule(
        str(data_dir / "stsb"), tokenizer=tiny_model_dir, batch_size=8, limit_train_pairs=16, limit_eval_pairs=8
    )
    trainer = quiet_trainer(tmp_path, max_epochs=3, enable_checkpointing=True)

    trainer.fit(model, data)  # the feature cache key, then a checkpoint every epoch

    assert len(calls) == 1
    assert torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)["backbone_fingerprint"]


def test_the_fingerprint_follows_the_weights(tiny_model_dir, monkeypatch):
    from poolhead.backbone import fingerprint, load_backbone

    backbone = load_backbone(tiny_model_dir)
    calls = counting_fingerprint(monkeypatch)
    published = backbone.fingerprint()
    assert backbone.fingerprint() == published and len(calls) == 1

    with torch.no_grad():  # a fine-tuning step, as the optimizer takes it: in place
        backbone.model.embeddings.word_embeddings.weight.mul_(1.5)

    assert backbone.fingerprint() != published
    assert backbone.fingerprint() == fingerprint(backbone.model) and len(calls) == 2  # hashed again once


def test_one_encode_loop_puts_every_result_back_in_place():
    from poolhead.encoder import encode_in_length_order

    texts = ["a", "ccc", "bb", "dddd", "e"]
    seen = []

    def encode_batch(batch):
        seen.append(batch)
        lengths = torch.tensor([[float(len(t))] for t in batch])
        return {"length": lengths, "ragged": [torch.zeros(len(t)) for t in batch]}

    results = encode_in_length_order(texts, encode_batch, batch_size=2)

    assert seen == [["dddd", "ccc"], ["bb", "a"], ["e"]]  # longest first
    assert results["length"].flatten().tolist() == [1.0, 3.0, 2.0, 4.0, 1.0]
    assert [len(t) for t in results["ragged"]] == [1, 3, 2, 4, 1]
