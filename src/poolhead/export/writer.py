"""Write a backbone + poolhead pooler as a standard sentence-transformers folder."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize, Transformer

import poolhead.pooling
from poolhead.backbone import Backbone, check_max_seq_length, check_position_limit, load_backbone
from poolhead.errors import UserFileExistsError, UserNotADirectoryError
from poolhead.export import st_module
from poolhead.export.loading import CODE_FOLDER, CODE_TYPE
from poolhead.export.model_card import render_model_card
from poolhead.export.st_module import PoolheadPooling
from poolhead.export.st_pooling import sentence_transformers_pooling
from poolhead.pooling.base import Pooler
from poolhead.pooling.registry import resolve_pooler
from poolhead.training.finite import check_finite_weights

#: The file name CODE_TYPE gives the module wrapping the pooling code inside CODE_FOLDER.
CODE_MODULE_FILE = CODE_TYPE.removeprefix(f"{CODE_FOLDER}/").rpartition(".")[0] + ".py"


def export_sentence_transformer(
    backbone: str | Path | Backbone,
    pooler: str | dict | Pooler,
    out_dir: str | Path,
    *,
    normalize: bool = False,
    overwrite: bool = False,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``backbone`` + ``pooler`` as a sentence-transformers folder; return its path.

    Args:
        backbone: hub id, HF folder, sentence-transformers folder, or a loaded ``Backbone``
            (e.g. a fine-tuned one); its ``max_length`` becomes the model's max_seq_length.
        pooler: strategy name, pooler config dict, or a ``Pooler`` (a trained head).
        out_dir: the folder to write; must be new or empty unless ``overwrite``.
        normalize: append a Normalize module (unit-length embeddings).
        overwrite: replace an existing sentence-transformers folder at ``out_dir``.
        metadata: facts for the model card: ``base_model``, ``training_data``, ``loss``,
            ``metrics`` (name -> value), and any other key (rendered as given).

    ``SentenceTransformer(out_dir)`` loads the result; heads sentence-transformers cannot
    express need ``trust_remote_code=True`` and run from the code saved in the folder.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite)
    backbone = backbone if isinstance(backbone, Backbone) else load_backbone(str(backbone))
    pooler = resolve_pooler(pooler, backbone.hidden_size)  # once: a pooler that fits is used as is
    model = to_sentence_transformer(backbone, pooler, normalize=normalize)
    card = {"base_model": backbone.name_or_path, "pooler": pooler.get_config(), **(metadata or {})}
    return save_sentence_transformer(model, out_dir, overwrite=overwrite, metadata=card)


def to_sentence_transformer(
    backbone: str | Path | Backbone, pooler: str | dict | Pooler, *, normalize: bool = False
) -> SentenceTransformer:
    """An in-memory SentenceTransformer computing what ``Encoder(backbone, pooler)`` computes.

    The backbone is copied into sentence-transformers' Transformer module (set to return
    every hidden state only when the pooler reads layers); the pooler is copied too.
    """
    backbone = backbone if isinstance(backbone, Backbone) else load_backbone(str(backbone))
    # load_backbone checks its own max_length; a Backbone built or changed by hand is checked here.
    check_position_limit(backbone.max_length, backbone.model.config, backbone.name_or_path)
    pooler = resolve_pooler(pooler, backbone.hidden_size)
    with tempfile.TemporaryDirectory(prefix="poolhead-backbone-") as folder:
        backbone.model.save_pretrained(folder)
        backbone.tokenizer.save_pretrained(folder)
        transformer = Transformer(
            folder,
            max_seq_length=backbone.max_length,
            config_kwargs={"output_hidden_states": pooler.needs_hidden_states},
        )
    modules = [transformer, *sentence_transformers_pooling(pooler, backbone.num_hidden_states)]
    if normalize:
        modules.append(Normalize())
    return SentenceTransformer(modules=modules, device=str(backbone.model.device))


def save_sentence_transformer(
    model: SentenceTransformer,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Save any SentenceTransformer holding poolhead pooling as a self-contained folder.

    Unlike ``model.save(out_dir)``, the pooling code is copied into the folder and
    modules.json points at it, so the folder loads where poolhead is not installed; a
    README model card is rendered from ``metadata`` (see :func:`export_sentence_transformer`).
    The folder is written beside ``out_dir`` first and moved into place when complete.
    """
    out_dir = Path(out_dir).resolve()  # "." has no name to build the partial folder's from
    check_out_dir(out_dir, overwrite)
    check_model_max_seq_length(model)
    # The CLI checks the checkpoint; this catches a NaN head handed in from Python, before any file is written.
    check_finite_weights(model.state_dict(), f"the model to export to {out_dir}")
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        model.save(str(partial), create_model_card=False)
        uses_code = embed_pooling_code(partial, model)
        card = render_model_card(model, metadata or {}, needs_remote_code=uses_code)
        (partial / "README.md").write_text(card, encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        partial.rename(out_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out_dir


def check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``, and never delete a folder that is not a model."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserNotADirectoryError(f"{out_dir} is a file; give the path of a folder to export into")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise UserFileExistsError(
            f"{out_dir} is not empty; pass overwrite=True (poolhead export --overwrite) to replace it, "
            f"or choose a new folder"
        )
    if not (out_dir / "modules.json").is_file():
        raise UserFileExistsError(
            f"{out_dir} is not empty and is not a sentence-transformers model (no modules.json); "
            f"refusing to delete it even with overwrite=True: choose a new or empty folder"
        )


def check_model_max_seq_length(model: SentenceTransformer) -> None:
    """A folder whose max_seq_length the backbone cannot embed would only fail later, on a long text."""
    for module in model:
        if isinstance(module, Transformer):
            check_max_seq_length(module.max_seq_length, module.auto_model.config, None)


def embed_pooling_code(folder: Path, model: SentenceTransformer) -> bool:
    """Point modules.json's PoolheadPooling entries at code copied into ``folder``; True if any."""
    modules_file = folder / "modules.json"
    entries = json.loads(modules_file.read_text(encoding="utf-8"))
    uses_code = False
    for entry, module in zip(entries, model, strict=False):
        # By name: a module loaded with trust_remote_code is the folder's class, not poolhead's.
        if type(module).__name__ == PoolheadPooling.__name__ and hasattr(module, "pooler_config"):
            entry["type"] = CODE_TYPE
            uses_code = True
            # sentence-transformers copies the code of a module loaded with trust_remote_code
            # into the module's folder, where no loader looks; the code lives in CODE_FOLDER.
            for stray in (folder / entry["path"]).glob("*.py"):
                stray.unlink()
    if uses_code:
        copy_pooling_code(folder / CODE_FOLDER)
        modules_file.write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return uses_code


def pooling_source_files() -> dict[str, Path]:
    """The files an export carries, by their name there: poolhead/pooling/*.py and the module wrapping them."""
    files = {path.name: path for path in sorted(Path(poolhead.pooling.__file__).parent.glob("*.py"))}
    return {**files, CODE_MODULE_FILE: Path(st_module.__file__)}


def copy_pooling_code(destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for name, source in pooling_source_files().items():
        shutil.copyfile(source, destination / name)
