"""sentence-transformers' own trainer and evaluator, run the same way by every script that compares against them.

Imported by bench_train.py, bench_finetune.py and reproduce_results.py (scripts/
is on the path of a script run as ``python scripts/NAME.py``).
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path

#: sentence-transformers' recipe for fine-tuning on STS-B, as bench_finetune.py runs it.
RECIPE = {"batch_size": 32, "lr": 2e-5}


def read_split(data_dir: Path | str, name: str) -> dict[str, list]:
    """An STS-style csv split as the columns sentence-transformers' datasets take."""
    with open(Path(data_dir) / f"{name}.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        "sentence1": [r["sentence1"] for r in rows],
        "sentence2": [r["sentence2"] for r in rows],
        "score": [float(r["score"]) for r in rows],
    }


def train_cosent(
    model, train: dict[str, list], *, epochs: int, batch_size: int, lr: float, seed: int = 42, weight_decay: float = 0.0
):
    """``SentenceTransformerTrainer`` with CoSENT, 10 % warmup and linear decay, the Trainer's other
    defaults (gradient clipping at norm 1), nothing saved, logged or evaluated while training.

    Returns the trainer (its ``state`` holds the steps taken).
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss

    with tempfile.TemporaryDirectory(prefix="st-reference-") as output_dir:
        training_args = SentenceTransformerTrainingArguments(
            output_dir=output_dir,
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=lr,
            weight_decay=weight_decay,
            warmup_ratio=0.1,
            seed=seed,
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=training_args, train_dataset=Dataset.from_dict(train), loss=CoSENTLoss(model)
        )
        trainer.train()
    return trainer


def spearman_on_test(model, data_dir: Path | str) -> float:
    """Spearman ×100 of cosine similarity on the test split, by ``EmbeddingSimilarityEvaluator``."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    test = read_split(data_dir, "test")
    evaluator = EmbeddingSimilarityEvaluator(test["sentence1"], test["sentence2"], test["score"], name="test")
    results = evaluator(model)
    return 100 * next(v for k, v in results.items() if k.endswith("spearman_cosine"))


def fine_tuned_reference(out: Path, backbone: str, data_dir: Path | str, *, epochs: int, seed: int) -> Path:
    """sentence-transformers' own fine-tune of ``backbone`` on ``data_dir``'s train split, saved in ``out``.

    Its trainer and recipe (``train_cosent`` with ``RECIPE``): the model as shipped (for MiniLM:
    Transformer > mean Pooling > Normalize), CoSENT. A folder already holding the saved model is
    kept; the model is saved beside ``out`` first and moved in whole, so an interrupted run leaves
    no folder that looks finished.
    """
    from sentence_transformers import SentenceTransformer

    from poolhead.backbone import resolve_model_path

    out = Path(out)
    if (out / "modules.json").is_file():
        return out
    model = SentenceTransformer(resolve_model_path(backbone))
    train_cosent(model, read_split(data_dir, "train"), epochs=epochs, seed=seed, **RECIPE)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save(str(partial))
    os.replace(partial, out)
    return out
