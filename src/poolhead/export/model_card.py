"""The README model card of an export: what the model is, how it was trained, how to load it."""

from __future__ import annotations

import json
from typing import Any

from sentence_transformers import SentenceTransformer

from poolhead.export.card_data import card_metadata, front_matter, hub_id, public_name

#: metadata keys with a place of their own in the card; any other key goes under "Details".
KNOWN_KEYS = ("base_model", "pooler", "training_data", "loss", "metrics", "title")


def render_model_card(model: SentenceTransformer, metadata: dict[str, Any], *, needs_remote_code: bool) -> str:
    """Markdown with a Hugging Face YAML header, built from the model and what ``metadata`` gives.

    Args:
        model: the SentenceTransformer being saved (modules, dimension, max length are read from it).
        metadata: ``base_model``, ``pooler`` (config dict), ``training_data``, ``loss``,
            ``metrics`` (name -> value), ``title``; other keys are listed as given.
        needs_remote_code: the folder carries pooling code (loading needs ``trust_remote_code=True``).
    """
    title = metadata.get("title") or default_title(metadata.get("base_model"), metadata.get("pooler"))
    sections = [
        front_matter(card_metadata(metadata, title)),
        f"# {title}\n\nA [sentence-transformers](https://www.sbert.net) model exported by poolhead."
        + local_base_line(metadata),
        model_section(model, metadata),
        training_section(metadata),
        metrics_section(metadata.get("metrics")),
        details_section({k: v for k, v in metadata.items() if k not in KNOWN_KEYS}),
        usage_section(needs_remote_code),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def local_base_line(metadata: dict[str, Any]) -> str:
    """A line naming a base model that is no hub id (a local folder, ``package:...``); the card omits base_model."""
    base_model = metadata.get("base_model")
    if not base_model or hub_id(base_model):
        return ""
    return f" Its base model is the local model `{public_name(base_model)}`, not a Hugging Face hub repository."


def default_title(base_model: str | None, pooler: dict[str, Any] | None) -> str:
    """``all-MiniLM-L6-v2 with attention pooling``: a hub id or folder name, and the head."""
    base = str(base_model).rstrip("/").split("/")[-1] if base_model else "Sentence embeddings"
    return f"{base} with {describe_pooler(pooler)} pooling" if pooler else base


def describe_pooler(config: dict[str, Any]) -> str:
    """``attention`` / ``weighted_layer + attention``: the head in the user's words."""
    name = config.get("name", "?")
    inner = config.get("inner")
    return f"{name} + {describe_pooler(inner)}" if isinstance(inner, dict) else name


def model_section(model: SentenceTransformer, metadata: dict[str, Any]) -> str:
    modules = " → ".join(type(module).__name__ for module in model)
    rows = [
        ("Base model", f"`{public_name(metadata['base_model'])}`" if metadata.get("base_model") else None),
        ("Pooling head", f"`{describe_pooler(metadata['pooler'])}`" if metadata.get("pooler") else None),
        ("Embedding dimension", model.get_embedding_dimension()),
        ("Max sequence length", model.max_seq_length),
        ("Normalized embeddings", "yes" if type(model[-1]).__name__ == "Normalize" else "no"),
        ("Modules", modules),
    ]
    text = "## Model\n\n" + table(("", ""), [(k, v) for k, v in rows if v is not None])
    if metadata.get("pooler"):
        config = json.dumps(metadata["pooler"], indent=2)
        text += f"\n\nPooler config (`poolhead.pooler_from_config`):\n\n```json\n{config}\n```"
    return text


def training_section(metadata: dict[str, Any]) -> str:
    """The training data and loss; a mixture gets one row per data set, each with its own loss."""
    training = metadata.get("training_data")
    if isinstance(training, dict) and all(isinstance(value, str) for value in training.values()):
        rows = [(f"Training data: {name}", description) for name, description in training.items()]
    else:
        rows = [("Training data", training)] if training is not None else []
    rows += [("Loss", metadata["loss"])] if metadata.get("loss") is not None else []
    return "## Training\n\n" + table(("", ""), [(k, format_value(v)) for k, v in rows]) if rows else ""


def metrics_section(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return ""
    return "## Validation metrics\n\n" + table(("metric", "value"), [(k, format_value(v)) for k, v in metrics.items()])


def details_section(details: dict[str, Any]) -> str:
    if not details:
        return ""
    return "## Details\n\n" + table(("", ""), [(k, format_value(v)) for k, v in details.items()])


def usage_section(needs_remote_code: bool) -> str:
    if needs_remote_code:
        load = 'model = SentenceTransformer("PATH", trust_remote_code=True)'
        note = (
            "The pooling head is not one of sentence-transformers' own modules: its code ships in "
            "`poolhead_pooling/` (plain PyTorch) and runs with `trust_remote_code=True`; poolhead "
            'need not be installed. With poolhead installed, `poolhead.load("PATH")` builds the '
            "same model from poolhead's installed code and runs nothing from the folder."
        )
    else:
        load = 'model = SentenceTransformer("PATH")'
        note = "Only sentence-transformers' own modules: no custom code, no `trust_remote_code`."
    encode = 'embeddings = model.encode(["A sentence.", "Another one."])'
    code = f"```python\nfrom sentence_transformers import SentenceTransformer\n\n{load}\n{encode}\n```"
    return f"## Usage\n\n{code}\n\n{note}"


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return f"`{json.dumps(value)}`"
    return str(value)


def table(header: tuple[str, str], rows: list[tuple[Any, Any]]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    # A "|" inside a cell would end it early.
    lines += ["| {} | {} |".format(key, str(value).replace("|", "\\|")) for key, value in rows]
    return "\n".join(lines)
