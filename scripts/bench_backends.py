"""Sentences per second of one export through torch, onnxruntime and OpenVINO, on the same texts.

Run through ``python scripts/bench_encode.py --backend torch onnx openvino`` (see its help).
All-MiniLM-L6-v2 is exported with a poolhead head (``--pooler``, untrained: it costs what a
trained one costs) and a Normalize, and its ONNX graph is written (``export_onnx``). Each
backend encodes the same texts with the same batch size on the CPU with ``--threads`` threads
(torch threads, onnxruntime intra-op threads, OpenVINO inference threads); the tokenizer's
time counts for each. Repeats are interleaved, rotating which backend goes first, so drift on
a shared machine hits all alike; the table gives medians.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import poolhead
from poolhead.export import export_sentence_transformer
from poolhead.export.onnx import export_onnx

TITLE = "Encoding backends: torch vs ONNX Runtime vs OpenVINO (one export, CPU)"


def load_model(path: Path, backend: str, threads: int | None):
    if backend == "torch":
        return poolhead.load(path, device="cpu")
    return poolhead.load(path, backend=backend, threads=threads)


def encode(model, backend: str, texts: list[str], batch_size: int) -> np.ndarray:
    if backend == "torch":
        return model.encode(texts, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
    return model.encode(texts, batch_size=batch_size)


def run_backends_bench(args, texts: list[str], backbone: str) -> tuple[str, dict]:
    """Time each of ``args.backend`` on ``texts``; return the markdown table and the raw figures."""
    if args.threads:
        torch.set_num_threads(args.threads)
    options = {"num_heads": args.num_heads} if args.pooler == "attention" else {}
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as folder:
        path = export_sentence_transformer(backbone, {"name": args.pooler, **options}, Path(folder) / "export",
                                           normalize=True)  # fmt: skip
        export_onnx(path)
        models = {backend: load_model(path, backend, args.threads) for backend in args.backend}
        sample = texts[:64]
        outputs = {b: encode(m, b, sample, args.batch_size) for b, m in models.items()}  # also warms up
        seconds: dict[str, list[float]] = {backend: [] for backend in models}
        for repeat in range(args.repeats):
            order = list(models)[repeat % len(models) :] + list(models)[: repeat % len(models)]
            for backend in order:
                started = time.perf_counter()
                encode(models[backend], backend, texts, args.batch_size)
                seconds[backend].append(time.perf_counter() - started)
                print(f"  run {repeat + 1}/{args.repeats} {backend}: {seconds[backend][-1]:.1f} s", flush=True)
    reference = outputs.get("torch")
    data = {
        "texts": len(texts),
        "unique_texts": len(set(texts)),
        "pooler": args.pooler,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "seconds": seconds,
        "sentences_per_s": {b: len(texts) / statistics.median(s) for b, s in seconds.items()},
        "max_abs_difference_to_torch_on_64_texts": {
            b: float(np.abs(out - reference).max()) for b, out in outputs.items() if reference is not None
        },
    }
    return backends_table(data), data


def backends_table(data: dict) -> str:
    speeds = data["sentences_per_s"]
    base = speeds.get("torch")
    lines = [
        f"{data['texts']} STS-B sentences ({data['unique_texts']} unique), all-MiniLM-L6-v2 + `{data['pooler']}` "
        f"head + Normalize, batch {data['batch_size']}, CPU, {data['threads'] or 'default'} thread(s), "
        f"median of {len(next(iter(data['seconds'].values())))} interleaved runs each.",
        "",
        "| backend | median s | sentences/s | × torch | max abs diff to torch (64 texts) |",
        "|---|---|---|---|---|",
    ]
    for backend, speed in speeds.items():
        ratio = f"{speed / base:.2f}" if base else "–"
        diff = data["max_abs_difference_to_torch_on_64_texts"].get(backend)
        diff_text = f"{diff:.1e}" if diff is not None else "–"
        lines.append(
            f"| {backend} | {statistics.median(data['seconds'][backend]):.2f} | {speed:.1f} | {ratio} | {diff_text} |"
        )
    return "\n".join(lines)
