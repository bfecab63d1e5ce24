"""What training on a mixture does to the frozen attention head: STS-B alone against STS-B + MSRP.

    python scripts/measure_mixture.py

Fits the shipped configs ``minilm_attention_stsb`` (CoSENT on STS-B) and ``minilm_attention_mixture``
(the same, plus MSRP paraphrases as positives with in-batch negatives), both on the local copy of
their data (``--data.data_root``), exports each best checkpoint, and compares both heads with every
fixed strategy of the frozen MiniLM on STS-B test, the decontaminated out-of-domain STS sets
sts12..sts16 and MSRP test (``poolhead compare``: bootstrap intervals, paired against mean
pooling). The comparison is recorded as the ``mixture`` section of docs/results.md.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_page import record  # noqa: E402

CONFIGS = ["minilm_attention_stsb", "minilm_attention_mixture"]
EVAL_SETS = ["stsb", "sts12", "sts13", "sts14", "sts15", "sts16", "msrp"]


def run(command: list[str]) -> None:
    print(f"$ {shlex.join(command)}", flush=True)
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="../shared/data", help="local copy of the data sets")
    parser.add_argument("--output", default="reports/mixture", help="runs, models and the comparison")
    args = parser.parse_args()
    output = Path(args.output)
    models = []
    for config in CONFIGS:
        runs = output / config / "runs"
        if not list(runs.glob("**/checkpoints/best-*.ckpt")):
            fit = ["poolhead", "fit", "--config", config, "--data.data_root", args.data_root]
            run([*fit, "--trainer.logger.init_args.save_dir", str(runs), "--trainer.enable_progress_bar", "false"])
        best = sorted(runs.glob("**/checkpoints/best-*.ckpt"))[-1]
        model = output / "models" / config  # compare names each model by its folder
        run(["poolhead", "export", str(best), str(model), "--overwrite"])
        models += ["--model", str(model)]
    data = [arg for name in EVAL_SETS for arg in ("--data", str(Path(args.data_root) / name))]
    run(["poolhead", "compare", *models, *data, "--output", str(output / "compare"), "--no-progress"])
    report = (output / "compare" / "comparison.md").read_text(encoding="utf-8")
    report = re.sub(r"^## ", "#### ", report, flags=re.M)  # under this record's own heading
    body = (
        "Frozen all-MiniLM-L6-v2 + AttentionPooling trained by the shipped configs `minilm_attention_stsb` "
        "(STS-B, CoSENT) and `minilm_attention_mixture` (STS-B CoSENT + MSRP paraphrases as positives with "
        "in-batch negatives), one seed each, best checkpoint by validation; compared by `poolhead compare` "
        f"with every fixed strategy.\n\n{report}"
    )
    record("mixture", "STS-B alone vs the STS-B + MSRP mixture (frozen attention head)", body)


if __name__ == "__main__":
    main()
