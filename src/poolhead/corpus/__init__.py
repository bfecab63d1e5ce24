"""Corpus encoding: every text of a file or hub dataset to an embedding, on Lightning's ``Trainer.predict``.

- :func:`encode_corpus` (``poolhead predict``): the whole job, resumable, split over processes.
- :class:`CorpusTexts`: the texts, read from a memory-mapped Arrow table, planned into shards.
- :class:`CorpusEncoder`: the LightningModule whose ``predict_step`` embeds a batch.
- :class:`EmbeddingShardWriter`: the prediction writer: one file per shard, then a manifest.
"""

from poolhead.corpus.encode import encode_corpus
from poolhead.corpus.model import CorpusEncoder
from poolhead.corpus.texts import CorpusTexts
from poolhead.corpus.writer import EmbeddingShardWriter, read_embeddings

__all__ = ["CorpusEncoder", "CorpusTexts", "EmbeddingShardWriter", "encode_corpus", "read_embeddings"]
