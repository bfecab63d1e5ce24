"""sentence-transformers' own trainer and evaluator, run the same way by every script that compares against them.

Imported by bench_train.py, bench_finetune.py and sweep_finetune.py (scripts/ is on the path of
a script run as ``python scripts/NAME.py``).
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path


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
