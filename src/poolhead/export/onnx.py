"""The whole embedding pipeline of an export as one ONNX graph, beside the torch weights.

:func:`export_onnx` writes ``onnx/poolhead.onnx`` inside an export folder: backbone, poolhead
pooling (any fixed strategy or learned head; heads that read several layers get them from inside
the graph) and Normalize, from ``input_ids``/``attention_mask`` (``token_type_ids`` when the
backbone takes them) to ``sentence_embedding``, with dynamic batch and sequence axes. It uses
``torch.onnx.export(dynamo=True)`` (the exporter torch keeps; it needs onnxscript) and checks
the graph against the torch model with onnxruntime before it keeps the file.

Not ``onnx/model.onnx``: sentence-transformers' own ``backend="onnx"`` (through optimum) looks for
that name and expects a backbone-only graph with ``last_hidden_state``; this graph ends with the
pooling, so it has a name of its own. :mod:`poolhead.export.backends` runs it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poolhead.errors import UserValueError
from poolhead.export.backends import CONFIG_FILE, ONNX_FOLDER
from poolhead.pooling.registry import FIXED_POOLERS, LEARNED_POOLERS

ONNX_FILE = "poolhead.onnx"
OUTPUT_NAME = "sentence_embedding"
CARD_START = "<!-- poolhead onnx -->"
#: The graph must give the torch model's embeddings to this tolerance, or it is not kept.
TOLERANCE = 1e-4
#: Texts of different lengths, so the example batch has padding and the mask paths are traced.
EXAMPLE_TEXTS = ["A short one.", "A somewhat longer sentence, so that the batch holds some padding tokens."]
#: Above this many bytes of weights the graph keeps them in a separate file (protobuf's 2 GB limit).
INLINE_WEIGHTS_LIMIT = 1_500_000_000


class EmbeddingGraph(torch.nn.Module):
    """A SentenceTransformer as a function of token tensors: what ``encode`` computes, as one module."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            features["token_type_ids"] = token_type_ids
        return self.model(features)[OUTPUT_NAME]


def export_onnx(folder: str | Path, *, opset: int | None = None) -> Path:
    """Write ``folder/onnx/poolhead.onnx`` (and its config) for the export at ``folder``; return the graph's path.

    Args:
        folder: a poolhead export (or any sentence-transformers folder ``poolhead.load`` reads).
        opset: ONNX opset; default the exporter's.

    Raises UserValueError when the model cannot be traced by ``torch.export``, or when the graph's
    embeddings differ from the torch model's by more than ``TOLERANCE``; nothing is kept then.
    """
    from poolhead.export.loading import load_sentence_transformer

    folder = Path(folder)
    model = load_sentence_transformer(folder, device="cpu")
    path = write_onnx(model, folder / ONNX_FOLDER, opset=opset)
    add_card_section(folder)
    return path


def write_onnx(model: Any, destination: Path, *, opset: int | None = None) -> Path:
    """Export an in-memory SentenceTransformer into the folder ``destination`` (replaced if it exists)."""
    from poolhead.export.writer import check_model_max_seq_length

    check_model_max_seq_length(model)  # the graph's config carries it to every backend's tokenizer
    model = model.eval()
    features = model.tokenize(EXAMPLE_TEXTS)
    input_names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in features]
    inputs = tuple(features[name] for name in input_names)
    graph = EmbeddingGraph(model).eval()
    with torch.no_grad():
        expected = graph(*inputs).numpy()
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    path = destination / ONNX_FILE
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    try:
        torch.onnx.export(
            graph,
            inputs,
            str(path),
            input_names=input_names,
            output_names=[OUTPUT_NAME],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in input_names},
            opset_version=opset,
            dynamo=True,
            external_data=weight_bytes > INLINE_WEIGHTS_LIMIT,
            verbose=False,
        )
    except Exception as error:
        shutil.rmtree(destination, ignore_errors=True)
        summary = str(error).split("## Exception summary")[-1].strip().splitlines()[0]
        raise UserValueError(f"torch.onnx.export could not trace {' > '.join(type(m).__name__ for m in model)} "
                         f"({summary}); {exportable_sentence()}") from error  # fmt: skip
    config = {"file": ONNX_FILE, "inputs": input_names, "output": OUTPUT_NAME,
              "max_seq_length": model.max_seq_length, "embedding_dimension": int(expected.shape[1])}  # fmt: skip
    (destination / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
    check_graph(path, dict(zip(input_names, (t.numpy() for t in inputs), strict=True)), expected, destination)
    return path


def add_card_section(folder: Path) -> None:
    """Tell the model card's readers (on the hub too) that the graph is there and how to run it."""
    readme = folder / "README.md"
    if not readme.is_file() or CARD_START in (text := readme.read_text(encoding="utf-8")):
        return
    config = json.loads((folder / ONNX_FOLDER / CONFIG_FILE).read_text(encoding="utf-8"))
    section = f"""{CARD_START}
## ONNX

`{ONNX_FOLDER}/{ONNX_FILE}` is the whole model (backbone, pooling and any Normalize) as one graph, from
{", ".join(f"`{name}`" for name in config["inputs"])} (int64, batch x sequence) to `{OUTPUT_NAME}`. Run it
with onnxruntime or OpenVINO through poolhead:

```python
import poolhead

model = poolhead.load("path/to/this/model", backend="onnx")  # or backend="openvino"
embeddings = model.encode(["A sentence.", "Another one."])
```

or on its own: tokenize with this folder's tokenizer (padding, truncation to {config["max_seq_length"]} tokens)
and feed the graph.
"""
    readme.write_text(text.rstrip("\n") + "\n\n" + section, encoding="utf-8")


def exportable_sentence() -> str:
    names = ", ".join([*FIXED_POOLERS, *LEARNED_POOLERS])
    return (
        f"poolhead's own poolers ({names}) export, with a Transformer backbone, sentence-transformers' Pooling "
        f"and Normalize, because their shapes follow the inputs' and they branch on no tensor values, which "
        f"torch.export needs; a custom pooler must do the same, or keep the torch backend"
    )


def check_graph(path: Path, inputs: dict[str, np.ndarray], expected: np.ndarray, destination: Path) -> None:
    """Run the new graph with onnxruntime; remove it unless it gives ``expected`` to ``TOLERANCE``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], inputs)[0]
    difference = float(np.abs(got - expected).max())
    if difference > TOLERANCE:
        shutil.rmtree(destination, ignore_errors=True)
        raise UserValueError(
            f"the ONNX graph's embeddings differ from the torch model's by {difference:.1e} (> {TOLERANCE}); "
            f"the graph was not kept: keep the torch backend for this model"
        )
