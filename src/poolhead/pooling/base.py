"""The one interface every pooler shares, fixed or learned.

A pooler maps token embeddings ``(B, T, H)`` and an attention mask ``(B, T)`` to one
vector per text ``(B, D)``. Poolers that read more than the last layer declare which
layers they read (``layers``) and receive the backbone's per-layer hidden states.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .errors import UserValueError

# Accumulate reductions in float32: summing hundreds of bf16 tokens loses ~3 digits.
ACCUMULATION_DTYPE = torch.float32

HiddenStates = Sequence[Tensor | None]


class Pooler(nn.Module):
    """Base class of all poolers.

    Subclasses implement :meth:`pool` on validated inputs. ``layers`` is ``None`` for a
    pooler that reads only the last layer, else the indices into the backbone's
    ``hidden_states`` tuple that it reads (0 is the embedding layer, -1 the last layer).
    """

    #: Stable public name used by the registry, configs and exports.
    name: str = ""
    layers: tuple[int, ...] | None = None
    #: Constructor arguments ``get_config()`` saves (attribute ``key``, or ``_key`` where ``key`` is derived).
    config_keys: tuple[str, ...] = ("hidden_size",)

    def __init__(self, hidden_size: int | None = None) -> None:
        super().__init__()
        self.hidden_size = hidden_size

    @property
    def needs_hidden_states(self) -> bool:
        return self.layers is not None

    @property
    def output_dim(self) -> int:
        if self.hidden_size is None:
            raise UserValueError(
                f"{type(self).__name__}.output_dim is unknown because hidden_size was not given; "
                f"build it with hidden_size=<the backbone's hidden size>"
            )
        return self.hidden_size * self.output_multiplier

    #: output_dim / hidden_size; 2 for concatenations such as mean_max.
    output_multiplier: int = 1

    def get_config(self) -> dict:
        """JSON-able ``{"name": ..., **kwargs}`` from which ``build_pooler`` rebuilds this pooler."""
        config = {"name": self.name}
        for key in self.config_keys:
            value = getattr(self, f"_{key}", getattr(self, key))
            # JSON-able: an inner pooler as its own config, a tuple as a list.
            value = value.get_config() if isinstance(value, Pooler) else value
            config[key] = list(value) if isinstance(value, tuple) else value
        return config

    def layer_indices(self, num_hidden_states: int) -> list[int]:
        """Absolute indices into a ``hidden_states`` tuple of this length that are read."""
        if self.layers is None:
            return []
        resolved = [i + num_hidden_states if i < 0 else i for i in self.layers]
        bad = [i for i, r in zip(self.layers, resolved, strict=False) if not 0 <= r < num_hidden_states]
        if bad:
            raise UserValueError(
                f"{type(self).__name__} reads layers {list(self.layers)} but the backbone gives "
                f"{num_hidden_states} hidden states (embeddings + {num_hidden_states - 1} layers); "
                f"layer(s) {bad} do not exist: choose layers within that range"
            )
        return resolved

    def forward(
        self,
        token_embeddings: Tensor,
        attention_mask: Tensor | None = None,
        hidden_states: HiddenStates | None = None,
    ) -> Tensor:
        attention_mask = check_inputs(self, token_embeddings, attention_mask)
        if self.needs_hidden_states:
            if hidden_states is None:
                raise ValueError(
                    f"pooler '{self.name}' reads layers {list(self.layers)} but was given no "
                    f"hidden_states: run the backbone with output_hidden_states=True and pass "
                    f"outputs.hidden_states"
                )
            selected = [hidden_states[i] for i in self.layer_indices(len(hidden_states))]
            if any(h is None for h in selected):
                raise ValueError(f"pooler '{self.name}' needs layers {list(self.layers)}; some were not provided")
            bad_shapes = [tuple(h.shape) for h in selected if h.shape != token_embeddings.shape]
            if bad_shapes:
                raise ValueError(
                    f"pooler '{self.name}' got hidden_states of shape(s) {bad_shapes} but token embeddings of "
                    f"shape {tuple(token_embeddings.shape)}: pass the hidden_states of the same forward pass"
                )
            return self.pool_layers(selected, attention_mask)
        return self.pool(token_embeddings, attention_mask)

    def pool(self, token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
        raise NotImplementedError

    def training_penalty(self) -> Tensor | None:
        """The penalty this head (and the heads inside it) adds to the training loss for the forward
        passes since the last call, or None; reading it starts the next sum from zero."""
        penalties = [child.training_penalty() for child in self.children() if isinstance(child, Pooler)]
        penalties = [p for p in penalties if p is not None]
        return sum(penalties[1:], penalties[0]) if penalties else None

    def pool_layers(self, layers: list[Tensor], attention_mask: Tensor) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        # The inner pooler of a composition prints itself, as a child module.
        return ", ".join(f"{key}={value}" for key, value in self.get_config().items() if key not in ("name", "inner"))


def check_inputs(pooler: Pooler, token_embeddings: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Validate shapes and return a boolean (B, T) mask."""
    if token_embeddings.dim() != 3:
        raise ValueError(
            f"token_embeddings must be (batch, tokens, hidden), got shape {tuple(token_embeddings.shape)}; "
            f"for a single text add a batch dimension with .unsqueeze(0)"
        )
    B, T, H = token_embeddings.shape
    if pooler.hidden_size is not None and H != pooler.hidden_size:
        raise ValueError(
            f"pooler '{pooler.name}' was built for hidden size {pooler.hidden_size} but got token "
            f"embeddings of hidden size {H}: build it with hidden_size={H}"
        )
    if attention_mask is None:
        return torch.ones(B, T, dtype=torch.bool, device=token_embeddings.device)
    if tuple(attention_mask.shape) != (B, T):
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)} but token_embeddings have "
            f"(batch, tokens) = {(B, T)}: pass the mask the tokenizer returned with these inputs"
        )
    if attention_mask.dtype != torch.bool and not is_tracing():
        check_binary_mask(attention_mask)
    return attention_mask.to(device=token_embeddings.device, dtype=torch.bool)


def is_tracing() -> bool:
    """True under torch.export / torch.compile, which cannot trace a check on tensor values (an ONNX
    graph gets its mask from the tokenizer, 0/1 by construction)."""
    compiler = getattr(torch, "compiler", None)  # older torch has no torch.compiler
    return any(getattr(compiler, name, lambda: False)() for name in ("is_compiling", "is_exporting"))


def check_binary_mask(attention_mask: Tensor) -> None:
    """Refuse masks other than 0/1: turning an additive 0/-10000 mask into booleans keeps exactly the padding."""
    other = attention_mask[(attention_mask != 0) & (attention_mask != 1)]
    if other.numel():
        raise UserValueError(
            f"attention_mask holds values other than 0 and 1 (e.g. {other[0].item():g}): it looks like an additive "
            f"mask (0 = token, a large negative number = padding); pass the tokenizer's 0/1 mask instead, e.g. "
            f"(mask == 0).long() for an additive one"
        )


def has_tokens(attention_mask: Tensor) -> Tensor:
    """(B, 1) boolean: rows with at least one real token."""
    return attention_mask.any(dim=1, keepdim=True)


def zero_padding(token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
    """The embeddings with every padding position set to 0.

    Selecting with the mask, not multiplying by it: a backbone can leave NaN or inf at
    masked positions (fully masked attention rows, fp16 overflow) and ``NaN * 0`` is NaN.
    """
    return token_embeddings.masked_fill(~attention_mask.unsqueeze(-1), 0.0)


def masked_mean(token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean over real tokens in float32; an empty row gives a zero vector."""
    counts = attention_mask.sum(dim=1, keepdim=True).to(ACCUMULATION_DTYPE)
    summed = zero_padding(token_embeddings.to(ACCUMULATION_DTYPE), attention_mask).sum(dim=1)
    return summed / counts.clamp(min=1.0)
