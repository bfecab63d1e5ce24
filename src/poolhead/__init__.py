"""poolhead: sentence embeddings from token embeddings, with fixed and learned pooling."""

from poolhead.encoder import Encoder
from poolhead.functional import cosine_similarity, embedding_pooling, euclidean_distance, pool, show_tokenization
from poolhead.pooling import *  # noqa: F403
from poolhead.pooling import __all__ as _pooling_all

__version__ = "0.1.0"

__all__ = [
    "Encoder",
    "cosine_similarity",
    "embedding_pooling",
    "euclidean_distance",
    "pool",
    "show_tokenization",
    *_pooling_all,
]
