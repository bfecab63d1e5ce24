"""LoRA adapters on the backbone through ``peft``: a big backbone fine-tuned by training a few small matrices.

``PoolingModule(..., lora={"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["query", "value"]})``
wraps the backbone in a ``peft`` LoRA model: the backbone's own weights stay frozen, only the
adapters (and the pooling head) train, and a checkpoint stores only those plus the backbone's
fingerprint. ``merged_backbone`` folds the adapters into the weights for a plain export.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn

from poolhead.backbone import Backbone
from poolhead.errors import UserValueError

#: the user's option names -> peft's LoraConfig names
OPTIONS = {
    "r": "r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "target_modules": "target_modules",
    "bias": "bias",
}
ADAPTER_MARK = "lora_"


def lora_config(options: dict[str, Any]):
    """peft's ``LoraConfig`` from the user's options (``r``, ``alpha``, ``dropout``, ``target_modules``, ``bias``)."""
    try:
        from peft import LoraConfig
    except ImportError as error:
        raise UserValueError(
            "lora needs the peft package: pip install 'poolhead[lora]' (or pip install peft)"
        ) from error
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise UserValueError(f"unknown lora option {unknown[0]!r}; choose from {', '.join(OPTIONS)}")
    if int(options.get("r", 8)) < 1:
        raise UserValueError(f"lora r must be a positive rank, got {options['r']}")
    return LoraConfig(**{OPTIONS[key]: value for key, value in options.items()})


def add_adapters(model: nn.Module, options: dict[str, Any]) -> nn.Module:
    """``model`` wrapped with LoRA adapters; every weight but the adapters' is frozen."""
    from peft import get_peft_model

    config = lora_config(options)
    try:
        return get_peft_model(model, config)
    except ValueError as error:  # e.g. target modules that the model does not have
        names = sorted(
            {name.rsplit(".", 1)[-1] for name, child in model.named_modules() if isinstance(child, nn.Linear)}
        )
        raise UserValueError(
            f"lora target_modules {config.target_modules!r} do not fit {type(model).__name__} ({error}); "
            f"its linear layers are named {', '.join(names)}"
        ) from error


def is_adapter_key(key: str) -> bool:
    return ADAPTER_MARK in key


def merged_backbone(backbone: Backbone) -> Backbone:
    """The backbone with its LoRA adapters merged into its weights (a plain Hugging Face model); as is without."""
    if not hasattr(backbone.model, "merge_and_unload"):
        return backbone
    return replace(backbone, model=backbone.model.merge_and_unload())


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
