"""``poolhead predict`` against ``SentenceTransformer.encode``: throughput on one process, and peak memory.

Run through ``python scripts/bench_encode.py --predict`` (see its help). Throughput: the same
texts, the same model (all-MiniLM-L6-v2 as shipped, a sentence-transformers folder), the same
batch size, in one process. Each repeat times both methods back to back, alternating which goes
first (AB BA AB ...), so a repeat's ratio cancels the machine's drift between repeats; the verdict
is the median of those ratios, shown with their min-max (use at least 5 repeats). Each run is timed
(harness.interleaved) in wall-clock and in CPU seconds of this process: with one torch thread on a shared machine the
wall-clock also counts the time other processes held the core, the CPU seconds only this work, so
the verdict is on CPU time and the wall-clock ratios are shown beside it. Both are warmed up first
(imports, first allocations). predict's time is the whole ``encode_corpus`` call (loading
the model and the file, building the Trainer, writing the shards), encode's is ``model.encode`` on
a model already loaded. Memory: ``encode_corpus`` of N texts in a fresh process each (harness.run_fresh), its peak
resident memory (VmHWM, reported by that process), with the tiny random BERT (harness.tiny).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

import torch
from harness import interleaved, numbered, per_repeat_ratios, run_fresh
from harness.tiny import tiny_model_folder

TITLE = "Corpus encoding: poolhead predict vs SentenceTransformer.encode"
TARGET_RATIO = 0.95
PREDICT, ENCODE = "poolhead predict", "SentenceTransformer.encode"
CHILD = """
import sys, torch
torch.set_num_threads(1)
from poolhead.corpus import encode_corpus
from harness import report
encode_corpus(sys.argv[1], sys.argv[2], sys.argv[3], batch_size=32, accelerator="cpu", devices=1, progress=False)
report({})
"""


def write_corpus(texts: list[str], path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": texts}), path)
    return path


def predict(model: str, corpus: Path, folder: Path, batch_size: int):
    from poolhead.corpus import encode_corpus

    return lambda: encode_corpus(
        model, str(corpus), folder, batch_size=batch_size, accelerator="cpu", devices=1, progress=False
    )


def throughput(model_path: str, texts: list[str], batch_size: int, repeats: int) -> dict:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as folder:
        out = Path(folder) / "out"
        corpus = write_corpus(texts, Path(folder) / "corpus.parquet")
        runs = {
            PREDICT: predict(model_path, corpus, out, batch_size),
            ENCODE: lambda: model.encode(texts, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True),
        }
        model.encode(texts[:64], batch_size=batch_size)  # warm-up: imports and first allocations, for both
        predict(model_path, write_corpus(texts[:64], Path(folder) / "warm-up.parquet"), Path(folder) / "warm-up",
                batch_size)()  # fmt: skip
        # Without a fresh output folder predict would resume: nothing left to do.
        times = interleaved(runs, repeats, before=lambda name: shutil.rmtree(out, ignore_errors=True))
    median = {name: statistics.median(values) for name, values in times["seconds"].items()}
    return {
        "texts": len(texts),
        **times,
        "sentences_per_s": {name: len(texts) / s for name, s in median.items()},
        "ratio": statistics.median(speed_ratios(times["cpu_seconds"])),
        "wall_ratio": statistics.median(speed_ratios(times["seconds"])),
    }


def speed_ratios(seconds: dict[str, list[float]]) -> list[float]:
    """predict's speed / encode's speed in each repeat (encode's time / predict's time)."""
    return per_repeat_ratios(seconds, ENCODE, PREDICT)


def peak_rss(model_path: str, sizes: list[int], texts: list[str]) -> dict[int, float]:
    """Peak resident MiB of a fresh ``encode_corpus`` process per corpus size."""
    peaks = {}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-predict-rss-") as folder:
            corpus = write_corpus(numbered(texts, size), Path(folder) / "corpus.parquet")
            argv = ["-c", CHILD, model_path, str(corpus), str(Path(folder) / "out")]
            (result,) = run_fresh(argv, f"encode_corpus of {size} texts")
            peaks[size] = result["peak_rss_mib"]
            print(f"  {size} texts: peak {peaks[size]:.0f} MiB, {result['process_s']:.0f} s", flush=True)
    return peaks


def tiny_export(folder: Path) -> str:
    from poolhead.export import export_sentence_transformer

    return str(export_sentence_transformer(tiny_model_folder(folder / "tiny"), "mean", folder / "tiny-export"))


def run_predict_bench(args, texts: list[str], model_path: str) -> tuple[str, dict]:
    """Measure, and return the Markdown body and the data for the results page."""
    torch.set_num_threads(args.threads or 1)
    speed = throughput(model_path, numbered(texts, args.num_texts), args.batch_size, args.repeats)
    with tempfile.TemporaryDirectory(prefix="bench-predict-tiny-") as folder:
        peaks = peak_rss(tiny_export(Path(folder)), args.rss_sizes, texts)
    data = {
        "throughput": speed,
        "peak_rss_mib": peaks,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
    }
    return render_body(data), data


def render_body(data: dict) -> str:
    """The results-page section from the measured data (also re-renders a saved record's data)."""
    speed, peaks = data["throughput"], {int(k): v for k, v in data["peak_rss_mib"].items()}
    wall, cpu = speed_ratios(speed["seconds"]), speed_ratios(speed["cpu_seconds"])
    rows = [
        f"| {name} | {' / '.join(f'{x:.1f}' for x in speed['seconds'][name])} | "
        f"{' / '.join(f'{x:.1f}' for x in speed['cpu_seconds'][name])} | {rate:.1f} |"
        for name, rate in speed["sentences_per_s"].items()
    ]
    verdict = "meets" if statistics.median(cpu) >= TARGET_RATIO else "misses"
    rss_rows = [f"| {size:,} | {peak:.0f} |" for size, peak in peaks.items()]
    return "\n".join(
        [
            f"{speed['texts']:,} distinct STS-B sentences, all-MiniLM-L6-v2, batch {data['batch_size']}, "
            f"{data['threads']} torch thread(s), {len(cpu)} repeats; each repeat runs both back to back, "
            f"alternating which goes first.",
            "",
            "| | wall-clock seconds per repeat | CPU seconds per repeat | sentences/s (median, wall-clock) |",
            "|---|---|---|---|",
            *rows,
            f"| speed ratio predict / encode | {' / '.join(f'{r:.2f}' for r in wall)} | "
            f"{' / '.join(f'{r:.2f}' for r in cpu)} | |",
            "",
            f"poolhead predict does the work at {statistics.median(cpu):.2f}× the speed of "
            f"SentenceTransformer.encode in CPU time (median of the per-repeat ratios, min–max "
            f"{min(cpu):.2f}–{max(cpu):.2f}): {verdict} the ≥ {TARGET_RATIO}× target. In wall-clock time the median "
            f"ratio is {statistics.median(wall):.2f}× (min–max {min(wall):.2f}–{max(wall):.2f}): on a shared machine "
            f"other processes set the wall-clock, while one thread's CPU seconds count only this process's own work. "
            f"predict's time includes loading the model and the file, building the Trainer and writing the shards.",
            "",
            "Peak resident memory of one `encode_corpus` process (tiny random BERT, shards of 100,000 rows; most "
            "of it is the imported libraries):",
            "",
            "| texts | peak RSS (MiB) |",
            "|---|---|",
            *rss_rows,
        ]
    )
