"""To and from sentence-transformers.

- :func:`export_sentence_transformer`: backbone + pooler -> a sentence-transformers folder.
- :func:`export_checkpoint`: a trained ``PoolingModule`` checkpoint -> the same.
- :func:`load_sentence_transformer` (``poolhead.load``): an export -> SentenceTransformer, with
  poolhead's installed code only.
- :func:`with_pooler`: an existing SentenceTransformer with its pooling replaced by a poolhead pooler.
- :func:`to_sentence_transformer` / :func:`save_sentence_transformer`: the two halves of an export.
"""

from poolhead.export.checkpoint import checkpoint_metadata, export_checkpoint
from poolhead.export.loading import load_sentence_transformer, with_pooler
from poolhead.export.st_module import PoolheadPooling
from poolhead.export.writer import export_sentence_transformer, save_sentence_transformer, to_sentence_transformer

__all__ = [
    "PoolheadPooling",
    "checkpoint_metadata",
    "export_checkpoint",
    "export_sentence_transformer",
    "load_sentence_transformer",
    "save_sentence_transformer",
    "to_sentence_transformer",
    "with_pooler",
]
