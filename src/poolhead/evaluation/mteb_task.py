"""A local sentence-pair file as an MTEB STS task, so ``mteb.evaluate`` scores a model on it offline.

MTEB tasks load their data from the hub; :func:`local_sts_task` builds one whose ``load_data``
reads local files instead (the same csv / jsonl / parquet files ``poolhead compare`` reads:
columns sentence1, sentence2, score). With ``poolhead.load`` the model runs poolhead's installed
code, no ``trust_remote_code``::

    import mteb, poolhead
    result = mteb.evaluate(poolhead.load("export"), tasks=[local_sts_task("../shared/data/stsb")], cache=None)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from poolhead.data.files import read_local_split
from poolhead.errors import UserValueError


def local_sts_task(path: str | Path, split: str = "test", name: str | None = None, max_score: float = 1.0) -> Any:
    """An MTEB ``AbsTaskSTS`` over ``split`` of a local folder (or one file) of scored sentence pairs.

    Args:
        path: a folder with ``{split}.csv`` (or .jsonl / .parquet), or one file.
        split: the split MTEB evaluates.
        name: the task's name in MTEB's results; default the folder or file name.
        max_score: the top of the gold scale (1.0 for poolhead's [0, 1] scores, 5.0 for raw STS).
            Spearman does not depend on it; MTEB records it with the task.
    """
    try:
        from datasets import Dataset, DatasetDict
        from mteb.abstasks.sts import AbsTaskSTS
        from mteb.abstasks.task_metadata import TaskMetadata
    except ImportError as error:
        raise ImportError("local_sts_task needs mteb: pip install 'poolhead[mteb]'") from error

    path = Path(path)
    task_name = name or (path.stem if path.is_file() else path.name)
    raw = read_local_split(str(path), split, "test")
    columns: dict[str, list[Any]] = {"sentence1": [], "sentence2": [], "score": []}
    for part in raw:
        missing = [c for c in columns if c not in part.columns]
        if missing:
            raise UserValueError(
                f"{part.source} lacks column(s) {missing}; an STS task needs sentence1, sentence2, score"
            )
        for column in columns:
            columns[column] += part.columns[column]
    columns["score"] = [float(score) for score in columns["score"]]

    class LocalSTS(AbsTaskSTS):
        min_score = 0
        metadata = TaskMetadata(
            name=task_name,
            dataset={"path": str(path), "revision": "local"},
            description=f"Scored sentence pairs read from {path} (split {split}).",
            reference=None,
            type="STS",
            category="t2t",
            modalities=["text"],
            eval_splits=[split],
            eval_langs=["eng-Latn"],
            main_score="cosine_spearman",
            date=None,
            domains=None,
            task_subtypes=None,
            license=None,
            annotations_creators=None,
            dialect=None,
            sample_creation=None,
            bibtex_citation="",
        )

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            # The pairs were read above, from local files: nothing is fetched from the hub.
            self.dataset = DatasetDict({split: Dataset.from_dict(columns)})
            self.data_loaded = True

    LocalSTS.max_score = max_score
    return LocalSTS()
