"""PoolheadPooling: any poolhead pooler as a sentence-transformers module.

This file travels inside every export that needs custom code, beside copies of
``poolhead/pooling/*.py``: there it imports them relatively, so
``SentenceTransformer(folder, trust_remote_code=True)`` works where poolhead is not
installed. Inside the installed package it imports poolhead's own pooling. It may import
only torch, safetensors, sentence-transformers and the pooling files.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from sentence_transformers.base.modules.module import Module
from torch import Tensor

try:
    # Inside an exported folder. transformers copies into its module cache only the files
    # named on "from .x import" lines (recursively); registry.py reaches fixed.py through
    # "from . import fixed", which it does not see, so fixed.py is named here.
    from .base import Pooler
    from .errors import UserValueError
    from .fixed import MeanPooling  # noqa: F401
    from .registry import pooler_from_config
except ImportError:
    if __package__ != "poolhead.export":
        raise  # a copied pooling file is missing or broken: say so, do not mask it
    from poolhead.pooling.base import Pooler
    from poolhead.pooling.errors import UserValueError
    from poolhead.pooling.registry import pooler_from_config

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: Version of the saved config's layout, so a later option rename can still read exports written
#: before it; exports without one were written before versioning and read as version 1.
FORMAT_VERSION = 1


class PoolheadPooling(Module):
    """Token embeddings (and, for layer-reading heads, all hidden states) -> sentence embedding.

    Args:
        pooler: a poolhead ``Pooler``, or its ``get_config()`` dict (then built with fresh
            weights; ``load`` fills in the saved ones).
        embedding_dimension: size of the sentence embedding; default ``pooler.output_dim``.

    Saved as ``config.json`` (``format_version``, ``pooler_config``, ``embedding_dimension``) plus the
    pooler's weights in ``model.safetensors``, and rebuilt from those two files only.
    """

    config_keys: list[str] = ["format_version", "pooler_config", "embedding_dimension"]
    format_version = FORMAT_VERSION

    def __init__(self, pooler: Pooler | dict[str, Any], embedding_dimension: int | None = None) -> None:
        super().__init__()
        self.pooler = pooler_from_config(pooler) if isinstance(pooler, dict) else pooler
        self.embedding_dimension = embedding_dimension or self.pooler.output_dim

    @property
    def pooler_config(self) -> dict[str, Any]:
        return self.pooler.get_config()

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        token_embeddings, attention_mask, hidden_states = padded_features(features)
        if self.pooler.needs_hidden_states and hidden_states is None:
            raise ValueError(
                f"pooler '{self.pooler.name}' reads layers {list(self.pooler.layers)} but the Transformer "
                f'module gave no all_layer_embeddings: set "output_hidden_states": true in the '
                f"backbone's config.json (poolhead's export does this)"
            )
        if not self.pooler.needs_hidden_states:
            hidden_states = None
        features["sentence_embedding"] = self.pooler(token_embeddings, attention_mask, hidden_states=hidden_states)
        return features

    def get_embedding_dimension(self) -> int:
        return self.embedding_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        # Always safetensors, whatever safe_serialization says: loading never unpickles.
        self.save_config(output_path)
        save_model(self.pooler, os.path.join(output_path, WEIGHTS_FILE))

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs: Any,
    ) -> PoolheadPooling:
        hub = {"subfolder": subfolder, "token": token, "cache_folder": cache_folder, "revision": revision,
               "local_files_only": local_files_only}  # fmt: skip
        where = f"{model_name_or_path}/{subfolder}".rstrip("/")
        config_path = cls.load_file_path(model_name_or_path, CONFIG_FILE, **hub)
        if config_path is None:
            raise FileNotFoundError(
                f"{where}/{CONFIG_FILE} is missing: it holds the pooling config (pooler_config); "
                f"the export is incomplete, export the model again"
            )
        with open(config_path, encoding="utf-8") as file:
            config = json.load(file)
        if "pooler_config" not in config:
            raise ValueError(f"{where}/{CONFIG_FILE} has no 'pooler_config'; export the model again") from None
        version = config.get("format_version", 1)
        if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise ValueError(
                f"{where}/{CONFIG_FILE} has format_version {version!r}, but this poolhead reads versions 1 to "
                f"{FORMAT_VERSION}; upgrade poolhead (pip install -U poolhead) to load it"
            )
        weights_path = cls.load_file_path(model_name_or_path, WEIGHTS_FILE, **hub)
        if weights_path is None:
            raise FileNotFoundError(
                f"{where}/{WEIGHTS_FILE} is missing: it holds the pooling weights (only safetensors is "
                f"read); the export is incomplete, export the model again"
            )
        check_saved_weights(config["pooler_config"], weights_path, where)
        module = cls(config["pooler_config"], config.get("embedding_dimension"))
        load_model(module.pooler, weights_path, strict=True)
        return module


def check_saved_weights(pooler_config: dict[str, Any], weights_path: str, where: str) -> None:
    """Refuse weights whose names or shapes differ from the head ``pooler_config`` describes.

    Both sides are read without allocating: the head is built on the meta device and the weights'
    shapes come from the safetensors header, so a config with ``hidden_size`` 10^6 (a head of
    terabytes) is refused in one sentence instead of exhausting memory.
    """
    try:
        with torch.device("meta"):
            expected = {name: tuple(t.shape) for name, t in pooler_from_config(pooler_config).state_dict().items()}
    except (TypeError, RuntimeError) as error:  # e.g. a negative or non-integer size
        raise UserValueError(
            f"{where}/{CONFIG_FILE}: pooler_config {pooler_config} describes no valid head ({error}); "
            f"export the model again"
        ) from None
    try:
        with safe_open(weights_path, framework="pt") as weights:
            found = {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as error:
        message = f"{weights_path} is not a readable safetensors file ({error}); export the model again"
        raise UserValueError(message) from None
    wrong = [f"{name} has shape {found[name]}, expected {shape}" for name, shape in expected.items()
             if name in found and found[name] != shape]  # fmt: skip
    wrong += [f"{name} is missing" for name in expected if name not in found]
    wrong += [f"{name} is not a weight of this head" for name in found if name not in expected]
    if wrong:
        raise UserValueError(
            f"{weights_path} does not hold the weights of the head in {where}/{CONFIG_FILE} "
            f"({pooler_config.get('name')!r}, hidden_size {pooler_config.get('hidden_size')}): {wrong[0]}; "
            f"export the model again, or fix hidden_size in {CONFIG_FILE}"
        )


def padded_features(features: dict[str, Any]) -> tuple[Tensor, Tensor | None, list[Tensor] | None]:
    """Token embeddings (B, T, H), attention mask and hidden states as the pooler expects them.

    With flash attention, sentence-transformers may pack a batch into one row of
    ``sum(lengths)`` tokens with boundaries ``cu_seq_lens_q``; pooling that row would mix
    the texts, so it is unpacked into a padded batch first.
    """
    tokens = features["token_embeddings"]
    layers = features.get("all_layer_embeddings")
    if "cu_seq_lens_q" not in features:
        return tokens, features.get("attention_mask"), layers
    bounds = features["cu_seq_lens_q"].to(tokens.device)
    lengths = bounds[1:] - bounds[:-1]
    mask = torch.arange(int(lengths.max()), device=tokens.device) < lengths.unsqueeze(1)

    def unpack(packed: Tensor) -> Tensor:
        padded = packed.new_zeros(*mask.shape, packed.shape[-1])
        padded[mask] = packed.reshape(-1, packed.shape[-1])[: int(bounds[-1])]
        return padded

    return unpack(tokens), mask, None if layers is None else [unpack(layer) for layer in layers]
