"""The ``poolhead`` command: LightningCLI for fit/validate/test, plus export, compare, inspect, push and predict."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import get_loader, set_loader
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from poolhead.commands.lightning_output import OneLineErrorParser, hide_lightning_tips
from poolhead.configs import config_path, shipped_configs, with_bases, without_base
from poolhead.data import SentencePairDataModule
from poolhead.errors import UserValueError, report_user_errors
from poolhead.training.checkpoint_options import check_config_matches_checkpoint, check_head_was_trained
from poolhead.training.checkpoints import model_options, read_checkpoint
from poolhead.training.module import PoolingModule
from poolhead.training.resume import check_resumed_options, resume_in_same_run

#: Lightning's subcommands, with what each does in poolhead
LIGHTNING_COMMANDS = {
    "fit": "train a pooling head (and the backbone, if not frozen) on sentence pairs",
    "validate": "score a checkpoint on the validation split (--ckpt_path)",
    "test": "score a checkpoint on the test split (--ckpt_path)",
}
#: subcommand -> (module under poolhead.commands, one-line help)
EXTRA_COMMANDS = {
    "export": ("export", "write a trained checkpoint as a sentence-transformers folder"),
    "compare": ("compare", "compare models and every fixed strategy on evaluation sets"),
    "inspect": ("inspect", "show how strategies and learned heads see one text"),
    "push": ("push", "upload an exported folder to the Hugging Face hub"),
    "predict": ("predict", "embed every text of a file or hub dataset, in resumable shards, on one or many devices"),
}
TRAINER_DEFAULTS = {
    "logger": {
        "class_path": "lightning.pytorch.loggers.CSVLogger",
        "init_args": {"save_dir": "runs", "name": "poolhead"},
    },
}

#: jsonargparse's YAML, less the ``base:`` key, which shipped_config_paths has already read as a config
CONFIG_MODE = "poolhead_yaml"
set_loader(CONFIG_MODE, lambda text: without_base(get_loader("yaml")(text)), exceptions=(yaml.YAMLError,))


class PoolheadCLI(LightningCLI):
    """LightningCLI with poolhead's wiring: the data module tokenizes with the model's backbone,
    and the validation metric drives checkpointing and early stopping."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.backbone", "data.tokenizer")
        parser.link_arguments("model.max_length", "data.max_length")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/spearman",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch}-step{step}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # The best checkpoints above are saved only when the metric improves (their save_last with them);
        # last.ckpt is also written at every epoch's end, so `--ckpt_path last` resumes the last epoch.
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.set_defaults(
            {
                "last_checkpoint.monitor": None,
                "last_checkpoint.save_top_k": 1,
                "last_checkpoint.filename": ModelCheckpoint.CHECKPOINT_NAME_LAST,
                "last_checkpoint.enable_version_counter": False,
                "checkpoint.enable_version_counter": False,  # both write last.ckpt: never last-v1.ckpt
            }
        )
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults(
            {"early_stopping.monitor": "val/spearman", "early_stopping.mode": "max", "early_stopping.patience": 3}
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        typed = args if isinstance(args, list) else sys.argv[1:] if args is None else []
        #: model options typed on the command line: they win over a --ckpt_path checkpoint's
        self.typed_model_options = {a.split("=")[0].split(".")[1] for a in typed if a.startswith("--model.")}
        #: model options given at all, typed or in a config file: compared with a --ckpt_path checkpoint's even
        #: at their default value (only options given nowhere are the checkpoint's to fill in)
        self.given_model_options = self.typed_model_options | configured_model_options(typed)
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        # Lightning's version, with three changes: the checkpoint is read by poolhead's safe reader
        # (one sentence for a corrupt file), its _class_path goes through training/rebuild.py's table,
        # and an option typed on the command line (e.g. --model.backbone NEW for a backbone folder
        # that moved) is not overwritten by the checkpoint's.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        # model_options: plain values only (no class path to import, no cache_dir to write to).
        hparams = model_options(read_checkpoint(ckpt_path), ckpt_path)
        model = self.config[subcommand]["model"]
        check_config_matches_checkpoint(
            model.as_dict(), hparams, self.typed_model_options, ckpt_path, given=self.given_model_options
        )
        for key in self.given_model_options:  # a given option is compared (fit: check_resumed_options), not replaced
            hparams.pop(key, None)
        if hparams:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)

    def before_validate(self) -> None:
        check_head_was_trained(self.model, self.config_init["validate"].get("ckpt_path"), "validate")

    def before_test(self) -> None:
        check_head_was_trained(self.model, self.config_init["test"].get("ckpt_path"), "test")

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        try:
            return super().instantiate_trainer(**kwargs)
        except MisconfigurationException as error:  # a bad --trainer value, e.g. max_epochs -3
            raise UserValueError(f"--trainer option: {error}") from error

    def before_fit(self) -> None:
        ckpt_path = self.config_init["fit"].get("ckpt_path")
        resume_in_same_run(self.trainer, ckpt_path)
        check_resumed_options(self.trainer, ckpt_path, self.model, self.datamodule)
        # Early stopping watches a validation metric: a run without validation (no validation
        # split, or limit_val_batches 0) would otherwise die with an error after its first epoch.
        if self.datamodule.split_names["validation"] is None or self.trainer.limit_val_batches == 0:
            stoppers = [c for c in self.trainer.callbacks if isinstance(c, EarlyStopping)]
            if stoppers:
                self.trainer.callbacks = [c for c in self.trainer.callbacks if c not in stoppers]
                rank_zero_info("no validation in this run: early stopping is off, every epoch runs")


def configured_model_options(argv: list[str]) -> set[str]:
    """The ``model:`` keys of every ``--config`` file (or inline YAML) in ``argv``."""
    keys: set[str] = set()
    values = [b for a, b in zip(argv, argv[1:], strict=False) if a in ("--config", "-c")]
    values += [a.removeprefix("--config=") for a in argv if a.startswith("--config=")]
    for value in values:
        try:
            text = Path(value).read_text(encoding="utf-8") if Path(value).is_file() else value
            model = (without_base(yaml.safe_load(text)) or {}).get("model")
        except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError):
            continue  # LightningCLI reports a config it cannot read
        if isinstance(model, dict):
            keys |= set(model.get("init_args", model)) - {"class_path"}
    return keys


def run_lightning(args: list[str] | None = None) -> PoolheadCLI:
    """LightningCLI on ``args`` (default the command line), shipped configs found by name."""
    if args is None:
        # LightningCLI reads sys.argv itself (given both, it warns): name the config file there.
        sys.argv[1:] = shipped_config_paths(sys.argv[1:])
    else:
        args = shipped_config_paths(args)
    hide_lightning_tips()
    return PoolheadCLI(
        PoolingModule,
        SentencePairDataModule,
        parser_class=OneLineErrorParser,
        trainer_defaults=TRAINER_DEFAULTS,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"parser_mode": CONFIG_MODE, **dict.fromkeys(LIGHTNING_COMMANDS, {"parser_mode": CONFIG_MODE})},
        args=args,
    )


def run_extra(command: str, argv: list[str]) -> int:
    module_name, help_text = EXTRA_COMMANDS[command]
    module = importlib.import_module(f"poolhead.commands.{module_name}")
    parser = argparse.ArgumentParser(prog=f"poolhead {command}", description=help_text)
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def usage() -> str:
    helps = {**LIGHTNING_COMMANDS, **{name: text for name, (_, text) in EXTRA_COMMANDS.items()}}
    commands = "".join(f"\n  {name:<9} {text}" for name, text in helps.items())
    return f"usage: poolhead COMMAND [options]\n\ncommands:{commands}\n\n`poolhead COMMAND --help` for its options."


def shipped_config_paths(argv: list[str]) -> list[str]:
    """``--config NAME`` (or ``-c NAME``, ``--config=NAME``) of a shipped config becomes its installed path,
    preceded by one ``--config BASE`` for each base it names (``base:``), the deepest first.

    A file that exists wins over a shipped config of the same name.
    """
    resolved, flag = [], None
    for arg in argv:
        if flag is not None:
            resolved += [item for path in _config_files(arg) for item in (flag, path)]
            flag = None
        elif arg in ("--config", "-c"):
            flag = arg
        elif arg.startswith("--config="):
            resolved += [f"--config={path}" for path in _config_files(arg.removeprefix("--config="))]
        else:
            resolved.append(arg)
    return resolved if flag is None else [*resolved, flag]


def _config_files(value: str) -> list[str]:
    path = _config_file(value)
    if path.startswith("{") or not Path(path).is_file():
        return [path]  # a config written inline, or left for LightningCLI to report
    return [str(file) for file in with_bases(Path(path))]


def _config_file(value: str) -> str:
    if Path(value).is_file():
        return value
    shipped = config_path(value)
    if shipped is not None:
        return str(shipped)
    if "/" not in value and not value.startswith("{"):
        raise SystemExit(
            f"poolhead: no config file {value!r} here and no shipped config of that name; "
            f"give a path or one of {', '.join(shipped_configs())}"
        )
    return value


def main(argv: list[str] | None = None) -> int:
    """Run a ``poolhead`` command; a user error prints one line and returns 2 (see poolhead.errors)."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in EXTRA_COMMANDS:
        return report_user_errors(args[0], lambda: run_extra(args[0], args[1:]))
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2

    def run() -> int:
        # None when the arguments are sys.argv's: LightningCLI warns when it is given both.
        run_lightning(argv)
        return 0

    return report_user_errors(args[0], run)


if __name__ == "__main__":
    sys.exit(main())
