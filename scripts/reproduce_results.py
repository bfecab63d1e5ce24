"""Reproduce README's results table: fit each config, export its best checkpoint, compare.

    python scripts/reproduce_results.py     # frozen-MiniLM attention head, fine-tuned MiniLM + layer mix
    python scripts/reproduce_results.py --config minilm_layers_attention_stsb --config ...

Every step is the package's own command (``poolhead fit`` / ``export`` / ``compare``), so the
figures are exactly what a user gets. A config that fine-tunes its backbone is compared against
the untouched backbone too (``--model`` twice), so its table holds the fixed strategies of both.
A config is a shipped config's name or a YAML file; its hub data sets are read from the local copy
under ``--data-root`` (default ``../shared/data``), as ``poolhead fit --data.data_root`` does.
The report of each config lands in ``OUTPUT/<config name>/comparison.md``; a header with the
date, machine and commands is printed first so the output can be pasted into README as it is.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from poolhead.configs import config_path

DEFAULT_CONFIGS = ["minilm_attention_stsb", "minilm_layers_finetune_stsb"]
DATA_ROOT = "../shared/data"
EVAL_SETS = ["../shared/data/stsb", "../shared/data/msrp"]


def run(command: list[str]) -> None:
    print(f"$ {shlex.join(command)}", flush=True)
    subprocess.run(command, check=True)


def best_checkpoint(run_dir: Path) -> Path:
    found = sorted(run_dir.glob("**/checkpoints/best-*.ckpt"), key=os.path.getmtime)
    if not found:
        raise SystemExit(f"no best-*.ckpt under {run_dir}: did the fit log a validation metric?")
    return found[-1]


def reproduce(
    config: Path, output: Path, extra: list[str], compare_limit: int | None, reuse: bool, data_root: str
) -> str:
    name = config.stem
    run_dir = output / name / "runs"
    if reuse and list(run_dir.glob("**/checkpoints/best-*.ckpt")):
        fitted = f"fit: reused the run already in `{run_dir}`"
    else:
        started = time.perf_counter()
        run(
            [
                "poolhead",
                "fit",
                "--config",
                str(config),
                "--data.data_root",
                data_root,
                "--trainer.logger.init_args.save_dir",
                str(run_dir),
                "--trainer.enable_progress_bar",
                "false",
                *extra,
            ]
        )
        fitted = f"fit: {time.perf_counter() - started:.0f} s"
    checkpoint = best_checkpoint(run_dir)
    model_dir = output / name / "model"
    run(["poolhead", "export", str(checkpoint), str(model_dir), "--overwrite"])
    models = ["--model", str(model_dir)]
    settings = yaml.safe_load(config.read_text()).get("model", {})
    if settings.get("freeze_backbone") is False:
        models += ["--model", settings["backbone"]]
    data = [arg for path in EVAL_SETS for arg in ("--data", path)]
    limit = ["--limit", str(compare_limit)] if compare_limit else []
    run(["poolhead", "compare", *models, *data, "--output", str(output / name), "--no-progress", *limit])
    report = (output / name / "comparison.md").read_text()
    return f"### {name}\n\n{fitted}, best checkpoint `{checkpoint.name}`\n\n{report}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config", action="append", help="config(s) to reproduce; default: " + ", ".join(DEFAULT_CONFIGS)
    )
    parser.add_argument("--output", default="reports/reproduce", help="folder for runs, models and reports")
    parser.add_argument("--data-root", default=DATA_ROOT, help="local copy of the configs' hub data sets")
    parser.add_argument(
        "--compare-limit", type=int, help="compare on the first N pairs only (a smoke test, not a result)"
    )
    parser.add_argument(
        "--reuse-runs",
        action="store_true",
        help="skip the fit of a config whose OUTPUT/<config name>/runs already holds a best checkpoint",
    )
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="further `poolhead fit` overrides, after --")
    args = parser.parse_args()
    extra = [a for a in args.extra if a != "--"]
    output = Path(args.output)
    header = (
        f"Reproduced {datetime.date.today()} on {platform.node()} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs), python {platform.python_version()}; command: "
        f"`python {shlex.join(sys.argv)}`\n"
    )
    sections = [
        reproduce(
            config_path(config) or Path(config), output, extra, args.compare_limit, args.reuse_runs, args.data_root
        )
        for config in args.config or DEFAULT_CONFIGS
    ]
    text = header + "\n" + "\n".join(sections)
    (output / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
