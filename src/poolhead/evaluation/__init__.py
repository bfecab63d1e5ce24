"""Evaluation of learned pooling heads against fixed pooling: statistics, comparison, reports, inspection.

``compare(models, datasets)`` scores each model beside every fixed strategy of its backbone
(Spearman/Pearson or accuracy/F1 ×100, bootstrap intervals, a paired test against the best
fixed strategy); ``write_report`` writes it as Markdown, CSV and a forest plot;
``summarize_suite`` reads several sets as one verdict (macro-average Δ, worst set).
``inspect_text(text, model)`` shows how the strategies and a learned head see one text.
"""

from poolhead.evaluation.classification import Thresholds, best_accuracy_threshold, best_f1_threshold, label_metrics
from poolhead.evaluation.compare import Comparison, ComparisonRow, compare
from poolhead.evaluation.fixed import FixedStrategies
from poolhead.evaluation.inspect import TextInspection, format_inspection, inspect_text, plot_inspection
from poolhead.evaluation.models import EmbeddingModel, load_model_for_eval
from poolhead.evaluation.pairs import EvaluationSet, Pairs, load_evaluation_set
from poolhead.evaluation.plots import plot_comparison, plot_suite
from poolhead.evaluation.report import to_markdown, write_csv, write_report
from poolhead.evaluation.stats import Difference, Estimate, PairResamples, paired_difference, score_metrics
from poolhead.evaluation.suite import SuiteSummary, suite_sets, summarize_suite
from poolhead.evaluation.suite_report import write_suite_report

__all__ = [
    "Comparison",
    "ComparisonRow",
    "Difference",
    "EmbeddingModel",
    "Estimate",
    "EvaluationSet",
    "FixedStrategies",
    "PairResamples",
    "Pairs",
    "SuiteSummary",
    "TextInspection",
    "Thresholds",
    "best_accuracy_threshold",
    "best_f1_threshold",
    "compare",
    "format_inspection",
    "inspect_text",
    "label_metrics",
    "load_evaluation_set",
    "load_model_for_eval",
    "paired_difference",
    "plot_comparison",
    "plot_inspection",
    "plot_suite",
    "score_metrics",
    "suite_sets",
    "summarize_suite",
    "to_markdown",
    "write_csv",
    "write_report",
    "write_suite_report",
]
