"""Choose a negation recipe on held-out validation data, never on a test split.

    python scripts/select_negation.py                               # the frozen candidates, seed 0
    python scripts/select_negation.py --configs minilm_interaction_negation --seeds 0 1 2

For every config and seed: ``poolhead fit --config C --seed_everything S --data.seed S`` and ``poolhead
export`` of its best checkpoint, then one ``poolhead compare`` per config of its seeds' models
(``scripts/reproduce_results.py``'s steps and folders: ``reproduce_results.py --output reports/negation
--data DATA_ROOT/stsb --data reports/held_out/stsb-validation --data reports/held_out/semantoneg-validation``
reuses the fits and exports; a comparison only where the seeds match, as ``reproduce_results`` compares a
frozen head's seeds with their soup: each script redoes, in the same folder, a comparison of other models)
on two held-out validation sets,

- ``semantoneg-validation``: SemAntoNeg's validation premises (pairwise accuracy: per premise, the share
  of (paraphrase, negation) pairs in which the paraphrase is the closer one);
- ``stsb-validation``: STS-B's validation pairs (Spearman);

and, for the record only, on STS-B test and the suite (sts12-16, MSRP, SemAntoNeg test). The pick is the
config with the best mean of the two validation figures (mean over seeds); the test columns stand beside
it and choose nothing. The table is the record ``negation_selection`` of docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import add_data_root, record, validation_as_evaluation  # noqa: E402
from reproduce_results import compared, fitted_model  # noqa: E402
from suite_table import mean_std, signed_mean_std  # noqa: E402

from poolhead.configs import config_path  # noqa: E402

CANDIDATES = [
    "minilm_attention_negation",
    "minilm_projected_negation",
    "minilm_projected_mild_negation",
    "minilm_projected_free_negation",
]
HELD_OUT = {"stsb-validation": "stsb", "semantoneg-validation": "semantoneg"}
HELD_OUT_FOLDER = Path("reports/held_out")


def held_out_sets(data_root: str, out: Path) -> list[Path]:
    """The validation splits the recipe is chosen on, as evaluation folders."""
    return [validation_as_evaluation(data_root, source, out / name) for name, source in HELD_OUT.items()]


def figure(values: list[float], signed: bool = False) -> str:
    """Mean ± std over seeds; one seed's figure alone (it has no spread)."""
    if len(values) == 1:
        return f"{values[0]:+.2f}" if signed else f"{values[0]:.2f}"
    return signed_mean_std(values) if signed else mean_std(values)


def table(rows: dict[str, list[dict]], configs: list[str], seeds: list[int], baseline: str) -> str:
    """A row per config (mean ± std over seeds), the frozen backbone's mean pooling, then the pick.

    ``rows``: config -> the rows of its comparison's suite.json, where seed S's model is ``seedS/model``.
    """

    def cell(config: str, dataset: str, key: str = "score") -> list[float]:
        names = [f"seed{seed}/model" for seed in seeds]
        found = rows[config]
        return [next(r[key] for r in found if r["set"] == dataset and r["model"] == name) for name in names]

    headers = ["config", "SemAntoNeg validation pairwise", "STS-B validation", "validation mean",
               "SemAntoNeg test pairwise", "STS-B test", "macro Δ vs mean (sts12–16)", "worst Δ vs mean"]  # fmt: skip
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    held = {}
    for config in configs:
        negation, stsb = cell(config, "semantoneg-validation"), cell(config, "stsb-validation")
        held[config] = [(a + b) / 2 for a, b in zip(negation, stsb, strict=True)]
        sets = [r["set"] for r in rows[config] if r["model"] == f"seed{seeds[0]}/model" and r["task"] == "score"]
        suite = [s for s in sets if s.startswith("sts1")]
        worst = [min(values) for values in zip(*(cell(config, s, "versus_mean_delta") for s in suite), strict=True)]
        lines.append("| " + " | ".join([
            f"`{config}`", figure(negation), figure(stsb), figure(held[config]),
            figure(cell(config, "semantoneg")), figure(cell(config, "stsb")),
            figure(cell(config, "macro", "versus_mean_delta"), signed=True), figure(worst, signed=True),
        ]) + " |")  # fmt: skip
    first = configs[0]
    mean = {d: statistics.fmean(s - v for s, v in zip(cell(first, d), cell(first, d, "versus_mean_delta"), strict=True))
            for d in ("semantoneg-validation", "stsb-validation", "semantoneg", "stsb")}  # fmt: skip
    lines.append("| " + " | ".join([
        f"{baseline} mean pooling (no head)", f"{mean['semantoneg-validation']:.2f}", f"{mean['stsb-validation']:.2f}",
        f"{(mean['semantoneg-validation'] + mean['stsb-validation']) / 2:.2f}", f"{mean['semantoneg']:.2f}",
        f"{mean['stsb']:.2f}", "0", "0",
    ]) + " |")  # fmt: skip
    pick = max(configs, key=lambda c: statistics.fmean(held[c]))
    over = f"{'Mean ± std over seeds' if len(seeds) > 1 else 'Seed'} {' '.join(map(str, seeds))}"
    return "\n".join(lines) + (
        f"\n\n{over}; ×100. The validation mean (SemAntoNeg validation "
        f"pairwise accuracy and STS-B validation Spearman, neither a test split) picks **`{pick}`**. Pairwise "
        "accuracy: per premise, the share of (paraphrase, negation) pairs whose paraphrase is closer by cosine "
        "(chance 50). Δ vs mean: against the same frozen backbone's mean pooling; worst: the lowest of sts12–16."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=CANDIDATES, help="shipped config names or YAML files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--output", default="reports/negation", help="run folders (shared with reproduce_results)")
    add_data_root(parser)
    parser.add_argument("--refit", action="store_true")
    args = parser.parse_args()
    out = Path(args.output)
    held_out = held_out_sets(args.data_root, HELD_OUT_FOLDER)
    data = [str(Path(args.data_root) / "stsb"), *map(str, held_out)]
    rows = {}
    for name in args.configs:
        config = config_path(name) or Path(name)
        root = out / config.stem
        models = [fitted_model(config, seed, root / f"seed{seed}", [], args) for seed in args.seeds]
        # reproduce_results' own comparison folder: reused when it compared exactly these models and sets.
        folder = compared(config, models, root / "compare", "ood", data, args.refit, [])
        rows[config.stem] = json.loads((folder / "suite.json").read_text(encoding="utf-8"))["rows"]
    configs = [Path(name).stem for name in args.configs]
    body = table(rows, configs, args.seeds, "all-MiniLM-L6-v2")
    command = ["python", "scripts/select_negation.py", "--configs", *args.configs, "--seeds", *map(str, args.seeds)]
    record("negation_selection", "Choosing a negation recipe on held-out validation data", body,
           command=shlex.join(command))  # fmt: skip
    print(body)


if __name__ == "__main__":
    main()
