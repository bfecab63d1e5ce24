"""``poolhead export CHECKPOINT OUT_DIR``: a trained checkpoint as a sentence-transformers folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from poolhead.commands import check_output_folder
from poolhead.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="the .ckpt file written by poolhead fit")
    parser.add_argument("out_dir", help="folder to write the sentence-transformers model to")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model folder at OUT_DIR")
    parser.add_argument(
        "--backbone",
        metavar="PATH",
        help="load the backbone from here, not from the path saved in the checkpoint (a folder that moved); "
        "its weights must be the ones trained on",
    )
    parser.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="end with a Normalize module (unit-length embeddings); default: as the model was trained",
    )
    parser.add_argument(
        "--base-model",
        metavar="HUB_ID",
        help="the hub id of the backbone, for the card's base_model when "
        "training used a local copy (e.g. sentence-transformers/all-MiniLM-L6-v2)",
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also write the whole model (backbone, pooling, Normalize) as one ONNX graph in OUT_DIR/onnx/, "
        'for poolhead.load(OUT_DIR, backend="onnx") or backend="openvino" (needs poolhead[onnx])',
    )
    parser.add_argument("--push-to-hub", metavar="ORG/NAME", help="upload the export to this hub repository")
    from poolhead.commands.push import add_hub_options

    add_hub_options(parser)


def run(args: argparse.Namespace) -> int:
    from poolhead.export import export_checkpoint
    from poolhead.export.loading import CODE_FOLDER
    from poolhead.export.writer import check_out_dir

    # Before the checkpoint and backbone load: a folder in the way is refused at once. A user error
    # propagates to cli.main, which prints it once; anything else is a bug and keeps its traceback.
    check_output_folder(Path(args.out_dir).parent, "OUT_DIR")
    check_out_dir(Path(args.out_dir), args.overwrite)
    out_dir = export_checkpoint(
        args.checkpoint,
        args.out_dir,
        overwrite=args.overwrite,
        normalize=args.normalize,
        base_model=args.base_model,
        backbone=args.backbone,
    )
    if args.onnx:
        export_onnx_graph(out_dir)
    remote_code = ", trust_remote_code=True" if (out_dir / CODE_FOLDER).is_dir() else ""
    print(f"wrote {out_dir}; load it with SentenceTransformer({str(out_dir)!r}{remote_code}) (see its README.md)")
    if args.push_to_hub:
        from poolhead.commands.push import push

        return push(out_dir, args.push_to_hub, args, "export")
    return 0


def export_onnx_graph(out_dir) -> None:
    try:
        from poolhead.export.onnx import export_onnx

        path = export_onnx(out_dir)
    except ModuleNotFoundError as error:
        raise UserError(f"--onnx needs {error.name}: pip install 'poolhead[onnx]'") from error
    print(f'wrote {path}; run it with poolhead.load({str(out_dir)!r}, backend="onnx") (or backend="openvino")')
