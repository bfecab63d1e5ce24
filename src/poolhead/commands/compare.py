"""``poolhead compare --model PATH --data PATH --output DIR``: learned heads beside every fixed strategy.

``--suite ood`` (or a file listing sets) adds those sets and a suite summary: per set the Δ to the
best fixed strategy and to mean pooling, the macro-average Δ over the score sets, the worst set.
A set's columns say what it is: sentence pairs, a contrast set (premise, hypothesis, negated) or a
probe set (sentence, label, optionally concept); ``--data-columns`` maps other column names.
``--reference PATH`` adds each model's Δ to another model (e.g. the same backbone fine-tuned by
sentence-transformers' own recipe) on every set and over the macro-average.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from poolhead.commands import check_output_folder
from poolhead.errors import UserValueError

if TYPE_CHECKING:  # the command's imports stay lazy: `poolhead --help` loads no torch
    from poolhead.evaluation.models import EmbeddingModel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="PATH",
        help="an exported sentence-transformers folder, a .ckpt, or a Hugging Face backbone (fixed strategies "
        "only); repeat for several. Every fixed strategy of each backbone is evaluated too",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="PATH",
        help="a folder (its test split; validation chooses label thresholds), a file, or a hub id; repeatable",
    )
    parser.add_argument(
        "--data-columns",
        metavar="ROLE=COLUMN,...",
        help="map the --data sets' columns onto roles, e.g. label=status,sentence=text (roles: sentence1, "
        "sentence2, score, label; premise, hypothesis, negated for contrast sets; sentence, label, concept for probes)",
    )
    parser.add_argument(
        "--query-template",
        action="append",
        default=[],
        metavar="STATUS=TEMPLATE",
        help="the query a search for a concept of that status types, for probe sets with a concept column "
        "(default present='{concept}' absent='no {concept}'); repeat for each status",
    )
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="PATH",
        help="a model the --model models are measured against in the suite summary (Δ per set and macro): "
        "one for all of them, or one per --model in the same order",
    )
    parser.add_argument(
        "--suite",
        metavar="NAME|FILE",
        help="evaluate a suite of sets and summarise it (suite.{md,csv,json,png}): 'ood' (sts12-sts16 and msrp from "
        "--data-root, else the hub; the semantoneg contrast set from --data-root only, skipped with a note where it "
        "lacks it) or a file listing one set per line",
    )
    parser.add_argument(
        "--data-root", default="../shared/data", metavar="DIR", help="folder of a named suite's sets (../shared/data)"
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for comparison.{md,csv,png}")
    parser.add_argument(
        "--strategy",
        action="append",
        metavar="NAME",
        help="fixed strategies to evaluate (repeatable); default all of them",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of --limit (default 0)")
    parser.add_argument("--confidence", type=float, default=0.95, help="coverage of the intervals (default 0.95)")
    parser.add_argument("--limit", type=int, help="evaluate a random N pairs of each split (a quick look)")
    parser.add_argument("--score-scale", type=float, help="divide gold scores by this, e.g. 5.0 for 0-5 scores")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ...; default CUDA when available")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from poolhead.evaluation.checks import check_device
    from poolhead.evaluation.compare import compare
    from poolhead.evaluation.models import load_model_for_eval
    from poolhead.evaluation.report import to_markdown, write_report
    from poolhead.evaluation.sets import load_any_set
    from poolhead.evaluation.suite import skipped_suite_sets, suite_sets, summarize_suite
    from poolhead.evaluation.suite_report import suite_markdown, write_suite_report

    check_output_folder(args.output, "--output")
    if args.reference and args.suite is None:
        raise UserValueError("--reference is read by the suite summary; add --suite ood or a suite file")
    suite = [] if args.suite is None else suite_sets(args.suite, args.data_root)
    skipped = {} if args.suite is None else skipped_suite_sets(args.suite, args.data_root)
    for why in skipped.values():
        print(f"poolhead compare: {why}", file=sys.stderr)
    suite = [load_any_set(path, args.limit, args.score_scale) for path in suite]
    columns = assignments((args.data_columns or "").split(","), "--data-columns", "ROLE=COLUMN")
    # One template per option, never split: a template may hold a comma.
    templates = assignments(args.query_template, "--query-template", "STATUS=TEMPLATE") or None
    check_device(args.device)
    models = [load_model_for_eval(path, device=args.device) for path in args.model]
    references = [load_model_for_eval(path, device=args.device) for path in args.reference]
    pairs = reference_pairs(models, references, args.reference)  # checked before hours of encoding
    comparison = compare(
        [*models, *references],
        [*args.data, *suite],
        strategies=args.strategy,
        batch_size=args.batch_size,
        resamples=args.resamples,
        seed=args.seed,
        confidence=args.confidence,
        limit=args.limit,
        score_scale=args.score_scale,
        device=args.device,
        show_progress_bar=not args.no_progress,
        columns=columns,
        query_templates=templates,
    )
    print(to_markdown(comparison))
    paths = list(write_report(comparison, args.output).values())
    if suite:
        # Every set is listed; the macro-average is over the suite's score sets only.
        versus = {model.name: reference.name for model, reference in pairs}  # the names compare made unique
        summaries = summarize_suite(comparison, macro_over=[s.name for s in suite], references=versus)
        print("## suite " + args.suite + "\n\n" + suite_markdown(summaries, comparison.confidence, skipped))
        paths += write_suite_report(summaries, args.output, comparison.confidence, skipped=skipped).values()
    print("wrote " + ", ".join(str(path) for path in paths))
    from poolhead.evaluation.models import display_name
    from poolhead.export.results import write_export_results

    # Each evaluated export keeps its own scores, for the model-index of its card (poolhead push).
    for path in write_export_results(comparison, {source: display_name(source) for source in args.model}):
        print(f"wrote {path}")
    return 0


def assignments(pieces: list[str], option: str, form: str) -> dict[str, str]:
    """``["a=b", "c=d"]`` -> ``{a: b, c: d}``; a piece without ``=`` is named in the error."""
    pairs = {}
    for piece in pieces:
        if not piece.strip():
            continue
        key, sep, value = piece.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserValueError(f"{option} got {piece!r}; write {form}")
        pairs[key.strip()] = value.strip()
    return pairs


def reference_pairs(
    models: list[EmbeddingModel], references: list[EmbeddingModel], given: list[str]
) -> list[tuple[EmbeddingModel, EmbeddingModel]]:
    """(model, reference) pairs: one reference for every learned model, or one each, in order.

    A bare backbone (fixed strategies only) is no learned model, so it takes no reference.
    """
    if not references:
        return []
    learned = [m for m in models if m.encode is not None]
    if len(references) == 1:
        return [(m, references[0]) for m in learned]
    if len(references) != len(learned):
        raise UserValueError(
            f"--reference was given {len(references)} times ({', '.join(given)}) for {len(learned)} learned "
            f"models; give one reference for all of them or one per --model, in the same order"
        )
    return list(zip(learned, references, strict=True))
