"""``poolhead inspect TEXT [--model PATH]``: how every strategy and a learned head see one text."""

from __future__ import annotations

import argparse
from pathlib import Path

from poolhead.commands import check_output_folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="the text to inspect (quote it)")
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="an exported folder or .ckpt (shows its attention and layer weights) or a backbone; "
        "default the packaged all-MiniLM-L6-v2",
    )
    parser.add_argument("--strategy", action="append", metavar="NAME", help="fixed strategies to show; default all")
    parser.add_argument("--output", default=".", metavar="DIR", help="folder for inspect.png (default: here)")
    parser.add_argument("--device", help="cpu, cuda, ...; default CUDA when available")


def run(args: argparse.Namespace) -> int:
    from poolhead.evaluation.inspect import format_inspection, inspect_text, plot_inspection

    check_output_folder(args.output, "--output")
    inspection = inspect_text(args.text, args.model, strategies=args.strategy, device=args.device)
    print(format_inspection(inspection))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    print(f"\nwrote {plot_inspection(inspection, output / 'inspect.png')}")
    return 0
