"""``poolhead predict --model PATH --input FILE --output DIR``: embed a corpus, in shards, on Lightning's Trainer."""

from __future__ import annotations

import argparse
import sys

from poolhead.commands import check_output_folder
from poolhead.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, metavar="PATH", help="an exported folder or a .ckpt from poolhead fit"
    )
    parser.add_argument(
        "--input",
        required=True,
        metavar="SOURCE",
        help="a csv / tsv / jsonl / parquet file, a folder of them, or a hub dataset (its id, or a folder laid out as "
        "its repository)",
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the shards and manifest.json")
    parser.add_argument("--column", default="text", help="the column of texts (default: text)")
    parser.add_argument("--id-column", help="the column of ids (default: row numbers from 0)")
    parser.add_argument("--split", default="train", help="split of a hub dataset (default: train)")
    parser.add_argument("--format", default="parquet", choices=["parquet", "safetensors"], help="shard file format")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32)")
    parser.add_argument(
        "--shard-size", type=int, default=100_000, help="rows per shard file: the unit a rerun skips (default 100000)"
    )
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers that tokenize (default 0)")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu, ... (Lightning's; default auto)")
    parser.add_argument("--devices", default="auto", help="devices per node, e.g. 4 (Lightning's; default auto)")
    parser.add_argument("--num-nodes", type=int, default=1, help="machines (Lightning's num_nodes; default 1)")
    parser.add_argument("--strategy", default="auto", help="e.g. ddp (Lightning's; default auto)")
    parser.add_argument("--precision", default=None, help="e.g. 16-mixed, bf16-mixed (Lightning's; default 32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from poolhead.corpus import encode_corpus

    devices = int(args.devices) if args.devices.isdigit() else args.devices
    options = {"precision": args.precision} if args.precision else {}
    try:
        check_output_folder(args.output, "--output")
        manifest = encode_corpus(
            args.model,
            args.input,
            args.output,
            column=args.column,
            id_column=args.id_column,
            split=args.split,
            batch_size=args.batch_size,
            shard_size=args.shard_size,
            file_format=args.format,
            num_workers=args.num_workers,
            progress=not args.no_progress,
            accelerator=args.accelerator,
            devices=devices,
            num_nodes=args.num_nodes,
            strategy=args.strategy,
            **options,
        )
    except UserError:
        raise  # cli.main reports it, once (with its traceback under POOLHEAD_DEBUG=1)
    except (OSError, ValueError, ImportError) as error:  # a library's error about the input, e.g. a hub dataset's
        print(f"poolhead predict: error: {error}", file=sys.stderr)
        return 2
    state = "complete" if manifest["complete"] else "incomplete (run the same command again to finish)"
    print(f"{manifest['num_rows']} texts, {len(manifest['shards'])} shards in {args.output}: {state}")
    return 0
