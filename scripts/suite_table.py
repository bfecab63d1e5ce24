"""Mean ± std over seeds of a suite summary (``poolhead compare --suite``'s suite.json rows)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from poolhead.evaluation.compare import PRIMARY_METRIC

METRIC_TITLES = {"spearman": "Spearman", "accuracy": "Accuracy", "pairwise_accuracy": "Pairwise accuracy",
                 "balanced_accuracy": "Balanced accuracy"}  # fmt: skip


def mean_std(values: Sequence[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {spread:.2f}"


def signed_mean_std(values: Sequence[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):+.2f} ± {spread:.2f}"


def significance(rows: list[dict], versus: str) -> str:
    """How many seeds' paired CIs lie above 0 and below 0, e.g. '2 ↑ / 0 ↓'."""
    above = sum(r[f"{versus}_low"] > 0 for r in rows)
    below = sum(r[f"{versus}_high"] < 0 for r in rows)
    return f"{above} ↑ / {below} ↓"


def soup_cells(rows: list[dict], name: str, soup: str | None) -> list[str]:
    if soup is None:
        return []
    row = next(r for r in rows if r["set"] == name and r["model"] == soup)
    score = "" if name == "macro" else f"{row['score']:.2f}"
    d = row["versus_mean_delta"], row["versus_mean_low"], row["versus_mean_high"]
    return [score, f"{d[0]:+.2f} [{d[1]:+.2f}, {d[2]:+.2f}]"]


def reference_cells(per_seed: list[dict], macro: bool) -> list[str]:
    """The seeds' references (their scores) and the Δs to them, when the comparison had references."""
    if not per_seed[0].get("reference"):
        return []
    deltas = [r["versus_reference_delta"] for r in per_seed]
    scores = "" if macro else mean_std([r["score"] - d for r, d in zip(per_seed, deltas, strict=True)])
    return [scores, signed_mean_std(deltas), significance(per_seed, "versus_reference")]


def seed_table(rows: list[dict], models: Sequence[str], soup: str | None = None) -> tuple[str, dict]:
    """A Markdown table (a row per set, then the macro row) and its figures as data.

    Each cell is the mean ± std over ``models`` (one per seed). "CI" columns count the seeds
    whose paired 95 % interval lies wholly above (↑) or below (↓) 0. ``soup``: a model averaged
    from the seeds, shown as one figure (it has no spread) with its own Δ vs mean and CI. Where
    the seeds were measured against reference models (``poolhead compare --reference``), the
    references' scores and the Δs to them are three more columns.
    """
    found = sorted({r["model"] for r in rows})
    missing = [m for m in [*models, *([soup] if soup else [])] if m not in found]
    if missing:
        raise SystemExit(f"suite.json has no rows for {missing}; it holds {found}: rerun the comparison")
    sets = list(dict.fromkeys(r["set"] for r in rows))
    referenced = bool(next(r for r in rows if r["model"] == models[0]).get("reference"))
    headers = ["set", "metric", "mean pooling", "best fixed", "model", "Δ vs best fixed", "CI vs best",
               "Δ vs mean", "CI vs mean"] + (["soup", "soup Δ vs mean [95% CI]"] if soup else [])  # fmt: skip
    headers += ["reference", "Δ vs reference", "CI vs reference"] if referenced else []
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    data = {"models": list(models), "sets": {}}
    for name in sets:
        per_seed = [next(r for r in rows if r["set"] == name and r["model"] == m) for m in models]
        best = [r["versus_best_delta"] for r in per_seed]
        versus_mean = [r["versus_mean_delta"] for r in per_seed]
        macro = name == "macro"
        scores = [] if macro else [r["score"] for r in per_seed]
        mean_scores = [s - d for s, d in zip(scores, versus_mean, strict=False)]
        best_scores = [s - d for s, d in zip(scores, best, strict=False)]
        label = f"macro ({per_seed[0]['macro_sets'].replace(' ', ', ')})" if macro else name
        lines.append("| " + " | ".join([
            label, METRIC_TITLES.get(per_seed[0]["metric"], per_seed[0]["metric"]),
            "" if macro else f"{statistics.fmean(mean_scores):.2f}",
            "" if macro else f"{per_seed[0]['best_fixed']} {statistics.fmean(best_scores):.2f}",
            "" if macro else mean_std(scores), signed_mean_std(best), significance(per_seed, "versus_best"),
            signed_mean_std(versus_mean), significance(per_seed, "versus_mean"), *soup_cells(rows, name, soup),
            *reference_cells(per_seed, macro),
        ]) + " |")  # fmt: skip
        data["sets"][name] = {
            "score": scores,
            "versus_best": best,
            "versus_mean": versus_mean,
            "versus_mean_low": [r["versus_mean_low"] for r in per_seed],
            "versus_mean_high": [r["versus_mean_high"] for r in per_seed],
        }
        if referenced:
            data["sets"][name]["references"] = [r["reference"] for r in per_seed]
            data["sets"][name]["versus_reference"] = [r["versus_reference_delta"] for r in per_seed]
        if soup:
            data["sets"][name]["soup"] = next(r for r in rows if r["set"] == name and r["model"] == soup)
    note = (
        f"Mean ± std over {len(models)} seeds. Δ ×100, paired bootstrap per seed (macro: stratified over the "
        f"sets' pairs); 'CI' counts the seeds whose 95 % interval lies above 0 (↑) or below 0 (↓)."
    )
    return "\n".join(lines) + "\n\n" + note, data


def strategy_table(rows: list[dict], models: Sequence[str], references: Sequence[str] = ()) -> str:
    """Every strategy's score on every set (``poolhead compare``'s comparison.csv rows), mean ± std over seeds.

    A row per fixed strategy of the seeds' backbones (one backbone when it is frozen and shared), then
    the models themselves and their ``references``. Score sets give Spearman, label sets accuracy, contrast
    sets pairwise accuracy, probe sets balanced accuracy.
    """
    sets = list(dict.fromkeys(r["dataset"] for r in rows))

    def cell(picked: list[dict]) -> str:
        values = [float(r[PRIMARY_METRIC[r["task"]]]) for r in picked]
        return "" if not values else mean_std(values) if len(values) > 1 else f"{values[0]:.2f}"

    backbones = [m for m in models if any(r["backbone"] == m and r["kind"] == "fixed" for r in rows)]
    strategies = list(dict.fromkeys(r["strategy"] for r in rows if r["kind"] == "fixed"))
    lines = ["| strategy | " + " | ".join(sets) + " |", "|" + "---|" * (len(sets) + 1)]
    for strategy in strategies:
        picked = {s: [r for r in rows if r["dataset"] == s and r["kind"] == "fixed" and r["strategy"] == strategy
                      and r["backbone"] in backbones] for s in sets}  # fmt: skip
        lines.append(f"| {strategy} | " + " | ".join(cell(picked[s]) for s in sets) + " |")
    for label, names in (("model", models), ("reference", references)):
        if names:
            picked = {s: [r for r in rows if r["dataset"] == s and r["kind"] == "model" and r["name"] in names]
                      for s in sets}  # fmt: skip
            lines.append(f"| **{label}** | " + " | ".join(cell(picked[s]) for s in sets) + " |")
    where = "each seed's own fine-tuned backbone" if len(backbones) > 1 else "the one frozen backbone"
    note = (
        f"Spearman (score sets), accuracy (label sets) or pairwise accuracy (contrast sets) ×100; "
        f"fixed strategies of {where}"
        + (f", mean ± std over {len(backbones)} seeds" if len(backbones) > 1 else "")
        + f"; the model row is the mean ± std over its {len(models)} seeds."
    )
    return "\n".join(lines) + "\n\n" + note
