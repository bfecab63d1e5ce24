"""The whole embedding pipeline as one ONNX graph, run by onnxruntime and OpenVINO, gives the torch export's embeddings.

Every pooler in the registry, fixed and learned, plus weighted_layer over a fixed inner pooler (exported as
sentence-transformers' own modules, not poolhead's), is exported once (and as one ONNX graph) on the tiny
random 2-layer BERT at max_length 32: whether a pooler's graph computes what torch computes does not depend
on the backbone's size, and the tiny BERT has the real BERT code, three hidden states for the layer-reading
heads and MiniLM's tokenizer, so the texts below still pad and truncate. A few representative poolers (mean,
the attention head, a layer-reading head) are also exported on the real MiniLM, which is what a user
exports: that the real model's graph traces and agrees is checked there. Learned heads are made to look
trained: every head starts as mean pooling, and a graph that silently computed the mean would then pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from catalogue import FIXED, HEADS, trained_looking
from quiet_fit import saved_checkpoint

import poolhead
from poolhead.pooling.registry import FIXED_POOLERS, LEARNED_POOLERS

MAX_LENGTH = 32
TEXTS = [
    "A man is playing a guitar.",
    "",
    "The quick brown fox jumps over the lazy dog, again and again, until the dog finally wakes up. " * 3,
    "short",
    "Two women are sitting on a bench in the park.",
]
POOLERS = {**{name: name for name in FIXED}, **HEADS}
#: Exported on the real MiniLM too: the default pooler, the attention head, a head that reads several layers.
ON_MINILM = ["mean", "attention", "weighted_layer+attention"]
#: (backbone, pooler) pairs: every pooler on the tiny BERT, the representative ones on MiniLM (slower).
CASES = [pytest.param("tiny", name, id=f"tiny-{name}") for name in POOLERS] + [
    pytest.param("minilm", name, id=f"minilm-{name}", marks=pytest.mark.integration) for name in ON_MINILM
]


def test_every_registered_pooler_is_exported():
    assert {config if isinstance(config, str) else config["name"] for config in POOLERS.values()} == {
        *FIXED_POOLERS,
        *LEARNED_POOLERS,
    }


@pytest.fixture(scope="module")
def tiny_layered_dir(tmp_path_factory) -> str:
    """The tiny random BERT with weights drawn wide enough that its layers differ, saved as a model folder.

    At BERT's default init (std 0.02) the residual stream barely changes: mean pooling over any of the
    three hidden states gives nearly the same embedding (0.005 apart), so a layer-reading head's graph
    that read the wrong layers would still pass; at std 0.2 they are about 0.5 apart.
    """
    import torch
    from standins import tiny_model_folder

    torch.manual_seed(0)
    return tiny_model_folder(tmp_path_factory.mktemp("tiny-layered-bert"), initializer_range=0.2)


@pytest.fixture(scope="module")
def backbone_of(request):
    """ "tiny" or "minilm" -> that backbone at MAX_LENGTH, loaded once (MiniLM only when a case asks for it)."""
    from poolhead.backbone import load_backbone

    backbones = {}

    def backbone(model: str):
        if model not in backbones:
            path = request.getfixturevalue("tiny_layered_dir" if model == "tiny" else "minilm_path")
            backbones[model] = load_backbone(path, max_length=MAX_LENGTH)
        return backbones[model]

    return backbone


@pytest.fixture(scope="module")
def mean_embeddings(backbone_of):
    """ "tiny" or "minilm" -> mean pooling's embeddings of TEXTS on that backbone, computed once."""
    import functools

    @functools.cache
    def embeddings(model: str):
        return poolhead.Encoder(backbone_of(model), "mean", normalize=True, device="cpu").encode(TEXTS).numpy()

    return embeddings


@pytest.fixture(scope="module")
def onnx_export(backbone_of, tmp_path_factory):
    """(backbone, pooler) -> (export folder with its ONNX graph, the torch export's embeddings of TEXTS), made once."""
    import torch

    from poolhead.export import export_sentence_transformer
    from poolhead.export.onnx import export_onnx
    from poolhead.pooling.registry import resolve_pooler

    exports = {}

    def export_of(model: str, name: str):
        if (model, name) not in exports:
            torch.set_num_threads(1)
            backbone = backbone_of(model)
            pooler = resolve_pooler(POOLERS[name], backbone.hidden_size)
            folder = tmp_path_factory.mktemp(f"onnx-{model}-{name}") / "export"
            export_sentence_transformer(backbone, trained_looking(pooler, seed=len(name)), folder, normalize=True)
            export_onnx(folder)
            embeddings = poolhead.load(folder, device="cpu").encode(TEXTS, convert_to_numpy=True)
            exports[model, name] = folder, embeddings
        return exports[model, name]

    return export_of


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
@pytest.mark.parametrize("model,pooler", CASES)
def test_backend_gives_the_torch_embeddings(onnx_export, model, pooler, backend, one_thread):
    folder, expected = onnx_export(model, pooler)
    loaded = poolhead.load(folder, backend=backend, threads=1)
    got = loaded.encode(TEXTS, batch_size=2)
    assert got.shape == expected.shape == (len(TEXTS), loaded.get_embedding_dimension())
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    # the long text is truncated at the export's max_seq_length, as the torch model truncates it
    assert loaded.tokenize([TEXTS[2]])["input_ids"].shape[1] == MAX_LENGTH


@pytest.mark.parametrize("model,pooler", [case for case in CASES if case.values[1] in HEADS])
def test_random_heads_are_not_the_mean(onnx_export, model, pooler, mean_embeddings):
    """The premise of the comparison above: with these weights a head's embeddings are not mean pooling's."""
    _, expected = onnx_export(model, pooler)
    mean = mean_embeddings(model)
    if expected.shape != mean.shape:  # a head with its own output size is not the mean by shape
        return
    assert np.abs(expected - mean).max() > 0.05


@pytest.mark.integration
@pytest.mark.parametrize("pooler", ["mean", "weighted_layer+attention"])
def test_graph_lives_inside_the_export(onnx_export, pooler):
    import json

    folder, _ = onnx_export("minilm", pooler)
    config = json.loads((folder / "onnx" / "poolhead_onnx.json").read_text())
    assert (folder / "onnx" / config["file"]).is_file()
    assert set(config["inputs"]) == {"input_ids", "attention_mask", "token_type_ids"}
    assert (folder / "model.safetensors").is_file()  # the torch weights stay beside the graph
    assert 'poolhead.load("path/to/this/model", backend="onnx")' in (folder / "README.md").read_text()


def test_no_graph_says_how_to_write_one(tiny_model_dir, tmp_path):
    from poolhead.export import export_sentence_transformer

    folder = export_sentence_transformer(tiny_model_dir, "mean", tmp_path / "export")
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        poolhead.load(folder, backend="onnx")
    with pytest.raises(ValueError, match="choose one of torch, onnx, openvino"):
        poolhead.load(folder, backend="tensorrt")


def test_graph_file_outside_the_export_is_refused(tiny_model_dir, tmp_path):
    import json

    from poolhead.export import export_sentence_transformer

    folder = export_sentence_transformer(tiny_model_dir, "mean", tmp_path / "export")
    (tmp_path / "elsewhere.onnx").write_bytes(b"")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "poolhead_onnx.json").write_text(json.dumps({"file": "../../elsewhere.onnx", "inputs": []}))
    with pytest.raises(ValueError, match="not a file inside"):
        poolhead.load(folder, backend="onnx")


class ThresholdPooling(poolhead.Pooler):
    """A custom head that branches on tensor values: torch.export cannot trace it."""

    name = "threshold"

    def pool(self, token_embeddings, attention_mask):
        if attention_mask.sum() > 8:
            return token_embeddings[:, 0]
        return token_embeddings.mean(dim=1)


def test_head_that_cannot_trace_is_refused_with_the_ones_that_can(tiny_model_dir, tmp_path, one_thread):
    from poolhead.export import to_sentence_transformer
    from poolhead.export.onnx import write_onnx

    model = to_sentence_transformer(tiny_model_dir, {"name": "attention", "num_heads": 2})
    model[1].pooler = ThresholdPooling()  # poolhead's exports hold registered poolers only; this one is in memory
    with pytest.raises(
        ValueError, match=r"could not trace.*poolhead's own poolers \(cls, .*weighted_layer.*\) export.*because"
    ):
        write_onnx(model, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_export_command_writes_the_graph_beside_the_weights(tiny_model_dir, tmp_path, capsys, one_thread):

    from poolhead.cli import main
    from poolhead.training.module import PoolingModule

    head = {"name": "weighted_layer", "inner": "mean", "layers": [-1, -2]}
    module = PoolingModule(backbone=tiny_model_dir, pooler=head, normalize=True)
    saved_checkpoint(module, tmp_path / "best.ckpt")

    assert main(["export", str(tmp_path / "best.ckpt"), str(tmp_path / "out"), "--onnx"]) == 0
    assert 'backend="onnx"' in capsys.readouterr().out
    expected = poolhead.load(tmp_path / "out", device="cpu").encode(TEXTS, convert_to_numpy=True)
    model = poolhead.load(tmp_path / "out", backend="onnx", threads=1)
    np.testing.assert_allclose(model.encode(TEXTS), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(model.encode(TEXTS[0]), expected[0], atol=1e-4, rtol=0)
    assert model.encode([]).shape == (0, model.get_embedding_dimension())
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        model.encode(TEXTS, batch_size=0)


def test_graph_that_disagrees_with_torch_is_not_kept(tiny_model_dir, tmp_path, monkeypatch, one_thread):
    from poolhead.export import export_sentence_transformer
    from poolhead.export import onnx as onnx_export

    folder = export_sentence_transformer(tiny_model_dir, "cls", tmp_path / "export")
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # no graph can meet it: stands in for a wrong one
    with pytest.raises(ValueError, match="the graph was not kept: keep the torch backend"):
        onnx_export.export_onnx(folder)
    assert not (folder / "onnx").exists()
    with pytest.raises(FileNotFoundError, match="holds no ONNX graph"):
        poolhead.load(folder, backend="openvino")
