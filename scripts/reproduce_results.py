"""The suite tables of docs/results.md: each config fitted with 3 seeds, exported, compared on the suite.

    python scripts/reproduce_results.py                      # the configs in DEFAULT_CONFIGS
    python scripts/reproduce_results.py --config minilm_interaction_stsb --seeds 0 1 2
    python scripts/reproduce_results.py --config minilm_layers_finetune_stsb --versus-st

A config is a shipped config's name or a YAML file; its hub data sets are read from the local
copy under ``--data-root`` (default ``../shared/data``), as ``poolhead fit --data.data_root`` does.
For every config and seed: ``poolhead fit --config C --seed_everything S --data.seed S`` (the seed
of the training order too), ``poolhead export`` of its best checkpoint (chosen on the validation
split); for a frozen backbone, the soup of the seeds' heads (``scripts/model_soup.py``); then one
``poolhead compare --suite ood --data DATA_ROOT/stsb`` over the seeds' models and the soup. The
mean ± std over seeds of each set's score and Δs becomes the record ``suite_<config>`` of
docs/results.md (``python scripts/measure.py --page``).

``--versus-st`` (a fine-tuned config): per seed, sentence-transformers' own trainer also fine-tunes
the config's backbone with its recipe (``scripts/st_reference.py``: CoSENT, batch 32, lr 2e-5, 10 %
warmup, the config's epochs, the same seed) on the config's training set (a mixture's first data
set), and each poolhead seed is measured against the reference of its own seed (``poolhead compare
--reference``). The references are kept under ``OUTPUT/st_reference/``, shared by every config with
that backbone, data and epochs.

Resumable: a seed whose run already holds a best checkpoint is not refitted, an export newer than
its checkpoint is kept, and a comparison of exactly these models is reused (``--refit`` redoes all).
Every step is the package's own command, so the figures are exactly what a user gets.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from poolhead.configs import config_path, merged_settings
from poolhead.evaluation.models import display_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import add_data_root, record  # noqa: E402
from model_soup import make_soup  # noqa: E402
from st_reference import fine_tuned_reference  # noqa: E402
from suite_table import seed_table, strategy_table  # noqa: E402

DEFAULT_CONFIGS = ["minilm_attention_stsb", "minilm_attention_anchored_stsb", "minilm_interaction_stsb"]
DEFAULT_SEEDS = [0, 1, 2]


def run(command: list[str]) -> None:
    print(f"$ {shlex.join(command)}", flush=True)
    subprocess.run(command, check=True)


def best_checkpoint(run_dir: Path) -> Path | None:
    found = sorted(run_dir.glob("**/checkpoints/best-*.ckpt"), key=os.path.getmtime)
    return found[-1] if found else None


def fitted_model(config: Path, seed: int, folder: Path, extra: list[str], args: argparse.Namespace) -> Path:
    """The exported model of one seed, fitting and exporting only what is missing."""
    run_dir = folder / "runs"
    refit = args.refit
    checkpoint = None if refit else best_checkpoint(run_dir)
    if checkpoint is None:
        # The data's own seed fixes the training order: without it every seed of a head that starts
        # deterministically (zero-initialised, no dropout) trains on the same batches into the same model.
        fit = ["poolhead", "fit", "--config", str(config), "--seed_everything", str(seed), "--data.seed", str(seed)]
        fit += ["--data.data_root", args.data_root]
        fit += ["--trainer.logger.init_args.save_dir", str(run_dir), "--trainer.enable_progress_bar", "false"]
        run(fit + extra)
        checkpoint = best_checkpoint(run_dir)
        if checkpoint is None:
            raise SystemExit(f"no best-*.ckpt under {run_dir}: did the fit log a validation metric?")
    model_dir = folder / "model"
    exported = (model_dir / "modules.json").is_file() and os.path.getmtime(model_dir) >= os.path.getmtime(checkpoint)
    if refit or not exported:
        run(["poolhead", "export", str(checkpoint), str(model_dir), "--overwrite"])
    return model_dir


def souped(models: list[Path], out: Path, refit: bool) -> Path:
    """The seeds' heads averaged in weight space (``scripts/model_soup.py``), remade when a seed is newer."""
    stamp = out / "soup_of.json"
    listed = [str(model) for model in models]
    current = stamp.is_file() and json.loads(stamp.read_text()) == listed
    if refit or not current or os.path.getmtime(stamp) < max(map(os.path.getmtime, models)):
        print(f"$ python scripts/model_soup.py {' '.join(listed)} --out {out}", flush=True)
        make_soup(models, out)
        stamp.write_text(json.dumps(listed))
    return out


def st_references(
    config: Path, seeds: list[int], root: Path, data_root: str, extra: list[str], refit: bool
) -> list[Path]:
    """Per seed, sentence-transformers' own fine-tune of the config's backbone (kept where already saved).

    Its epochs are the fit's: the config's ``trainer.max_epochs``, or a ``--trainer.max_epochs N`` override.
    """
    settings = merged_settings(config)
    model, data = settings.get("model", {}), settings.get("data", {})
    if model.get("freeze_backbone", True):
        raise SystemExit(f"--versus-st compares fine-tunes; {config.stem} keeps its backbone frozen")
    train = reference_training_data(data, data_root)
    epochs = int(overridden(extra, "--trainer.max_epochs") or settings.get("trainer", {})["max_epochs"])
    # Kept apart from the config's runs, so every config with this backbone, data and epochs shares them.
    slug = "-".join([*model["backbone"].replace(":", "/").split("/"), train.name, f"{epochs}ep"])
    folders = [root / "st_reference" / slug / f"st-seed{seed}" / "model" for seed in seeds]
    for folder in folders if refit else []:
        shutil.rmtree(folder, ignore_errors=True)
    return [
        fine_tuned_reference(folder, model["backbone"], train, epochs=epochs, seed=seed)
        for folder, seed in zip(folders, seeds, strict=True)
    ]


def reference_training_data(data: dict, data_root: str) -> Path:
    """The local copy (as ``poolhead fit --data.data_root`` reads it) of the set the reference fine-tunes on:
    the config's ``data.path``, or for a mixture its first data set (STS-B in the shipped mixtures: the
    negation recipes are held to sentence-transformers' own STS-B fine-tune)."""
    path = data.get("path") or (data.get("datasets") or [{}])[0].get("path")
    if not path:
        raise SystemExit("--versus-st needs a training set: the config names neither data.path nor data.datasets")
    return Path(data_root) / Path(path).name


def overridden(extra: list[str], option: str) -> str | None:
    """The value of a ``poolhead fit`` override among ``extra`` (``--opt V`` or ``--opt=V``), the last one given."""
    value = None
    for i, arg in enumerate(extra):
        if arg == option and i + 1 < len(extra):
            value = extra[i + 1]
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
    return value


def compared(
    config: Path, models: list[Path], output: Path, suite: str, data: list[str], refit: bool, references: list[Path]
) -> Path:
    """The folder of one ``poolhead compare`` of ``models`` on ``data`` and the suite (reused if current)."""
    settings = merged_settings(config).get("model", {})
    arguments = [arg for model in models for arg in ("--model", str(model))]
    if settings.get("freeze_backbone") is False and not references:
        # The untouched backbone's fixed strategies too; not beside one reference per seed, which
        # pairs with the models in order (the untouched backbone's scores are in the frozen tables).
        arguments += ["--model", settings["backbone"]]
    arguments += [arg for path in data for arg in ("--data", path)] + ["--suite", suite]
    arguments += [arg for path in references for arg in ("--reference", str(path))]
    return compare_once(arguments, output, refit, [*models, *references])


def stamped_arguments(output: Path, models: list[Path]) -> list[str] | None:
    """The arguments of the comparison OUTPUT holds, if it is newer than every model (else None)."""
    stamp = output / "compared.json"
    newest = max(os.path.getmtime(model) for model in models)
    if not stamp.is_file() or os.path.getmtime(stamp) <= newest:
        return None
    return json.loads(stamp.read_text())


def compare_once(arguments: list[str], output: Path, refit: bool, models: list[Path]) -> Path:
    """``poolhead compare ARGUMENTS --output OUTPUT``, unless OUTPUT holds a comparison of exactly these
    arguments newer than every model."""
    if refit or stamped_arguments(output, models) != arguments:
        run(["poolhead", "compare", *arguments, "--output", str(output), "--no-progress"])
        (output / "compared.json").write_text(json.dumps(arguments))
    return output


def reproduce(given: str, args: argparse.Namespace, extra: list[str]) -> None:
    config = config_path(given) or Path(given)
    name = config.stem
    root = Path(args.output) / name
    models = [fitted_model(config, seed, root / f"seed{seed}", extra, args) for seed in args.seeds]
    settings = merged_settings(config)
    frozen = settings.get("model", {}).get("freeze_backbone", True)
    monitor = settings.get("checkpoint", {}).get("monitor", "val/spearman")
    soup = souped(models, root / "soup", args.refit) if frozen and len(models) > 1 else None
    output, refit = Path(args.output), args.refit
    references = st_references(config, args.seeds, output, args.data_root, extra, refit) if args.versus_st else []
    everything = models + ([soup] if soup else [])
    folder = compared(config, everything, root / "compare", args.suite, args.data, args.refit, references)
    rows = json.loads((folder / "suite.json").read_text(encoding="utf-8"))["rows"]
    # The rows carry each model's name as compare labels it.
    names, reference_names = [display_name(str(m)) for m in models], [display_name(str(r)) for r in references]
    body, data = seed_table(rows, names, "soup" if soup else None)
    with open(folder / "comparison.csv", encoding="utf-8", newline="") as table:
        every = strategy_table(list(csv.DictReader(table)), names, reference_names)
    body += "\n\nEvery strategy on every set:\n\n" + every
    overrides = f" {shlex.join(extra)}" if extra else ""
    commands = (
        f"Per seed S in {' '.join(map(str, args.seeds))}: `poolhead fit --config {given} --seed_everything S "
        f"--data.seed S --data.data_root {args.data_root}{overrides}`, "
        f"`poolhead export` of the best checkpoint ({monitor})"
        + (
            ", sentence-transformers' own fine-tune of the same backbone with the same seed and epochs "
            "(`scripts/st_reference.py`: its trainer, CoSENT, batch 32, lr 2e-5, 10 % warmup, its mean pooling)"
            if references
            else ""
        )
        + f", then one `poolhead compare --suite {args.suite} {' '.join('--data ' + d for d in args.data)}"
        + f"` over the {len(models)} models"
        + (" with `--reference` the sentence-transformers fine-tune of each one's seed" if references else "")
        + (" and their soup (`scripts/model_soup.py`: the seeds' heads averaged in weight space)." if soup else ".")
        + (
            ""
            if frozen
            else " 'mean pooling' and 'best fixed' are the fixed strategies of each seed's own fine-tuned backbone."
        )
        + (
            " The reference keeps its last weights, as sentence-transformers' trainer does; poolhead's export is "
            f"its best checkpoint on {monitor}."
            if references
            else ""
        )
    )
    command = ["python", "scripts/reproduce_results.py", "--config", given]
    command += [] if args.seeds == DEFAULT_SEEDS else ["--seeds", *map(str, args.seeds)]
    command += ["--versus-st"] if references else []
    # Sets compared beside the suite (held-out validation splits, ...) change the table: name them.
    command += [arg for path in args.data for arg in ("--data", path)] if args.data != default_data(args) else []
    command += ["--", *extra] if extra else []
    title = f"Suite: {name} ({len(models)} seeds)"
    record(f"suite_{name}", title, commands + "\n\n" + body, command=shlex.join(command), data=data)
    print(body)


def default_data(args: argparse.Namespace) -> list[str]:
    return [f"{args.data_root}/stsb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", help="config(s); default: " + ", ".join(DEFAULT_CONFIGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=DEFAULT_SEEDS, help="seeds per config (default 0 1 2)")
    parser.add_argument("--suite", default="ood", help="suite name or list file for poolhead compare (default ood)")
    parser.add_argument("--data", action="append", help="further sets compared, not averaged (default DATA_ROOT/stsb)")
    parser.add_argument("--output", default="reports/reproduce", help="folder for runs, models and reports")
    add_data_root(parser)  # the local copy of the configs' hub data sets, as `poolhead fit --data.data_root`
    parser.add_argument("--refit", action="store_true", help="fit, export and compare again even where done")
    parser.add_argument(
        "--versus-st",
        action="store_true",
        help="a fine-tuned config: also fine-tune with sentence-transformers' own recipe per seed, and measure "
        "each seed against it",
    )
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="further `poolhead fit` overrides, after --")
    args = parser.parse_args()
    args.data = args.data or default_data(args)
    extra = [a for a in args.extra if a != "--"]
    for config in args.config or DEFAULT_CONFIGS:
        reproduce(config, args, extra)


if __name__ == "__main__":
    main()
