"""Several data sets in one fit: batches each from one data set in a seeded order, each scored with its
own loss, validated per data set plus one combined metric, one feature cache over all of them."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from quiet_fit import quiet_trainer
from torch.utils.data import BatchSampler

from poolhead.data import EpochShuffleSampler, MixtureBatchSampler, SentencePairDataModule
from poolhead.training.module import PoolingModule

pytestmark = pytest.mark.usefixtures("one_thread")


def batch_samplers(sizes: list[int], batch_size: int) -> list[BatchSampler]:
    return [
        BatchSampler(EpochShuffleSampler(range(n), seed=i), batch_size, drop_last=False) for i, n in enumerate(sizes)
    ]


def epoch(sampler: MixtureBatchSampler, number: int) -> list[list[int]]:
    sampler.set_epoch(number)
    return list(sampler)


def test_proportional_uses_every_batch_once_in_an_order_fixed_by_seed_and_epoch():
    sizes = [20, 8]  # indices 0-19 from the first data set, 20-27 from the second
    sampler = MixtureBatchSampler(batch_samplers(sizes, 4), sizes, "proportional", seed=3)
    first = epoch(sampler, 0)
    assert len(first) == len(sampler) == 5 + 2
    assert sorted(i for batch in first for i in batch) == list(range(28))
    assert all(max(batch) < 20 or min(batch) >= 20 for batch in first)  # each batch from one data set
    # A fresh sampler (a resumed run) at the same epoch yields the same batches; another epoch, others.
    again = MixtureBatchSampler(batch_samplers(sizes, 4), sizes, "proportional", seed=3)
    assert epoch(again, 0) == first and epoch(again, 1) == epoch(sampler, 1) != first
    assert epoch(MixtureBatchSampler(batch_samplers(sizes, 4), sizes, "proportional", seed=4), 0) != first


def test_round_robin_alternates_until_the_smallest_runs_out():
    sizes = [20, 8]
    sampler = MixtureBatchSampler(batch_samplers(sizes, 4), sizes, "round_robin", seed=3)
    batches = epoch(sampler, 0)
    assert len(batches) == len(sampler) == 4
    assert [min(batch) >= 20 for batch in batches] == [False, True, False, True]
    with pytest.raises(ValueError, match="unknown sampler 'random'; choose one of proportional, round_robin"):
        MixtureBatchSampler(batch_samplers(sizes, 4), sizes, "random")


def mixture(data_dir: Path, tokenizer: str, **options) -> SentencePairDataModule:
    datasets = [
        {"name": "stsb", "path": str(data_dir / "stsb"), "loss": "cosent"},
        {"name": "msrp", "path": str(data_dir / "msrp"), "loss": "in_batch_negatives", "positives_only": True},
    ]
    defaults = {"batch_size": 8, "limit_train_pairs": 32, "limit_eval_pairs": 24}
    return SentencePairDataModule(datasets=datasets, tokenizer=tokenizer, **{**defaults, **options})


def trainer(tmp_path: Path, **options) -> L.Trainer:
    return quiet_trainer(tmp_path, **{"max_epochs": 1, **options})


def test_two_data_sets_train_with_their_losses_and_validate_apart(data_dir, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "cache"))
    data = mixture(data_dir, tiny_model_dir)
    model = PoolingModule(tiny_model_dir, pooler_kwargs={"num_heads": 2})
    fit = trainer(tmp_path, log_every_n_steps=1)
    fit.fit(model, data)

    metrics = fit.callback_metrics
    assert {"train/stsb/loss", "train/msrp/loss", "val/stsb/spearman", "val/msrp/accuracy"} <= set(metrics)
    combined = (metrics["val/stsb/spearman"] + metrics["val/msrp/accuracy"]) / 2  # both x100
    torch.testing.assert_close(metrics["val/combined"], combined)
    assert [type(o.loss).__name__ for o in model.objectives] == ["CoSENTLoss", "InBatchNegativesLoss"]
    assert all(int(label) == 1 for label in data.sources[1].pairs["train"].labels)  # positives_only
    # One feature cache over the unique sentences of both data sets.
    assert model.feature_cache.stats.sentences == len(data.sentences) == len(set(data.sentences))
    stsb, msrp = (set(data.sentences[i] for i in s.pairs["train"].ids_a) for s in data.sources)
    assert stsb and msrp and not stsb & msrp


def test_a_mixture_checkpoint_rebuilds_its_data_sets_losses(data_dir, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "cache"))
    datasets = [
        {"name": "stsb", "path": str(data_dir / "stsb")},
        {"name": "msrp", "path": str(data_dir / "msrp"), "loss": "pair_classification", "weight": 0.5},
    ]
    data = SentencePairDataModule(datasets=datasets, tokenizer=tiny_model_dir, batch_size=8, limit_train_pairs=16)
    model = PoolingModule(tiny_model_dir, pooler_kwargs={"num_heads": 2}, loss="cosent")
    fit = trainer(tmp_path, limit_val_batches=0)
    fit.fit(model, data)
    fit.save_checkpoint(tmp_path / "mixture.ckpt")

    loaded = PoolingModule.load_from_checkpoint(tmp_path / "mixture.ckpt", map_location="cpu", weights_only=True)
    torch.testing.assert_close(
        loaded.dataset_losses["msrp"].classifier.weight, model.dataset_losses["msrp"].classifier.weight
    )
    assert model.objectives[1].weight == 0.5


def test_mixture_options_fail_with_the_fix(data_dir, tiny_model_dir):
    with pytest.raises(ValueError, match="data.datasets\\[1\\] has unknown key\\(s\\) los; the keys are path, name"):
        SentencePairDataModule(datasets=[{"path": "a"}, {"path": "b", "los": "cosent"}], tokenizer=tiny_model_dir)
    with pytest.raises(ValueError, match="data.datasets names stsb more than once"):
        SentencePairDataModule(datasets=[{"path": "x/stsb"}, {"path": "y/stsb"}], tokenizer=tiny_model_dir)
    with pytest.raises(ValueError, match="not both"):
        SentencePairDataModule(str(data_dir / "stsb"), datasets=[{"path": "x"}], tokenizer=tiny_model_dir)
    stsb = [{"path": str(data_dir / "stsb"), "positives_only": True}, {"path": str(data_dir / "msrp")}]
    with pytest.raises(ValueError, match="positives_only keeps the pairs labelled 1, but it has a 'score' column"):
        SentencePairDataModule(datasets=stsb, tokenizer=tiny_model_dir).setup("fit")
