"""The model card's metadata (YAML front matter) in sentence-transformers' conventions.

``library_name``, ``pipeline_tag`` and tags as sentence-transformers writes them; ``base_model``
only when it is a real hub id (a local folder or ``package:...`` means nothing on the hub: the
card names it in a line instead); ``license`` and ``language`` taken from the base model's own
card when it sits on this machine; ``datasets`` when the training data is a hub id; and a
``model-index`` from the last ``poolhead compare`` of the export (:mod:`poolhead.export.results`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard
from huggingface_hub.repocard_data import eval_results_to_model_index

from poolhead.backbone import resolve_model_path

TAGS = ["sentence-transformers", "feature-extraction", "sentence-similarity", "poolhead"]
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: poolhead compare's metrics -> the metric names sentence-transformers' own cards use.
ST_METRIC_NAMES = {
    "spearman": ("spearman_cosine", "Spearman Cosine"),
    "pearson": ("pearson_cosine", "Pearson Cosine"),
    "accuracy": ("cosine_accuracy", "Cosine Accuracy"),
    "f1": ("cosine_f1", "Cosine F1"),
}
TASKS = {
    "score": ("semantic-similarity", "Semantic Similarity"),
    "label": ("pair-classification", "Pair Classification"),
    # compare's contrast and probe sets (semantoneg is in the ood suite): a card must not fail on them
    "contrast": ("sentence-similarity", "Contrast Set"),
    "probe": ("text-classification", "Linear Probe"),
}


def hub_id(name: Any) -> str | None:
    """``name`` if it reads as a hub repository id and is no local path; else None."""
    if not name or str(name).startswith("package:") or Path(str(name)).exists():
        return None
    return str(name) if HUB_ID.match(str(name)) else None


def public_name(name: Any) -> str:
    """What a published card may print for a model or data source: a hub id or ``package:...`` as it is,
    a local path as its last part (never a folder of the machine that made the export)."""
    text = str(name)
    if text.startswith("package:") or hub_id(text):
        return text
    if Path(text).is_absolute() or Path(text).exists() or "/" in text or "\\" in text:
        return Path(text.replace("\\", "/").rstrip("/")).name or text
    return text


def training_hub_ids(training: Any) -> list[str]:
    """The hub datasets among the training data (one description, or one per data set of a mixture)."""
    descriptions = list(training.values()) if isinstance(training, dict) else [training]
    found = [str(d).split(" ")[0].rstrip(",") for d in descriptions if isinstance(d, str)]
    return list(dict.fromkeys(name for name in found if hub_id(name)))


def base_model_facts(base_model: Any) -> dict[str, Any]:
    """``license`` and ``language`` from the card of a base model on this machine (README.md front matter)."""
    if not base_model:
        return {}
    try:
        readme = Path(resolve_model_path(str(base_model))) / "README.md"
    except ValueError:
        return {}
    if not readme.is_file():
        return {}
    data = ModelCard.load(readme, ignore_metadata_errors=True).data.to_dict()
    return {key: data[key] for key in ("license", "language") if data.get(key)}


def card_metadata(metadata: dict[str, Any], model_name: str, results: dict[str, Any] | None = None) -> dict[str, Any]:
    """The front matter as a dict, in sentence-transformers' order of keys."""
    data: dict[str, Any] = {"library_name": "sentence-transformers", "pipeline_tag": "sentence-similarity"}
    data["tags"] = list(TAGS)
    if hub_id(metadata.get("base_model")):
        data["base_model"] = str(metadata["base_model"])
    datasets = training_hub_ids(metadata.get("training_data"))
    if datasets:
        data["datasets"] = datasets
    data.update(base_model_facts(metadata.get("base_model")))
    if results:
        data["model-index"] = eval_results_to_model_index(model_name, eval_results(results))
    return data


def front_matter(data: dict[str, Any]) -> str:
    return "---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True) + "---"


def eval_results(results: dict[str, Any]) -> list[EvalResult]:
    """One EvalResult per (evaluation set, metric) of ``poolhead_compare.json``; values as fractions, as ST writes."""
    found = []
    for entry in results["results"]:
        task_type, task_name = TASKS[entry["task"]]
        for metric, value in entry["metrics"].items():
            metric_type, metric_name = ST_METRIC_NAMES.get(metric, (metric, metric))
            found.append(
                EvalResult(
                    task_type=task_type,
                    task_name=task_name,
                    dataset_type=entry["dataset"],
                    dataset_name=entry["dataset"],
                    dataset_split=entry.get("split", "test"),
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=round(value / 100, 6),
                )
            )
    return found
