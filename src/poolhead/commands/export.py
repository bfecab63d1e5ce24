"""``poolhead export CHECKPOINT OUT_DIR``: a trained checkpoint as a sentence-transformers folder."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="the .ckpt file written by poolhead fit")
    parser.add_argument("out_dir", help="folder to write the sentence-transformers model to")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model folder at OUT_DIR")
    parser.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="end with a Normalize module (unit-length embeddings); default: as the model was trained",
    )


def run(args: argparse.Namespace) -> int:
    from poolhead.export import export_checkpoint
    from poolhead.export.writer import CODE_FOLDER

    try:
        out_dir = export_checkpoint(args.checkpoint, args.out_dir, overwrite=args.overwrite, normalize=args.normalize)
    except (FileExistsError, FileNotFoundError, NotADirectoryError, ValueError) as error:
        print(f"poolhead export: error: {error}", file=sys.stderr)
        return 2
    remote_code = ", trust_remote_code=True" if (out_dir / CODE_FOLDER).is_dir() else ""
    print(f"wrote {out_dir}; load it with SentenceTransformer({str(out_dir)!r}{remote_code}) (see its README.md)")
    return 0
