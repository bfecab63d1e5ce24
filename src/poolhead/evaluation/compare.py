"""Learned heads against fixed pooling: every model beside every fixed strategy of its backbone.

``compare(models, datasets)`` encodes each distinct sentence once per backbone: one backbone
pass per batch serves all fixed strategies and every model whose embedding is its head on that
backbone (``EmbeddingModel.head_only``: exported poolhead heads, checkpoints); any other model
encodes the sentences once, exactly as its users would. Each evaluation set is then scored for every
row on the same seeded bootstrap resamples, and each model is tested against the best fixed
strategy of its backbone on that set (see :mod:`poolhead.evaluation.stats`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from poolhead.backbone import Backbone
from poolhead.cache.features import tokenizer_digest
from poolhead.errors import UserValueError
from poolhead.evaluation.checks import check_compare_options, check_device, check_evaluation_set
from poolhead.evaluation.classification import Thresholds, choose_thresholds, label_metrics
from poolhead.evaluation.contrast import METRICS as CONTRAST_METRICS
from poolhead.evaluation.contrast import ContrastSet, contrast_metrics
from poolhead.evaluation.fixed import FixedStrategies
from poolhead.evaluation.models import EmbeddingModel, display_name, load_model_for_eval
from poolhead.evaluation.pairs import EvaluationSet, Pairs
from poolhead.evaluation.probe import METRICS as PROBE_METRICS
from poolhead.evaluation.probe import ProbeDraws, ProbeSet, probe_metrics
from poolhead.evaluation.sets import AnySet, load_any_set
from poolhead.evaluation.stats import Difference, Estimate, PairResamples, paired_difference, score_metrics
from poolhead.training.finite import check_finite_embeddings

#: The metric that ranks rows and is tested, and every metric reported, per kind of data.
PRIMARY_METRIC = {
    "score": "spearman",
    "label": "accuracy",
    "contrast": "pairwise_accuracy",
    "probe": "balanced_accuracy",
}
METRICS = {
    "score": ("spearman", "pearson"),
    "label": ("accuracy", "f1"),
    "contrast": CONTRAST_METRICS,
    "probe": PROBE_METRICS,  # query_accuracy only where the set has concepts
}


@dataclass
class ComparisonRow:
    """One pooling (a fixed strategy or a model) on one evaluation set; figures ×100.

    ``versus`` and ``difference`` are set on model rows: the best fixed strategy of the same
    backbone on the same set, and the paired bootstrap difference against it.
    """

    dataset: str
    task: str
    backbone: str
    name: str
    strategy: str
    kind: str
    pairs: int
    metrics: dict[str, Estimate]
    thresholds: Thresholds | None = None
    best_fixed: bool = False
    versus: str | None = None
    difference: Difference | None = None

    @property
    def primary(self) -> Estimate:
        return self.metrics[PRIMARY_METRIC[self.task]]


@dataclass
class Comparison:
    """All rows of a comparison, with the bootstrap settings that produced them."""

    rows: list[ComparisonRow]
    resamples: int
    seed: int
    confidence: float
    notes: list[str] = field(default_factory=list)

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(row.dataset for row in self.rows))

    def rows_of(self, dataset: str) -> list[ComparisonRow]:
        return [row for row in self.rows if row.dataset == dataset]


@dataclass
class BackboneGroup:
    """Models whose backbones hold identical weights: their fixed strategies are computed once."""

    name: str
    backbone: Backbone
    models: list[EmbeddingModel]


def compare(
    models: Sequence[str | Path | EmbeddingModel],
    datasets: Sequence[str | Path | AnySet],
    strategies: Sequence[str] | None = None,
    batch_size: int = 32,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    limit: int | None = None,
    score_scale: float | None = None,
    device: str | torch.device | None = None,
    show_progress_bar: bool = True,
    columns: dict[str, str] | None = None,
    query_templates: dict[str, str] | None = None,
) -> Comparison:
    """Score every model and every fixed strategy of its backbone on every evaluation set.

    Args:
        models: paths / hub ids (see :func:`load_model_for_eval`) or ready :class:`EmbeddingModel`s.
            A plain backbone contributes its fixed strategies only.
        datasets: folders, files or hub ids (see :func:`~poolhead.evaluation.sets.load_any_set`) or loaded
            sets: sentence pairs, contrast sets or probe sets, told apart by their columns.
        strategies: fixed strategies to evaluate; default all of them.
        batch_size: texts per forward pass.
        resamples: bootstrap resamples for intervals and tests.
        seed: seed of the resamples; the same seed gives identical figures.
        confidence: coverage of the intervals.
        limit: keep a random ``limit`` pairs (chosen by ``seed``) of each split read from a path (a quick look).
        score_scale: divide gold scores read from a path by this, as in training (e.g. 5.0).
        device: where the models run; default CUDA when available.
        show_progress_bar: progress bars while encoding.
        columns: role -> column name, for every set read from a path (e.g. ``{"label": "status"}``).
        query_templates: status -> query of a probe set's query check (default present / absent).
    """
    if not models:
        raise UserValueError("compare needs at least one model: pass --model PATH")
    if not datasets:
        raise UserValueError("compare needs at least one evaluation set: pass --data PATH or --suite ood")
    check_compare_options(batch_size, resamples, confidence, limit)
    check_device(device)
    sets = [
        d if isinstance(d, (EvaluationSet, ContrastSet, ProbeSet))
        else load_any_set(d, limit, score_scale, seed, columns, query_templates)
        for d in datasets
    ]  # fmt: skip
    for eval_set in sets:
        if isinstance(eval_set, EvaluationSet):
            check_evaluation_set(eval_set.name, eval_set.kind, eval_set.test.targets)
    _make_unique(sets)
    loaded = [m if isinstance(m, EmbeddingModel) else load_model_for_eval(m, device=device) for m in models]
    _make_unique(loaded)
    sentences = list(dict.fromkeys(s for eval_set in sets for s in eval_set.sentences()))
    index = {sentence: i for i, sentence in enumerate(sentences)}
    shared = {s.name: _draws(s, resamples, seed, confidence) for s in sets}
    rows: list[ComparisonRow] = []
    for group in group_by_backbone(loaded):
        embedded = _encode_group(group, sentences, strategies, batch_size, device, show_progress_bar)
        for eval_set in sets:
            rows += _score_set(eval_set, group.name, embedded, index, shared[eval_set.name])
    return Comparison(rows, resamples, seed, confidence, _notes(sets))


def _draws(eval_set: AnySet, resamples: int, seed: int, confidence: float) -> PairResamples | ProbeDraws:
    """The bootstrap draws every row of a set shares: over pairs, over a contrast set's premises, or a probe's."""
    if isinstance(eval_set, ContrastSet):
        return PairResamples(eval_set.num_premises, resamples, seed, confidence)
    if isinstance(eval_set, ProbeSet):
        return ProbeDraws.of(eval_set, resamples, seed, confidence)
    return PairResamples(len(eval_set.test), resamples, seed, confidence)


def _notes(sets: Sequence[AnySet]) -> list[str]:
    return [
        f"{s.name}: no validation split, so the cosine thresholds were chosen on the test pairs themselves "
        f"(optimistic accuracy and F1)"
        for s in sets
        if s.kind == "label" and s.validation is None
    ]


def group_by_backbone(models: Sequence[EmbeddingModel]) -> list[BackboneGroup]:
    """Group models by the exact weights, token limit and tokenizer of their backbones, not by their paths."""
    groups: dict[str, BackboneGroup] = {}
    for model in models:
        tokenizer = tokenizer_digest(model.backbone.tokenizer)[:16]
        key = f"{model.backbone.fingerprint()}-{model.backbone.max_length}-{tokenizer}"
        if key not in groups:
            groups[key] = BackboneGroup(display_name(model.backbone.name_or_path), model.backbone, [])
        groups[key].models.append(model)
    names = [group.name for group in groups.values()]
    for key, group in groups.items():
        if names.count(group.name) > 1:
            group.name = f"{group.name}@{key[:8]}"
    return list(groups.values())


def _make_unique(items: Sequence[EmbeddingModel | EvaluationSet]) -> None:
    seen: dict[str, int] = {}
    for item in items:
        seen[item.name] = seen.get(item.name, 0) + 1
        if seen[item.name] > 1:
            item.name = f"{item.name} ({seen[item.name]})"


#: Keys of heads pooled beside the fixed strategies (no strategy name contains a colon).
HEAD_PREFIX = "model:"
#: (row name, strategy, kind, embeddings of every sentence)
Embedded = tuple[str, str, str, Tensor]


def _encode_group(
    group: BackboneGroup,
    sentences: list[str],
    strategies: Sequence[str] | None,
    batch_size: int,
    device: str | torch.device | None,
    show_progress_bar: bool,
) -> list[Embedded]:
    heads = {HEAD_PREFIX + m.name: m.pooler for m in group.models if m.head_only and m.encode is not None}
    fixed = FixedStrategies(group.backbone, strategies, device=device, heads=heads)
    pooled = fixed.encode(sentences, batch_size, show_progress_bar)
    embedded = [(name, name, "fixed", e) for name, e in pooled.items() if not name.startswith(HEAD_PREFIX)]
    for model in group.models:
        if HEAD_PREFIX + model.name in pooled:
            embedded.append((model.name, model.strategy or "?", "model", pooled[HEAD_PREFIX + model.name]))
        elif model.encode is not None:
            embeddings = model.encode(sentences, batch_size, show_progress_bar)
            embedded.append((model.name, model.strategy or "?", "model", embeddings))
    refuse_nonfinite(group, embedded, sentences)
    return embedded


def refuse_nonfinite(group: BackboneGroup, embedded: list[Embedded], sentences: list[str]) -> None:
    """Refuse NaN or infinite embeddings before any figure: a NaN similarity still yields a printed Spearman."""
    sources = {model.name: model.source for model in group.models}
    for name, _, kind, embeddings in embedded:
        where = f"model {name} ({sources[name]})" if kind == "model" else f"{name} pooling of backbone {group.name}"
        check_finite_embeddings(embeddings, sentences, where)


def pair_similarities(embeddings: Tensor, index: dict[str, int], pairs: Pairs) -> np.ndarray:
    """(N,) cosine similarity of each pair, in float64."""
    first = embeddings[[index[s] for s in pairs.sentence1]].double()
    second = embeddings[[index[s] for s in pairs.sentence2]].double()
    return F.cosine_similarity(first, second, dim=-1).numpy()


def _score_set(
    eval_set: AnySet,
    backbone: str,
    embedded: list[Embedded],
    index: dict[str, int],
    resamples: PairResamples | ProbeDraws,
) -> list[ComparisonRow]:
    rows = [_score_row(eval_set, backbone, item, index, resamples) for item in embedded]
    fixed = [row for row in rows if row.kind == "fixed"]
    # The best fixed strategy is picked on the test pairs: hindsight favours the baseline, so
    # a model that beats it is tested conservatively.
    best = max(fixed, key=lambda row: -math.inf if math.isnan(row.primary.value) else row.primary.value)
    best.best_fixed = True
    for row in rows:
        if row.kind == "model":
            row.versus = best.name
            row.difference = paired_difference(row.primary, best.primary, resamples.confidence)
    return rows


def _score_row(
    eval_set: AnySet, backbone: str, item: Embedded, index: dict[str, int], resamples: PairResamples | ProbeDraws
) -> ComparisonRow:
    name, strategy, kind, embeddings = item
    if isinstance(eval_set, ContrastSet):
        first = embeddings[[index[s] for s in eval_set.premise]].double()
        second = embeddings[[index[s] for s in eval_set.hypothesis]].double()
        similarities = F.cosine_similarity(first, second, dim=-1).numpy()
        metrics = contrast_metrics(similarities, eval_set, resamples)
        return ComparisonRow(eval_set.name, "contrast", backbone, name, strategy, kind, len(eval_set), metrics)
    if isinstance(eval_set, ProbeSet):
        metrics = probe_metrics(embeddings, index, eval_set, resamples)
        return ComparisonRow(eval_set.name, "probe", backbone, name, strategy, kind, len(eval_set), metrics)
    similarities = pair_similarities(embeddings, index, eval_set.test)
    thresholds = None
    if eval_set.kind == "score":
        metrics = score_metrics(similarities, eval_set.test.targets, resamples)
    else:
        if eval_set.validation is not None:
            validation = pair_similarities(embeddings, index, eval_set.validation)
            thresholds = choose_thresholds(validation, eval_set.validation.targets, "validation")
        else:
            thresholds = choose_thresholds(similarities, eval_set.test.targets, "test")
        metrics = label_metrics(similarities, eval_set.test.targets, thresholds, resamples)
    return ComparisonRow(
        eval_set.name, eval_set.kind, backbone, name, strategy, kind, len(eval_set.test), metrics, thresholds
    )
