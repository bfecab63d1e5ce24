"""Choose a negation recipe on held-out validation data, never on a test split.

    python scripts/select_negation.py                               # the frozen candidates, seed 0
    python scripts/select_negation.py --configs minilm_interaction_negation --seeds 0 1 2
    python scripts/select_negation.py --configs minilm_mean_finetune_negation minilm_mean_finetune_negation_light \
        --negation-floor 85 --record negation_finetune_selection

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
config with the best mean of the two validation figures (mean over seeds); with ``--negation-floor F``, the
best STS-B validation among the configs whose SemAntoNeg validation reaches F (the rule for recipes that
all keep the "no" well above chance and differ in what similarity they give up). The test columns stand
beside it and choose nothing. The table is the record ``negation_selection`` of docs/results.md (another
with ``--record``).

A comparison that reproduce_results made of more seeds of the same config, on the same sets, is read
rather than redone: redoing it for fewer seeds would overwrite the 3-seed comparison its record was made
from.

Frozen heads are set beside the frozen backbone's mean pooling (Δ columns). Fine-tuned recipes change the
backbone, so their Δ to their own mean pooling says nothing: their table gives the suite's macro and worst
set as scores, beside the untouched backbone's mean pooling.
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
from reproduce_results import compared, fitted_model, stamped_arguments  # noqa: E402
from suite_table import mean_std, signed_mean_std  # noqa: E402

from poolhead.configs import config_path, merged_settings  # noqa: E402

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


def cell(rows: list[dict], model: str, dataset: str, key: str = "score") -> float:
    return next(r[key] for r in rows if r["set"] == dataset and r["model"] == model)


def suite_sets(rows: list[dict], model: str) -> list[str]:
    """The suite's STS sets (sts12-16): the ones its macro row says it averages."""
    return cell(rows, model, "macro", "macro_sets").split()


def pick(held: dict[str, tuple[list[float], list[float]]], floor: float | None) -> tuple[str, str]:
    """The chosen config and the rule that chose it, from each config's (SemAntoNeg, STS-B) validation figures."""
    rule = "the validation mean (SemAntoNeg validation pairwise accuracy and STS-B validation Spearman)"
    if floor is not None:
        above = [config for config, (negation, _) in held.items() if statistics.fmean(negation) >= floor]
        if above:
            return max(above, key=lambda c: statistics.fmean(held[c][1])), (
                "the best STS-B validation Spearman among the configs whose SemAntoNeg validation pairwise "
                f"accuracy reaches {floor:g}"
            )
        rule += f", as no config reaches {floor:g} on SemAntoNeg validation"
    return max(held, key=lambda c: statistics.fmean(held[c][0] + held[c][1])), rule


def table(
    rows: dict[str, list[dict]], configs: list[str], seeds: list[int], baseline: str,
    finetuned: bool = False, floor: float | None = None,
) -> str:  # fmt: skip
    """A row per config (mean ± std over seeds), the backbone's mean pooling, then the pick.

    ``rows``: config -> the rows of its comparison's suite.json, where seed S's model is ``seedS/model``.
    ``finetuned``: the configs fine-tune the backbone; the suite columns are then scores, not Δs to the
    model's own (fine-tuned) mean pooling, and the baseline is the untouched backbone, the one model of the
    first config's comparison that is none of its seeds (``baseline`` names it in the table).
    """
    names = [f"seed{seed}/model" for seed in seeds]
    first = rows[configs[0]]
    untouched = next((r["model"] for r in first if not r["model"].startswith("seed")), None)
    if finetuned and untouched is None:
        raise SystemExit(f"{configs[0]}'s comparison has no untouched backbone to set the fine-tunes beside")

    def per_seed(config: str, dataset: str, key: str = "score") -> list[float]:
        return [cell(rows[config], name, dataset, key) for name in names]

    suite_columns = ["macro (sts12–16)", "worst of sts12–16"] if finetuned else [
        "macro Δ vs mean (sts12–16)", "worst Δ vs mean"]  # fmt: skip
    headers = ["config", "SemAntoNeg validation pairwise", "STS-B validation", "validation mean",
               "SemAntoNeg test pairwise", "STS-B test", *suite_columns]  # fmt: skip
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    held = {}
    for config in configs:
        negation, stsb = per_seed(config, "semantoneg-validation"), per_seed(config, "stsb-validation")
        held[config] = (negation, stsb)
        suite = suite_sets(rows[config], names[0])
        if finetuned:
            scores = [per_seed(config, s) for s in suite]
            macro = [statistics.fmean(values) for values in zip(*scores, strict=True)]
            worst = [min(values) for values in zip(*scores, strict=True)]
            suite_cells = [figure(macro), figure(worst)]
        else:
            deltas = [per_seed(config, s, "versus_mean_delta") for s in suite]
            worst = [min(values) for values in zip(*deltas, strict=True)]
            macro = per_seed(config, "macro", "versus_mean_delta")
            suite_cells = [figure(macro, signed=True), figure(worst, signed=True)]
        both = [(a + b) / 2 for a, b in zip(negation, stsb, strict=True)]
        lines.append("| " + " | ".join([
            f"`{config}`", figure(negation), figure(stsb), figure(both),
            figure(per_seed(config, "semantoneg")), figure(per_seed(config, "stsb")), *suite_cells,
        ]) + " |")  # fmt: skip

    def mean_pooling(dataset: str) -> float:
        """The baseline's mean pooling: a score less its Δ to mean pooling (the same row, for a fine-tune's
        untouched backbone; a frozen head's Δ is to its own backbone's, which is the untouched one)."""
        if finetuned:
            return cell(first, untouched, dataset) - cell(first, untouched, dataset, "versus_mean_delta")
        scores, deltas = per_seed(configs[0], dataset), per_seed(configs[0], dataset, "versus_mean_delta")
        return statistics.fmean(s - v for s, v in zip(scores, deltas, strict=True))

    mean = {d: mean_pooling(d) for d in ("semantoneg-validation", "stsb-validation", "semantoneg", "stsb")}
    if finetuned:
        suite = [mean_pooling(s) for s in suite_sets(first, untouched)]
        base_suite = [f"{statistics.fmean(suite):.2f}", f"{min(suite):.2f}"]
        label = f"{baseline} mean pooling (not fine-tuned)"
    else:
        base_suite, label = ["0", "0"], f"{baseline} mean pooling (no head)"
    lines.append("| " + " | ".join([
        label, f"{mean['semantoneg-validation']:.2f}", f"{mean['stsb-validation']:.2f}",
        f"{(mean['semantoneg-validation'] + mean['stsb-validation']) / 2:.2f}", f"{mean['semantoneg']:.2f}",
        f"{mean['stsb']:.2f}", *base_suite,
    ]) + " |")  # fmt: skip
    chosen, rule = pick(held, floor)
    over = f"{'Mean ± std over seeds' if len(seeds) > 1 else 'Seed'} {' '.join(map(str, seeds))}"
    against = (
        "macro: the mean Spearman of sts12–16; worst: the lowest of them (scores, since a fine-tune changes the "
        "backbone its own mean pooling would be measured on)"
        if finetuned
        else "Δ vs mean: against the same frozen backbone's mean pooling; worst: the lowest of sts12–16"
    )
    return "\n".join(lines) + (
        f"\n\n{over}; ×100. Chosen on validation splits, never a test split, by {rule}: **`{chosen}`**. Pairwise "
        "accuracy: per premise, the share of (paraphrase, negation) pairs whose paraphrase is closer by cosine "
        f"(chance 50). {against}."
    )


def covering(folder: Path, models: list[Path], data: list[str]) -> Path | None:
    """``folder`` when it holds a current comparison of at least ``models`` on exactly ``data`` and the suite."""
    arguments = stamped_arguments(folder, models)
    if arguments is None:
        return None
    pairs = list(zip(arguments, arguments[1:], strict=False))
    given = {option: [value for key, value in pairs if key == option] for option in ("--model", "--data", "--suite")}
    fits = {str(m) for m in models} <= set(given["--model"]) and given["--data"] == data and given["--suite"] == ["ood"]
    return folder if fits else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=CANDIDATES, help="shipped config names or YAML files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--output", default="reports/negation", help="run folders (shared with reproduce_results)")
    parser.add_argument("--negation-floor", type=float, help="pick the best STS-B validation among those reaching this")
    parser.add_argument("--record", default="negation_selection", help="the docs/results.md record written")
    add_data_root(parser)
    parser.add_argument("--refit", action="store_true")
    args = parser.parse_args()
    out = Path(args.output)
    held_out = held_out_sets(args.data_root, HELD_OUT_FOLDER)
    data = [str(Path(args.data_root) / "stsb"), *map(str, held_out)]
    rows, finetuned = {}, set()
    for name in args.configs:
        config = config_path(name) or Path(name)
        root = out / config.stem
        models = [fitted_model(config, seed, root / f"seed{seed}", [], args) for seed in args.seeds]
        folder = None if args.refit else covering(root / "compare", models, data)
        # Otherwise reproduce_results' own comparison folder, redone for exactly these models and sets.
        folder = folder or compared(config, models, root / "compare", "ood", data, args.refit, [])
        rows[config.stem] = json.loads((folder / "suite.json").read_text(encoding="utf-8"))["rows"]
        finetuned.add(merged_settings(config).get("model", {}).get("freeze_backbone") is False)
    if len(finetuned) > 1:
        raise SystemExit("compare frozen heads and fine-tunes in separate runs: their suite columns differ")
    configs = [Path(name).stem for name in args.configs]
    tuned = finetuned.pop()
    body = table(rows, configs, args.seeds, "all-MiniLM-L6-v2", tuned, args.negation_floor)
    command = ["python", "scripts/select_negation.py", "--configs", *args.configs, "--seeds", *map(str, args.seeds)]
    command += ["--negation-floor", f"{args.negation_floor:g}"] if args.negation_floor is not None else []
    command += ["--record", args.record] if args.record != "negation_selection" else []
    title = "Choosing a negation recipe on held-out validation data" + (" (fine-tuned)" if tuned else "")
    record(args.record, title, body, command=shlex.join(command))
    print(body)


if __name__ == "__main__":
    main()
