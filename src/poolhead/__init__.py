"""poolhead: sentence embeddings from token embeddings, with fixed and learned pooling."""

from poolhead.encoder import Encoder
from poolhead.functional import cosine_similarity, embedding_pooling, euclidean_distance, pool, show_tokenization
from poolhead.pooling import *  # noqa: F403
from poolhead.pooling import __all__ as _pooling_all

__version__ = "0.1.0"

# Training, export and evaluation pull in Lightning and sentence-transformers (seconds of
# import time); they load on first use so `import poolhead` stays as light as the notebook needs.
_LAZY = {
    "PoolingModule": "poolhead.training.module",
    "SentencePairDataModule": "poolhead.data",
    "load": ("poolhead.export", "load_sentence_transformer"),
    "export_checkpoint": "poolhead.export",
    "export_sentence_transformer": "poolhead.export",
    "with_pooler": "poolhead.export",
    "compare": "poolhead.evaluation",
    "inspect_text": "poolhead.evaluation",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'poolhead' has no attribute {name!r}")
    import importlib

    target = _LAZY[name]
    module_name, attribute = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


__all__ = [
    "Encoder",
    "cosine_similarity",
    "embedding_pooling",
    "euclidean_distance",
    "pool",
    "show_tokenization",
    # Not the lazy names: `from poolhead import *` would import Lightning and sentence-transformers.
    *_pooling_all,
]
