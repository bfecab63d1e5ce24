"""Probes: what does a sentence vector keep? A linear classifier reads a label back from each embedding.

A probe set is single sentences with a class each (negated or not; a concept's assertion status:
present, absent, possible, ...). Each pooling's embeddings are scored the way MTEB scores its
classification tasks: logistic regression, here in stratified k-fold cross-validation so every
sentence gets an out-of-fold prediction. The folds come from the set and a seed only, so every
pooling is trained and tested on the same sentences and the differences between them are paired.

``balanced_accuracy`` (primary, ×100): the mean over classes of each class's recall (chance is 100
over the number of classes, whatever the class sizes). Its interval is a bootstrap over the
sentences of the out-of-fold predictions (the folds' fits are not redone per resample, so the
interval covers the test sampling, not the classifier's fitting noise).

With a ``concept`` column, ``query_accuracy`` scores the search a clinician runs: is a sentence
closer to the query of its own status ("no pneumonia" for absent, "pneumonia" for present; the
templates are an option) than to the query of every other status? A tie counts half; the figure
is balanced over the statuses that have a template, with a bootstrap over those sentences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from poolhead.errors import UserValueError
from poolhead.evaluation.stats import Estimate, PairResamples

METRICS = ("balanced_accuracy", "query_accuracy")
#: status -> the query a search for a concept of that status types; statuses without one are not queried
DEFAULT_QUERY_TEMPLATES = {"present": "{concept}", "absent": "no {concept}"}
FOLDS = 5


@dataclass
class ProbeSet:
    """Sentences with a class each, and optionally the concept each class is the status of.

    Args:
        name: shown in tables.
        sentence: the sentences.
        labels: one class per sentence (as written in the file: ``0`` / ``1``, ``absent``, ...).
        concepts: the concept of each sentence, for the query check; ``None`` for none.
        query_templates: status -> query with a ``{concept}`` placeholder.
        groups: sentences that must be held out together (a sentence and its own negation: split apart,
            the probe would label a held-out negation like its near-copy in training, below chance).
    """

    name: str
    sentence: list[str]
    labels: list[str]
    concepts: list[str] | None = None
    query_templates: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_QUERY_TEMPLATES))
    groups: list[int] | None = None
    kind: str = "probe"

    def __len__(self) -> int:
        return len(self.labels)

    def queried(self) -> list[int]:
        """Rows whose status has a query template (all others are left out of the query check)."""
        if self.concepts is None:
            return []
        return [i for i, label in enumerate(self.labels) if label in self.query_templates]

    def queries(self, row: int) -> dict[str, str]:
        """Status -> the query text for this row's concept."""
        concept = self.concepts[row]
        return {status: template.format(concept=concept) for status, template in self.query_templates.items()}

    def sentences(self) -> list[str]:
        """Every distinct text to encode: the sentences, then the queries of the query check."""
        queries = [query for row in self.queried() for query in self.queries(row).values()]
        return list(dict.fromkeys([*self.sentence, *queries]))

    def folds(self, seed: int) -> np.ndarray:
        """(N,) the fold each sentence is held out in; the same for every pooling of the set."""
        classes, counts = np.unique(self.labels, return_counts=True)
        if classes.size < 2 or counts.min() < 2:
            raise UserValueError(
                f"{self.name}: a probe needs at least 2 classes with 2 sentences each, got "
                f"{dict(zip(classes.tolist(), counts.tolist(), strict=True))}; add sentences of the rare classes"
            )
        splits = min(FOLDS, int(counts.min()))
        if self.groups is None:
            splitter = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
        else:
            splitter = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
        folds = np.zeros(len(self), dtype=np.int64)
        for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(self)), self.labels, self.groups)):
            folds[held_out] = fold
        return folds


def probe_set_from_columns(
    name: str, columns: dict[str, list], source: str, query_templates: dict[str, str] | None = None
) -> ProbeSet:
    """A :class:`ProbeSet` from columns named as roles (``sentence``, ``label``, optionally ``concept``)."""
    templates = dict(query_templates or DEFAULT_QUERY_TEMPLATES)
    if len(templates) < 2:
        raise UserValueError(
            f"the query check compares a sentence's own status's query with the others, but only {templates} is given; "
            f"give a template for at least two statuses, e.g. present='{{concept}}' and absent='no {{concept}}'"
        )
    broken = [status for status, template in templates.items() if "{concept}" not in template]
    if broken:
        raise UserValueError(
            f"query template {templates[broken[0]]!r} for {broken[0]!r} has no {{concept}} placeholder; "
            f"write e.g. 'no {{concept}}'"
        )
    labels = [str(label).strip() for label in columns["label"]]
    concepts = [str(concept) for concept in columns["concept"]] if "concept" in columns else None
    probe = ProbeSet(name, [str(s) for s in columns["sentence"]], labels, concepts, templates)
    if concepts is not None and not probe.queried():
        raise UserValueError(
            f"{source}: no label is one of the query templates' statuses ({', '.join(templates)}); the labels are "
            f"{', '.join(sorted(set(labels)))}; give templates for them, e.g. --query-template absent='no {{concept}}'"
        )
    return probe


def out_of_fold_predictions(embeddings: np.ndarray, labels: list[str], folds: np.ndarray, seed: int) -> np.ndarray:
    """(N,) each sentence's class as predicted by a probe trained on the other folds."""
    predicted = np.empty(len(labels), dtype=object)
    labels = np.asarray(labels, dtype=object)
    for fold in np.unique(folds):
        train = folds != fold
        # Standardised features: CLS and mean vectors differ in scale, and one regularisation strength should
        # mean the same for every pooling.
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
        probe.fit(embeddings[train], labels[train])
        predicted[~train] = probe.predict(embeddings[~train])
    return predicted


@dataclass(frozen=True)
class ProbeDraws:
    """What every pooling of one probe set shares: its folds and its bootstrap draws."""

    folds: np.ndarray
    sentences: PairResamples
    queries: PairResamples | None
    seed: int

    @property
    def confidence(self) -> float:
        return self.sentences.confidence

    @classmethod
    def of(cls, probe: ProbeSet, resamples: int, seed: int, confidence: float) -> ProbeDraws:
        queried = len(probe.queried())
        queries = PairResamples(queried, resamples, seed, confidence) if queried else None
        return cls(probe.folds(seed), PairResamples(len(probe), resamples, seed, confidence), queries, seed)


def probe_metrics(embeddings: Tensor, index: dict[str, int], probe: ProbeSet, draws: ProbeDraws) -> dict[str, Estimate]:
    """Balanced accuracy of a linear probe (and of the query check, with concepts) ×100, with intervals.

    Args:
        embeddings: (M, D) every encoded text; ``index`` maps a text to its row.
        probe: the set.
        draws: its folds and resamples (``ProbeDraws.of``), shared by every pooling.
    """
    vectors = embeddings[[index[s] for s in probe.sentence]].double().numpy()
    predicted = out_of_fold_predictions(vectors, probe.labels, draws.folds, draws.seed)
    classes, codes = np.unique(probe.labels, return_inverse=True)
    correct = (predicted == np.asarray(probe.labels, dtype=object)).astype(np.float64)
    metrics = {
        "balanced_accuracy": draws.sentences.estimate(
            balanced_accuracy_score(probe.labels, predicted.astype(str)),
            lambda idx: balanced_mean(correct[idx], codes[idx], classes.size),
        )
    }
    if draws.queries is not None:
        rows = probe.queried()
        scores = np.asarray([_query_score(embeddings, index, probe, row) for row in rows])
        _, statuses = np.unique([probe.labels[row] for row in rows], return_inverse=True)
        count = int(statuses.max()) + 1
        metrics["query_accuracy"] = draws.queries.estimate(
            float(balanced_mean(scores[None, :], statuses[None, :], count)[0]),
            lambda idx: balanced_mean(scores[idx], statuses[idx], count),
        )
    return metrics


def balanced_mean(scores: np.ndarray, classes: np.ndarray, count: int) -> np.ndarray:
    """(r,) the mean over classes of each class's mean score, per row of (r, N) scores and class codes.

    A class a resample did not draw is left out of that resample's mean.
    """
    per_class = []
    for code in range(count):
        members = classes == code
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class.append((scores * members).sum(axis=-1) / members.sum(axis=-1))
    stacked = np.stack(per_class)
    drawn = np.isfinite(stacked)
    return np.where(drawn, stacked, 0.0).sum(axis=0) / np.maximum(drawn.sum(axis=0), 1)


def _query_score(embeddings: Tensor, index: dict[str, int], probe: ProbeSet, row: int) -> float:
    """1 when the sentence is closer to its own status's query than to every other, ½ on a tie, else 0."""
    queries = probe.queries(row)
    own = probe.labels[row]
    sentence = embeddings[index[probe.sentence[row]]].double()
    texts = list(queries.values())
    similarities = F.cosine_similarity(sentence[None, :], embeddings[[index[t] for t in texts]].double(), dim=-1)
    by_status = dict(zip(queries, similarities.tolist(), strict=True))
    rival = max(value for status, value in by_status.items() if status != own)
    return float(np.sign(by_status[own] - rival) + 1) / 2
