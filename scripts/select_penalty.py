"""Choose a head's anchoring option on held-out validation data, never on the suite.

    python scripts/select_penalty.py                      # uniform penalty λ in 0 1 3 10 30, seeds 0 1 2
    python scripts/select_penalty.py --values 0 10 --seeds 0
    python scripts/select_penalty.py --config minilm_attention_floor_stsb --option uniform_floor \
        --values 0 0.1 0.2 0.3 0.5 0.7

For every value v and seed S: ``poolhead fit --config C --model.pooler_kwargs.OPTION v
--seed_everything S --data.seed S`` (C: minilm_attention_uniform_stsb and OPTION: uniform_penalty
unless given; trained on STS-B train only) and ``poolhead export`` of its best checkpoint (on STS-B
validation, as the config does). Then
one ``poolhead compare`` of all the models on the suite (sts12-16, MSRP test), STS-B test, and two
held-out validation sets:

- ``stsb-validation``: STS-B's validation pairs (in-domain; what the configs select on);
- ``msrp-validation``: MSRP's validation pairs, scored threshold-free as the Spearman of cosine
  against the 0/1 paraphrase label (a rank statistic, like ROC AUC), a domain the head never saw.

The held-out pick is the value with the best mean of the two (mean over seeds); its suite figures
are then an estimate on unseen data, which a value picked on the suite itself is not. The table is
the record ``penalty_selection`` of docs/results.md (``selection_CONFIG_OPTION`` for another config or
option, whose runs go to reports/select/CONFIG/OPTION: two choices never share runs or a record).
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
from reproduce_results import compare_once, fitted_model  # noqa: E402
from suite_table import mean_std, signed_mean_std  # noqa: E402

from poolhead.configs import config_path  # noqa: E402

CONFIG = "minilm_attention_uniform_stsb"
OPTION = "uniform_penalty"
HELD_OUT = ("stsb-validation", "msrp-validation")
# How the table and the run folders name an option's value.
SYMBOLS = {
    "uniform_penalty": ("λ", "lambda"),
    "uniform_floor": ("floor", "floor"),
    "score_layer": ("scored layer", "layer"),
}


def symbol(option: str) -> str:
    return SYMBOLS.get(option, (option, option))[0]


def label(option: str, value: float, seed: int) -> str:
    # compare names a model by its folder's parent ("lambda3-seed0/model"), so each must differ.
    folder_name = SYMBOLS.get(option, (option, option))[1]
    return f"{folder_name}{value:g}-seed{seed}"


def held_out_sets(data_root: str, out: Path) -> list[Path]:
    """The validation splits the penalty is chosen on, as evaluation folders (MSRP's label ranked as a score)."""
    return [
        validation_as_evaluation(data_root, "stsb", out / "stsb-validation", score_from="score"),
        validation_as_evaluation(data_root, "msrp", out / "msrp-validation", score_from="label"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=CONFIG, help="a shipped config's name or a YAML file")
    parser.add_argument("--option", default=OPTION, help="the pooler_kwargs key to choose")
    parser.add_argument("--values", "--penalties", dest="values", type=float, nargs="+", default=[0, 1, 3, 10, 30])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", help="default reports/select_penalty (reports/select/CONFIG/OPTION otherwise)")
    add_data_root(parser)
    parser.add_argument("--refit", action="store_true")
    args = parser.parse_args()
    folder, name, title = destination(args.config, args.option)
    out = Path(args.output or folder)
    config = config_path(args.config)
    models = {}
    for value in args.values:
        extra = [f"--model.pooler_kwargs.{args.option}", f"{value:g}"]  # "1", not "1.0", for an integer option
        for seed in args.seeds:
            models[value, seed] = fitted_model(config, seed, out / label(args.option, value, seed), extra, args)
    held_out = held_out_sets(args.data_root, out / "held_out")
    compare = [a for m in models.values() for a in ("--model", str(m))]
    compare += ["--data", str(Path(args.data_root) / "stsb"), *(a for f in held_out for a in ("--data", str(f)))]
    compare += ["--suite", "ood", "--data-root", args.data_root]
    compare_once(compare, out / "compare", args.refit, list(models.values()))
    rows = json.loads((out / "compare" / "suite.json").read_text(encoding="utf-8"))["rows"]
    body = table(rows, args)
    command = ["python", "scripts/select_penalty.py"]
    if name != "penalty_selection":
        command += ["--config", args.config, "--option", args.option]
    command += ["--values", *(f"{v:g}" for v in args.values), "--seeds", *map(str, args.seeds)]
    record(name, title, body, command=shlex.join(command))
    print(body)


def destination(config: str, option: str) -> tuple[str, str, str]:
    """The run folder, record name and section title of choosing ``option`` for ``config``: one per pair,
    so that a rerun never reuses another choice's runs or overwrites its record."""
    if (config, option) == (CONFIG, OPTION):  # where the first choice, the penalty, was measured
        return (
            "reports/select_penalty",
            "penalty_selection",
            "Choosing the uniform penalty λ on held-out validation data",
        )
    stem = Path(config).stem
    return (f"reports/select/{stem}/{option}", f"selection_{stem}_{option}",
            f"Choosing {stem}'s {option} on held-out validation data")  # fmt: skip


def table(rows: list[dict], args: argparse.Namespace) -> str:
    """A row per value (mean ± std over seeds), then which value each criterion picks."""
    sym = symbol(args.option)

    def cell(value: float, dataset: str, key: str) -> list[float]:
        """One figure of every seed's model at ``value`` on ``dataset`` (``macro``: the suite's macro row)."""
        names = [f"{label(args.option, value, seed)}/model" for seed in args.seeds]
        return [next(r[key] for r in rows if r["set"] == dataset and r["model"] == name) for name in names]

    headers = [sym, "STS-B validation", "MSRP validation (Spearman vs label)", "held-out mean", "STS-B test",
               "macro Δ vs mean (sts12–16)", "seeds macro CI > 0", "sts13 Δ vs mean",
               "MSRP test acc Δ vs mean"]  # fmt: skip
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    held = {}
    for value in args.values:
        stsb_val, msrp_val = cell(value, "stsb-validation", "score"), cell(value, "msrp-validation", "score")
        held[value] = [(a + b) / 2 for a, b in zip(stsb_val, msrp_val, strict=True)]
        macro_low = cell(value, "macro", "versus_mean_low")
        lines.append("| " + " | ".join([
            f"{value:g}", mean_std(stsb_val), mean_std(msrp_val), mean_std(held[value]),
            mean_std(cell(value, "stsb", "score")), signed_mean_std(cell(value, "macro", "versus_mean_delta")),
            f"{sum(low > 0 for low in macro_low)} / {len(macro_low)}",
            signed_mean_std(cell(value, "sts13", "versus_mean_delta")),
            signed_mean_std(cell(value, "msrp", "versus_mean_delta")),
        ]) + " |")  # fmt: skip
    # The baseline every Δ is taken against: the same frozen MiniLM's mean pooling (score - Δ vs mean).
    first = args.values[0]
    mean = {d: [s - v for s, v in zip(cell(first, d, "score"), cell(first, d, "versus_mean_delta"), strict=True)]
            for d in ("stsb-validation", "msrp-validation", "stsb")}  # fmt: skip
    held_mean = [(a + b) / 2 for a, b in zip(mean["stsb-validation"], mean["msrp-validation"], strict=True)]
    baseline = ["mean pooling (no head)", mean_std(mean["stsb-validation"]), mean_std(mean["msrp-validation"]),
                mean_std(held_mean), mean_std(mean["stsb"]), "0", "", "0", "0"]  # fmt: skip
    lines.append("| " + " | ".join(baseline) + " |")
    by_held = max(args.values, key=lambda p: statistics.fmean(held[p]))
    by_stsb = max(args.values, key=lambda p: statistics.fmean(cell(p, "stsb-validation", "score")))
    runner_up = max((p for p in args.values if p != by_held), key=lambda p: statistics.fmean(held[p]))
    margin = statistics.fmean(held[by_held]) - statistics.fmean(held[runner_up])
    per_seed = [max(args.values, key=lambda p, i=i: held[p][i]) for i in range(len(args.seeds))]
    return "\n".join(lines) + (
        f"\n\nMean ± std over seeds {' '.join(map(str, args.seeds))}; Spearman ×100. The held-out mean (STS-B "
        f"validation and MSRP validation, neither a test split) picks **{sym} {by_held:g}**, by {margin:.2f} over "
        f"{sym} {runner_up:g} (per seed: "
        f"{', '.join(f'{p:g}' for p in per_seed)}); STS-B validation alone picks {sym} {by_stsb:g}. Δ vs mean: against "
        "the same frozen MiniLM's mean pooling, paired bootstrap; macro over sts12–16 from a stratified bootstrap."
    )


if __name__ == "__main__":
    main()
