"""What LightningCLI prints beside poolhead's own output: parser errors as one line, no advertising.

jsonargparse answers a misspelt option or a bad value (``--model.lr nan``) with the whole usage
(100+ lines) before the one line that matters; Lightning adds a cloud-logging tip to every command.
"""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser


class OneLineErrorParser(LightningArgumentParser):
    """Lightning's parser whose errors are one line, ``poolhead fit: error: ...``, exit status 2, like
    every other poolhead user error; ``POOLHEAD_DEBUG=1`` (or jsonargparse's own debug mode) keeps the
    parser's full report."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        from jsonargparse._common import debug_mode_active  # jsonargparse's switch for full reports

        if not self.exit_on_error or debug_mode_active() or _debugging():
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "").replace("__main__.py", "poolhead")
        sys.stderr.write(f"{prog}: error: {' '.join(message.split())} (options: {prog} --help)\n")
        sys.exit(2)


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


def hide_lightning_tips() -> None:
    """Drop Lightning's "💡 Tip: ... litlogger" line, logged by rank_zero_info on every Trainer."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTips) for f in logger.filters):
            logger.addFilter(_NoTips())


def _debugging() -> bool:
    import os

    return os.environ.get("POOLHEAD_DEBUG", "") not in ("", "0")
