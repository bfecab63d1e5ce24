"""A fine-tune's record set beside sentence-transformers' fine-tunes recorded with another config.

    python scripts/versus_recorded_reference.py suite_minilm_mean_finetune_negation \\
        --reference-record suite_minilm_mean_finetune_stsb

``reproduce_results.py --versus-st`` pairs each seed with sentence-transformers' own fine-tune of the same
backbone, seed and epochs, and bootstraps the Δ: about 20 min per reference on a 2-core CPU. When a record
already holds those references (``--reference-record``, made with ``--versus-st``), this reads their scores
from it (each set's score less its Δ to the reference) and sets the record's scores beside them, seed by
seed. Same seeds, backbone, epochs and test sets, but not paired: no bootstrap interval, only the spread
over seeds. The record's config must train with the reference's data and epochs for the Δ to mean what
``--versus-st`` would; this script checks only the seeds and sets. Writes the record ``versus_st_NAME``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import record  # noqa: E402
from harness.results_page import RECORDS  # noqa: E402
from suite_table import mean_std, signed_mean_std  # noqa: E402

MACRO = ["sts12", "sts13", "sts14", "sts15", "sts16"]  # a record keeps no macro_sets: the suite's score sets
SETS = ["stsb", *MACRO, "msrp"]


def load(name: str) -> dict:
    path = RECORDS / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"no record {name!r} in {RECORDS}: run the command that makes it first")
    return json.loads(path.read_text(encoding="utf-8"))


def reference_scores(reference: dict, name: str) -> dict[str, list[float]]:
    """Set -> per seed, the sentence-transformers fine-tune's score (score less its Δ to it)."""
    sets = reference["data"]["sets"]
    if any("versus_reference" not in sets.get(s, {}) for s in SETS):
        raise SystemExit(f"record {name!r} has no sentence-transformers references: make it with --versus-st")
    return {s: [score - delta for score, delta in zip(sets[s]["score"], sets[s]["versus_reference"], strict=True)]
            for s in SETS}  # fmt: skip


def table(scores: dict[str, list[float]], references: dict[str, list[float]]) -> tuple[str, dict]:
    """A row per set and the macro: the reference, the model and their Δ, each mean ± std over seeds."""
    lines = ["| set | sentence-transformers fine-tune | model | Δ |", "|---|---|---|---|"]
    data = {}
    for name in [*SETS, "macro"]:
        if name == "macro":
            ours = [statistics.fmean(values) for values in zip(*(scores[s] for s in MACRO), strict=True)]
            theirs = [statistics.fmean(values) for values in zip(*(references[s] for s in MACRO), strict=True)]
        else:
            ours, theirs = scores[name], references[name]
        deltas = [a - b for a, b in zip(ours, theirs, strict=True)]
        data[name] = {"score": ours, "reference": theirs, "delta": deltas}
        label = f"macro ({', '.join(MACRO)})" if name == "macro" else name
        lines.append(f"| {label} | {mean_std(theirs)} | {mean_std(ours)} | {signed_mean_std(deltas)} |")
    return "\n".join(lines), data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the record set beside the references (suite_CONFIG)")
    parser.add_argument("--reference-record", required=True, help="a record made with --versus-st")
    args = parser.parse_args()
    mine, reference = load(args.name), load(args.reference_record)
    if mine["data"]["models"] != reference["data"]["models"]:
        raise SystemExit(
            f"{args.name} has models {mine['data']['models']} and {args.reference_record} "
            f"{reference['data']['models']}: the references pair by seed, so the seeds must be the same"
        )
    missing = [s for s in SETS if s not in mine["data"]["sets"]]
    if missing:
        raise SystemExit(f"record {args.name!r} has no {', '.join(missing)}: compare it with --suite ood")
    scores = {s: mine["data"]["sets"][s]["score"] for s in SETS}
    body, data = table(scores, reference_scores(reference, args.reference_record))
    seeds = len(mine["data"]["models"])
    body += (
        f"\n\nMean ± std over {seeds} seeds; ×100 (Spearman; MSRP accuracy). The model: record `{args.name}`; "
        f"sentence-transformers' own fine-tune of the same backbone, seed and epochs: the references of "
        f"`{args.reference_record}` (score less its Δ to the reference). Δ per seed, then averaged: the "
        "same seeds and test sets, not paired, so no bootstrap interval (`reproduce_results.py --versus-st` "
        "gives the paired one)."
    )
    command = ["python", "scripts/versus_recorded_reference.py", args.name]
    command += ["--reference-record", args.reference_record]
    title = f"{args.name.removeprefix('suite_')} against sentence-transformers' fine-tune (recorded references)"
    record(f"versus_st_{args.name.removeprefix('suite_')}", title, body, command=shlex.join(command), data=data)
    print(body)


if __name__ == "__main__":
    main()
