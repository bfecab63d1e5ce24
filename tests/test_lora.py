"""LoRA fine-tuning: only adapters and head train, checkpoints hold only those, export merges them."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from quiet_fit import quiet_trainer
from sentence_transformers import SentenceTransformer

from poolhead import PoolingModule, SentencePairDataModule
from poolhead.export import export_checkpoint
from poolhead.training.lora import is_adapter_key, trainable_parameters

LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query", "value"]}
MAX_LENGTH = 32


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def lora_module(tiny_model_dir: str, **kwargs) -> PoolingModule:
    options = {"pooler": "attention", "pooler_kwargs": {"num_heads": 2}, "max_length": MAX_LENGTH, "lr": 1e-2}
    options.update(freeze_backbone=False, backbone_lr=5e-2, lora=LORA, **kwargs)
    return PoolingModule(tiny_model_dir, **options)


def fit(model: PoolingModule, data_dir: Path, folder: Path, epochs: int, ckpt_path: str | None = None) -> L.Trainer:
    L.seed_everything(0, verbose=False)
    data = SentencePairDataModule(
        str(data_dir / "stsb"),
        tokenizer=model.hparams.backbone,
        max_length=MAX_LENGTH,
        batch_size=16,
        limit_train_pairs=48,
        limit_eval_pairs=32,
    )
    checkpoints = ModelCheckpoint(dirpath=folder, save_last=True)
    trainer = quiet_trainer(
        folder, max_epochs=epochs, enable_checkpointing=True, callbacks=[checkpoints], gradient_clip_val=1.0
    )
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    return trainer


@pytest.fixture(scope="module")
def trained(tiny_model_dir, data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lora")
    model = lora_module(tiny_model_dir)
    fit(model, data_dir, folder, epochs=1)
    return model, folder / "last.ckpt"


def adapters(model: PoolingModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if is_adapter_key(k)}


def test_only_adapters_and_head_train(tiny_model_dir):
    model = lora_module(tiny_model_dir)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    backbone = {name for name in trainable if name.startswith("backbone_model.")}
    assert backbone and all(is_adapter_key(name) for name in backbone)
    assert any(name.startswith("pooler.") for name in trainable)
    full = PoolingModule(tiny_model_dir, freeze_backbone=False, max_length=MAX_LENGTH)
    assert trainable_parameters(model) < trainable_parameters(full) / 5


def test_checkpoint_holds_adapters_head_and_fingerprint_only(trained):
    model, checkpoint_path = trained
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    backbone_keys = [k for k in checkpoint["state_dict"] if k.startswith("backbone_model.")]
    assert backbone_keys and all(is_adapter_key(k) for k in backbone_keys)
    assert len(checkpoint["backbone_fingerprint"]) == 64
    # The adapters learned something (LoRA starts with B = 0, a no-op).
    assert any(v.abs().sum() > 0 for k, v in checkpoint["state_dict"].items() if "lora_B" in k)
    reloaded = PoolingModule.load_from_checkpoint(checkpoint_path, map_location="cpu", weights_only=True)
    for key, value in adapters(model).items():
        torch.testing.assert_close(reloaded.state_dict()[key], value, atol=0, rtol=0)


def test_export_merges_adapters_into_a_plain_sentence_transformers_folder(trained, tiny_model_dir, tmp_path):
    model, checkpoint_path = trained
    out = export_checkpoint(checkpoint_path, tmp_path / "exported")
    assert not list(out.rglob("adapter_config.json"))
    texts = ["A man is playing a guitar.", "Two dogs run on the beach.", "short"]
    loaded = SentenceTransformer(str(out), device="cpu", trust_remote_code=True)
    got = loaded.encode(texts, convert_to_tensor=True)

    model.eval()
    features = model.backbone.tokenizer(
        texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
    )
    with torch.inference_mode():
        expected = model(dict(features))  # the adapters applied on the fly, unmerged
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    base = PoolingModule(tiny_model_dir, max_length=MAX_LENGTH, pooler=model.pooler.get_config()).eval()
    with torch.inference_mode():
        assert not torch.allclose(base(dict(features)), expected, atol=1e-4), "the adapters changed nothing"


def test_lora_checkpoint_resumes(trained, data_dir, tmp_path):
    _, checkpoint_path = trained
    model = PoolingModule.load_from_checkpoint(checkpoint_path, map_location="cpu", weights_only=True)
    before = adapters(model)
    resumed = lora_module(model.hparams.backbone)
    trainer = fit(resumed, data_dir, tmp_path, epochs=2, ckpt_path=str(checkpoint_path))
    assert trainer.current_epoch == 2 and trainer.global_step == 2 * 3
    assert any(not torch.equal(before[k], v) for k, v in adapters(resumed).items()), "the second epoch trained"


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model_dir):
    torch.manual_seed(0)
    features = {"input_ids": torch.randint(5, 90, (2, 9)), "attention_mask": torch.ones(2, 9, dtype=torch.long)}
    grads = []
    for checkpointing in (False, True):
        model = lora_module(tiny_model_dir, gradient_checkpointing=checkpointing).train()
        assert model.backbone_model.is_activation_checkpointing == checkpointing
        torch.manual_seed(1)  # the same dropout masks in both runs
        model(features).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if is_adapter_key(n) and p.grad is not None})
    assert grads[0] and grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lora": {"rank": 8}}, "unknown lora option 'rank'"),
        ({"lora": {"target_modules": ["q_proj"]}}, "its linear layers are named"),
        ({"lora": LORA, "freeze_backbone": True}, "set freeze_backbone: false"),
    ],
)
def test_bad_lora_options_say_what_to_fix(tiny_model_dir, options, message):
    with pytest.raises(ValueError, match=message):
        PoolingModule(tiny_model_dir, max_length=MAX_LENGTH, **{"freeze_backbone": False, **options})
