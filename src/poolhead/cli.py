"""The ``poolhead`` command: LightningCLI for fit/validate/test, plus export, compare, inspect, push and predict."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from poolhead.configs import config_path, shipped_configs
from poolhead.data import SentencePairDataModule
from poolhead.errors import UserValueError, report_user_errors
from poolhead.training.checkpoints import read_checkpoint
from poolhead.training.module import PoolingModule
from poolhead.training.resume import resume_in_same_run

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
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults(
            {"early_stopping.monitor": "val/spearman", "early_stopping.mode": "max", "early_stopping.patience": 3}
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        typed = args if isinstance(args, list) else sys.argv[1:] if args is None else []
        #: model options typed on the command line: they win over a --ckpt_path checkpoint's
        self.typed_model_options = {a.split("=")[0].split(".")[1] for a in typed if a.startswith("--model.")}
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        # Lightning's version, with two changes: the checkpoint is read by poolhead's safe reader
        # (one sentence for a corrupt file), and an option typed on the command line (e.g.
        # --model.backbone NEW for a backbone folder that moved) is not overwritten by the checkpoint's.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        hparams = dict(read_checkpoint(ckpt_path).get("hyper_parameters") or {})
        for key in ("_instantiator", *self.typed_model_options):
            hparams.pop(key, None)
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        if hparams:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        try:
            return super().instantiate_trainer(**kwargs)
        except MisconfigurationException as error:  # a bad --trainer value, e.g. max_epochs -3
            raise UserValueError(f"--trainer option: {error}") from error

    def before_fit(self) -> None:
        resume_in_same_run(self.trainer, self.config_init["fit"].get("ckpt_path"))
        # Early stopping watches a validation metric: a run without validation (no validation
        # split, or limit_val_batches 0) would otherwise die with an error after its first epoch.
        if self.datamodule.split_names["validation"] is None or self.trainer.limit_val_batches == 0:
            stoppers = [c for c in self.trainer.callbacks if isinstance(c, EarlyStopping)]
            if stoppers:
                self.trainer.callbacks = [c for c in self.trainer.callbacks if c not in stoppers]
                rank_zero_info("no validation in this run: early stopping is off, every epoch runs")


def run_lightning(args: list[str] | None = None) -> PoolheadCLI:
    """LightningCLI on ``args`` (default the command line), shipped configs found by name."""
    if args is None:
        # LightningCLI reads sys.argv itself (given both, it warns): name the config file there.
        sys.argv[1:] = shipped_config_paths(sys.argv[1:])
    else:
        args = shipped_config_paths(args)
    return PoolheadCLI(
        PoolingModule,
        SentencePairDataModule,
        trainer_defaults=TRAINER_DEFAULTS,
        save_config_kwargs={"overwrite": True},
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
    """``--config NAME`` (or ``-c NAME``, ``--config=NAME``) of a shipped config becomes its installed path.

    A file that exists wins over a shipped config of the same name.
    """
    resolved, expects_value = [], False
    for arg in argv:
        if expects_value:
            arg, expects_value = _config_file(arg), False
        elif arg in ("--config", "-c"):
            expects_value = True
        elif arg.startswith("--config="):
            arg = "--config=" + _config_file(arg.removeprefix("--config="))
        resolved.append(arg)
    return resolved


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
