"""bench_scale's data part: what ``SentencePairDataModule.setup("fit")`` costs for 100k and 1M pairs.

Each size is a CSV of synthetic scored pairs (sentence1, sentence2, score in [0, 5], read with
score_scale 5.0) whose sentences are drawn, with repeats, from the same 300k unique sentences
of 5 to 16 common English words and a number; 100k pairs draw about 146k of them, 1M pairs
nearly all. Setup runs in a fresh process per size (tiny random BERT folder's tokenizer, that is
all-MiniLM-L6-v2's WordPiece; max length 128; ``datasets`` cache in a fresh folder, so reading
includes the CSV -> Arrow conversion) and reports its peak RSS, its private (anonymous) memory at
the end, its seconds, and the bytes of the token ids it holds (flat arrays plus offsets).

Target: (peak RSS at 1M - peak RSS at 100k) <= (token-id bytes at 1M - at 100k) + 10 % of peak
RSS at 100k, recorded as (growth - token-id growth) / RSS at 100k <= 0.10. Token ids grow with
the unique sentences, so they are allowed; everything else per pair, and per unique sentence (its
text, its entry in the index of texts), must fit in the 10 %. Peak RSS, not private memory: it
counts the file pages of ``datasets``' memory-mapped tables too, and keeping those out of the
process is part of the job.
"""

from __future__ import annotations

import csv
import os
import random
import time
from pathlib import Path

from harness import report

DATA_SIZES = {"100k": 100_000, "1M": 1_000_000}
UNIQUE_SENTENCES = 300_000
WORDS = (
    "man woman child dog cat plays runs eats reads writes a the in on at with green red blue small large house "
    "street park river city guitar piano ball book table chair window quickly slowly happy sad old new morning "
    "evening night music food water tree car train bus road"
).split()


def synthetic_sentences(count: int) -> list[str]:
    generator = random.Random(0)
    return [" ".join(generator.choices(WORDS, k=generator.randint(5, 16))) + f" number {i}." for i in range(count)]


def write_scored_pairs(folder: Path, pairs: int) -> None:
    """``folder/train.csv``: ``pairs`` pairs drawn with repeats from the UNIQUE_SENTENCES, scores in [0, 5]."""
    texts = synthetic_sentences(UNIQUE_SENTENCES)
    generator = random.Random(1)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", "score"])
        for _ in range(pairs):
            a, b = generator.randrange(UNIQUE_SENTENCES), generator.randrange(UNIQUE_SENTENCES)
            writer.writerow([texts[a], texts[b], f"{generator.uniform(0, 5):.2f}"])


def run_data(work: Path, num_proc: int | None, memory) -> None:
    """Set up the pairs under ``work/pairs`` once and print the measurements (runs in its own process)."""
    os.environ["HF_DATASETS_CACHE"] = str(work / "datasets-cache")  # before datasets is imported
    from poolhead import SentencePairDataModule

    data = SentencePairDataModule(
        str(work / "pairs"), tokenizer=str(work / "tiny"), validation_split=None, score_scale=5.0, num_proc=num_proc
    )
    started = time.perf_counter()
    data.setup("fit")
    seconds = time.perf_counter() - started
    result = {
        "pairs": len(data.pairs["train"]),
        "unique_sentences": len(data.sentences),
        "setup_s": seconds,
        "token_id_mib": data.table.tokens.nbytes / 2**20,
        **memory(),
    }
    report(result, with_peak_memory=False)


def data_part(scratch: Path, launch, tiny: str) -> dict:
    """Write each size's pairs, then measure its setup in a fresh process."""
    results = {}
    for name, count in DATA_SIZES.items():
        work = scratch / f"data-{name}"
        work.mkdir()
        (work / "tiny").symlink_to(tiny)
        write_scored_pairs(work / "pairs", count)
        results[name] = launch("data", work)
        print(f"  data, {name} pairs: {results[name]}", flush=True)
    return results
