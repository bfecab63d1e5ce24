"""Share an export on the Hugging Face hub: the folder as it is, with huggingface_hub's own API.

Before the upload, the model card's metadata is brought up to date: its ``model-index`` from the
last ``poolhead compare`` of the export (``poolhead_compare.json``), and no ``base_model`` that is
not a hub id.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from poolhead.errors import UserValueError
from poolhead.export.card_data import HUB_ID, eval_results, front_matter, hub_id
from poolhead.export.loading import read_modules_json
from poolhead.export.results import RESULTS_FILE, read_export_results
from poolhead.training.finite import check_finite_weights

EVALUATION_START = "<!-- poolhead compare: start -->"
EVALUATION_END = "<!-- poolhead compare: end -->"


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
) -> str:
    """Create (or reuse) the model repository ``repo_id`` and upload ``folder`` into it; return the commit URL.

    Args:
        folder: an export (any sentence-transformers folder); uploaded with every file in it,
            including the head's code in ``poolhead_pooling/`` when it has one.
        repo_id: ``ORG/NAME`` (or ``USER/NAME``) on the hub.
        private: create the repository private (an existing repository keeps its visibility).
        commit_message: default "Upload <folder name> with poolhead".
        token: a hub token; default the one ``huggingface-cli login`` saved (or ``HF_TOKEN``).
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    read_modules_json(folder)  # a model folder, complete, with no path leading outside it
    check_finite_folder(folder)
    if not HUB_ID.match(repo_id):
        raise UserValueError(
            f"repository id {repo_id!r} is not of the form ORG/NAME; give e.g. my-org/minilm-attention"
        )
    card = refresh_model_card(folder)
    if card is not None:
        check_card_is_publishable(card)
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type="model",
        folder_path=str(folder),
        commit_message=commit_message or f"Upload {folder.resolve().name} with poolhead",
    )
    return str(getattr(commit, "commit_url", commit))


def check_finite_folder(folder: Path) -> None:
    """Refuse an export whose weights (any ``*.safetensors`` in it) or compare scores hold NaN or infinity."""
    from safetensors.torch import load_file

    for weights in sorted(folder.rglob("*.safetensors")):
        check_finite_weights(load_file(weights), f"{weights} of export {folder}")
    results = read_export_results(folder) or {"results": []}
    for entry in results["results"]:
        bad = [metric for metric, value in entry["metrics"].items() if not math.isfinite(value)]
        if bad:
            raise UserValueError(
                f"{folder / RESULTS_FILE} gives {entry['dataset']} a non-finite {', '.join(bad)}, which the card "
                f"would publish; run poolhead compare on the export again, or delete that file"
            )


#: URLs (``https://...``, ``hf://...``) name places on the web, not on this machine; ``file://`` is kept to be scanned.
WEB_URL = re.compile(r"\b(?!file:)[A-Za-z][A-Za-z0-9+.-]*://\S*")
_PATH_CHARS = r"[^\s`'\"|()\[\]<>,;]"
#: a path of the machine that made the export: ``/home/u/...``, ``~/...``, ``C:\\...``, ``C:/...``, ``\\\\server\\...``;
#: a relative path (``poolhead_pooling/attention.py``) or a hub id (``org/name``) starts with no root.
MACHINE_PATH = re.compile(
    rf"(?<![\w.~-])/[\w.~@+-]+/{_PATH_CHARS}*"
    rf"|(?<![\w~])~(?:[A-Za-z_][\w.-]*)?/{_PATH_CHARS}*"
    rf"|(?<![\w])[A-Za-z]:[\\/]{_PATH_CHARS}*"
    rf"|\\\\[\w.-]+\\{_PATH_CHARS}*"
)
#: nan or inf standing as a value: a table cell (``| nan |``), a YAML value (``value: .nan``), a list item.
NON_FINITE = re.compile(
    r"(?:^|(?<=[|:,\[]))[ \t]*([-+]?\.?(?:nan|inf(?:inity)?))[ \t]*(?=$|[|,\]}])", flags=re.IGNORECASE | re.MULTILINE
)


def check_card_is_publishable(readme: Path) -> None:
    """Refuse a model card naming a path of the exporting machine or a non-finite score (cards of old exports).

    Exports since the card fix name local folders by their last part and leave out non-finite
    scores; a folder exported before keeps its card, which ``push`` would otherwise publish as it is.
    """
    text = WEB_URL.sub(" ", readme.read_text(encoding="utf-8"))
    path, score = MACHINE_PATH.search(text), NON_FINITE.search(text)
    if path and (not score or path.start() < score.start()):
        what = f"the path '{path.group(0)}' of the machine that made it"
    elif score:
        line = text[text.rfind("\n", 0, score.start()) + 1 :].split("\n", 1)[0].strip()
        what = f"the non-finite score '{score.group(1)}' (in '{line}')"
    else:
        return
    raise UserValueError(
        f"{readme} names {what}, which the hub would publish; export the checkpoint again with poolhead export "
        f"(its card names local folders by their last part and leaves out non-finite scores), then push that folder"
    )


def refresh_model_card(folder: Path) -> Path | None:
    """Rewrite README.md's front matter (model-index, base_model) and its evaluation section in place."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?\n)---\n?", text, flags=re.DOTALL)
    data: dict[str, Any] = (yaml.safe_load(match.group(1)) or {}) if match else {}
    body = text[match.end() :] if match else text
    if data.get("base_model") and not hub_id(data["base_model"]):
        data.pop("base_model")
    results = read_export_results(folder)
    if results:
        from huggingface_hub.repocard_data import eval_results_to_model_index

        data["model-index"] = eval_results_to_model_index(results["model"], eval_results(results))
        body = with_evaluation_section(body, results)
    readme.write_text(front_matter(data) + "\n" + body, encoding="utf-8")
    return readme


def with_evaluation_section(body: str, results: dict[str, Any]) -> str:
    lines = ["## Evaluation (poolhead compare)", "", "| data | pairs | metric | value (×100) |", "|---|---|---|---|"]
    for entry in results["results"]:
        lines += [f"| {entry['dataset']} | {entry['pairs']} | {m} | {v:.2f} |" for m, v in entry["metrics"].items()]
    section = "\n".join([EVALUATION_START, *lines, EVALUATION_END])
    if EVALUATION_START in body and EVALUATION_END in body:
        before, rest = body.split(EVALUATION_START, 1)
        return before + section + rest.split(EVALUATION_END, 1)[1]
    return body.rstrip("\n") + "\n\n" + section + "\n"
