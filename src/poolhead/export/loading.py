"""Load exports with poolhead's installed code, and put a poolhead pooler on an existing model."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize, Transformer
from sentence_transformers.sentence_transformer.modules import Pooling, WeightedLayerPooling
from sentence_transformers.util import import_from_string

from poolhead.backbone import check_max_seq_length, check_tokenizer_fits
from poolhead.errors import UserFileNotFoundError, UserValueError
from poolhead.export.st_module import CONFIG_FILE, PoolheadPooling

if TYPE_CHECKING:
    from poolhead.export.backends import OnnxEncoder
from poolhead.export.st_pooling import sentence_transformers_pooling
from poolhead.folder_safety import check_model_folder
from poolhead.pooling.base import Pooler
from poolhead.pooling.registry import pooler_from_config, resolve_pooler

#: Folder of an export holding the pooling code, and the modules.json type that points into it. The
#: reader owns this layout (the writer imports it); literals, so renaming a file in the package
#: cannot change the format of new exports or stop old ones loading.
CODE_FOLDER = "poolhead_pooling"
CODE_TYPE = "poolhead_pooling/st_module.PoolheadPooling"
#: modules.json types that mean "poolhead's pooling module": in-folder code, or the installed class.
POOLHEAD_TYPES = {CODE_TYPE, f"{PoolheadPooling.__module__}.{PoolheadPooling.__name__}"}
#: Modules ``with_pooler`` replaces: the pooling stage after the Transformer. By class name, so
#: a PoolheadPooling loaded with trust_remote_code (the folder's own class) counts too.
POOLING_CLASS_NAMES = {Pooling.__name__, WeightedLayerPooling.__name__, PoolheadPooling.__name__}


def load_sentence_transformer(
    path: str | Path, device: str | None = None, *, backend: str = "torch", **backend_options: Any
) -> SentenceTransformer | OnnxEncoder:
    """Load an export (or any sentence-transformers folder of ST's own modules) with installed code only.

    Builds each module from modules.json and its config files: sentence-transformers'
    classes for its own types, poolhead's installed ``PoolheadPooling`` for the pooling
    head. No code from the folder is imported or run, so no ``trust_remote_code``.

    Args:
        path: the model folder.
        device: where to run; default sentence-transformers' choice (CUDA when available).
        backend: "torch"; or "onnx" / "openvino" for the export's ONNX graph (``poolhead export
            --onnx``), run without torch by an :class:`~poolhead.export.backends.OnnxEncoder`
            (``backend_options``: ``threads``, ``provider``).
    """
    if backend != "torch":
        from poolhead.export.backends import load_backend

        return load_backend(path, backend, **backend_options)
    folder = Path(path)
    entries = read_modules_json(folder)
    modules: OrderedDict[str, Any] = OrderedDict()
    for entry in entries:
        module_class = installed_module_class(entry["type"], folder)
        transformer = next((m for m in modules.values() if isinstance(m, Transformer)), None)
        if module_class is PoolheadPooling and transformer is not None:
            check_head_fits_backbone(folder / entry["path"], transformer)
        module = module_class.load(str(folder), subfolder=entry["path"], local_files_only=True)
        if isinstance(module, Transformer):
            check_tokenizer_fits(module.tokenizer, module.auto_model, folder / entry["path"])
            setting_file = folder / entry["path"] / module.config_file_name
            check_max_seq_length(module.max_seq_length, module.auto_model.config, setting_file)
        modules[entry["name"]] = module
    settings = read_model_settings(folder)
    model = SentenceTransformer(modules=modules, device=device, **settings)
    model.module_kwargs = OrderedDict((e["name"], e.get("kwargs", [])) for e in entries)
    return model


def read_modules_json(folder: Path) -> list[dict[str, Any]]:
    """modules.json's entries, checked: each has a name, a type and a path inside ``folder``."""
    if not folder.is_dir():
        raise UserFileNotFoundError(f"{folder} is not a folder; give the folder an export was written to")
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        raise UserFileNotFoundError(
            f"{folder} has no modules.json, so it is not a sentence-transformers model (or the export is "
            f"incomplete): export it again"
        )
    try:
        entries = json.loads(modules_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserValueError(f"{modules_file} is not valid JSON ({error}); export the model again") from error
    if not isinstance(entries, list) or not entries:
        raise UserValueError(f"{modules_file} must list the model's modules; found {entries!r}")
    for entry in entries:
        missing = [key for key in ("name", "type", "path") if key not in entry]
        if missing:
            raise UserValueError(f"{modules_file}: module entry {entry} lacks {missing}")
        check_inside(folder, entry["path"], modules_file)
    check_model_folder(folder)  # symlinks, config paths and code references that leave the folder
    return entries


def check_head_fits_backbone(head_folder: Path, transformer: Transformer) -> None:
    """The saved head's hidden size and layers against the backbone's, before the head is built."""
    config_file = head_folder / CONFIG_FILE
    if not config_file.is_file():
        return  # PoolheadPooling.load says the export is incomplete
    try:
        pooler_config = json.loads(config_file.read_text(encoding="utf-8")).get("pooler_config")
    except (json.JSONDecodeError, AttributeError) as error:
        raise UserValueError(f"{config_file} is not a JSON object ({error}); export the model again") from None
    if not isinstance(pooler_config, dict):
        return  # PoolheadPooling.load names the missing pooler_config
    try:
        with torch.device("meta"):  # sizes only: the config may describe a head of terabytes
            head = pooler_from_config(pooler_config)
    except (TypeError, RuntimeError):
        return  # PoolheadPooling.load names the config that describes no valid head
    hidden_size = transformer.get_embedding_dimension()
    if head.hidden_size not in (None, hidden_size):
        raise UserValueError(
            f"{config_file} sets the head's hidden_size to {head.hidden_size} but the backbone's hidden size is "
            f"{hidden_size}: set hidden_size: {hidden_size}, or export the model again"
        )
    num_hidden_states = transformer.auto_model.config.num_hidden_layers + 1
    try:
        head.layer_indices(num_hidden_states)
    except UserValueError as error:
        raise UserValueError(f"{config_file}: {error}") from None


def check_inside(folder: Path, relative: str, source: Path) -> None:
    """Refuse absolute paths and '..': a model folder may not read files outside itself."""
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.anchor or ".." in posix.parts or ".." in windows.parts:
        raise UserValueError(
            f"{source} points outside its folder (path {relative!r}); refusing to load it: module paths "
            f"must be relative paths inside {folder}"
        )


def installed_module_class(type_name: str, folder: Path) -> type:
    if type_name in POOLHEAD_TYPES:
        return PoolheadPooling
    if type_name.startswith("sentence_transformers."):
        return import_from_string(type_name)
    raise UserValueError(
        f"{folder}/modules.json names module type {type_name!r}, which is neither sentence-transformers' "
        f"nor poolhead's; poolhead.load runs no code from the folder: use "
        f"SentenceTransformer({str(folder)!r}, trust_remote_code=True) if you trust it"
    )


def read_model_settings(folder: Path) -> dict[str, Any]:
    """Prompts and similarity function from config_sentence_transformers.json, if present."""
    config_file = folder / "config_sentence_transformers.json"
    if not config_file.is_file():
        return {}
    config = json.loads(config_file.read_text(encoding="utf-8"))
    keys = ("prompts", "default_prompt_name", "similarity_fn_name")
    return {key: config[key] for key in keys if config.get(key) is not None}


def with_pooler(
    model: str | Path | SentenceTransformer, pooler: str | dict | Pooler, *, normalize: bool | None = None
) -> SentenceTransformer:
    """An existing sentence-transformers model with its pooling replaced by a poolhead pooler.

    Args:
        model: a SentenceTransformer or its folder (loaded with ``trust_remote_code=False``).
            Its Transformer module is reused, not copied, and is switched to return every
            hidden state when the pooler reads layers.
        pooler: strategy name, config dict or ``Pooler`` (copied into the new model).
        normalize: add (True) or drop (False) a final Normalize; None keeps the model's choice.

    Modules after the pooling stage (Dense, Normalize) are kept. Save the result with
    ``poolhead.export.save_sentence_transformer(model, out_dir)`` for a folder that loads
    where poolhead is not installed (``model.save`` refers to poolhead's installed class).
    """
    if not isinstance(model, SentenceTransformer):
        if Path(model).is_dir():
            check_model_folder(model)
        model = SentenceTransformer(str(model))
    modules = list(model)
    transformer = modules[0]
    if not isinstance(transformer, Transformer):
        raise UserValueError(
            f"with_pooler needs a model whose first module is a Transformer; got {type(transformer).__name__}"
        )
    rest = modules[1:]
    pooling = [i for i, m in enumerate(rest) if type(m).__name__ in POOLING_CLASS_NAMES]
    start, stop = (pooling[0], pooling[-1] + 1) if pooling else (0, 0)
    hidden_size = transformer.get_embedding_dimension()
    pooler = resolve_pooler(pooler, hidden_size)
    num_hidden_states = transformer.auto_model.config.num_hidden_layers + 1
    new_pooling = sentence_transformers_pooling(pooler, num_hidden_states)
    after = [m for m in rest[stop:] if not isinstance(m, Normalize)]
    check_dimension_fits(new_pooling[-1].get_embedding_dimension(), after)
    wants_normalize = any(isinstance(m, Normalize) for m in rest) if normalize is None else normalize
    if pooler.needs_hidden_states:
        transformer.auto_model.config.output_hidden_states = True
    new_modules = [transformer, *rest[:start], *new_pooling, *after, *([Normalize()] if wants_normalize else [])]
    return SentenceTransformer(modules=new_modules, device=str(model.device), **model_settings(model))


def check_dimension_fits(dimension: int, after: list[Any]) -> None:
    if after and hasattr(after[0], "in_features") and after[0].in_features != dimension:
        raise UserValueError(
            f"the new pooler gives {dimension}-dim embeddings but the model's next module "
            f"({type(after[0]).__name__}) takes {after[0].in_features}: choose a pooler with that output size"
        )


def model_settings(model: SentenceTransformer) -> dict[str, Any]:
    return {
        "prompts": model.prompts,
        "default_prompt_name": model.default_prompt_name,
        "similarity_fn_name": model.similarity_fn_name,
    }
