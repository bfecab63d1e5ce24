"""Sentences per second of one export through torch, onnxruntime and OpenVINO, on the same texts.

Run through ``python scripts/bench_encode.py --backend torch onnx openvino`` (see its help).
All-MiniLM-L6-v2 is exported with a poolhead head (``--pooler``, untrained: it costs what a
trained one costs) and a Normalize, and its ONNX graph is written (``export_onnx``). Each
backend encodes the same texts with the same batch size on the CPU with ``--threads`` threads
(torch threads, onnxruntime intra-op threads, OpenVINO inference threads); the tokenizer's
time counts for each. Repeats are interleaved (harness.interleaved), rotating which backend goes
first; each run is timed in wall-clock and in CPU seconds of this process (every thread of every
runtime counts). On a shared machine the wall-clock also counts the time other processes held the
cores; the CPU seconds count only the work, so the speed-up is judged on both.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from harness import interleaved, per_repeat_ratios

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
        runs = {b: (lambda b=b: encode(models[b], b, texts, args.batch_size)) for b in models}
        times = interleaved(runs, args.repeats)
    reference = outputs.get("torch")
    data = {
        "texts": len(texts),
        "unique_texts": len(set(texts)),
        "pooler": args.pooler,
        "batch_size": args.batch_size,
        "threads": args.threads,
        **times,
        "max_abs_difference_to_torch_on_64_texts": {
            b: float(np.abs(out - reference).max()) for b, out in outputs.items() if reference is not None
        },
    }
    return backends_table(data), data


def speed_up(data: dict, key: str, backend: str) -> list[float]:
    """torch's seconds / the backend's, per repeat."""
    return per_repeat_ratios(data[key], "torch", backend)


def backends_table(data: dict) -> str:
    seconds, cpu = data["seconds"], data["cpu_seconds"]
    lines = [
        f"{data['texts']} STS-B sentences ({data['unique_texts']} unique), all-MiniLM-L6-v2 + `{data['pooler']}` "
        f"head + Normalize, batch {data['batch_size']}, CPU, {data['threads'] or 'default'} thread(s), "
        f"{len(next(iter(seconds.values())))} interleaved runs each. × torch: the median over repeats of "
        "torch's time / the backend's time in that repeat, in wall-clock and in CPU seconds of the process.",
        "",
        "| backend | median wall s | median CPU s | sentences/s (wall) | × torch (wall) | × torch (CPU) "
        "| max abs diff to torch (64 texts) |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend in seconds:
        wall, used = statistics.median(seconds[backend]), statistics.median(cpu[backend])
        ratios = ["–", "–"]
        if "torch" in seconds:
            ratios = [f"{statistics.median(speed_up(data, key, backend)):.2f}" for key in ("seconds", "cpu_seconds")]
        diff = data["max_abs_difference_to_torch_on_64_texts"].get(backend)
        diff_text = f"{diff:.1e}" if diff is not None else "–"
        lines.append(
            f"| {backend} | {wall:.2f} | {used:.2f} | {data['texts'] / wall:.1f} | {ratios[0]} | {ratios[1]} "
            f"| {diff_text} |"
        )
    busy = [w / c for backend in seconds for w, c in zip(seconds[backend], cpu[backend], strict=True)]
    lines += [
        "",
        f"Each run's wall-clock was {min(busy):.1f}–{max(busy):.1f}× its CPU seconds: with one thread, the rest is "
        "time other processes held the core, so on a busy machine the CPU column is the speed-up.",
    ]
    return "\n".join(lines)
