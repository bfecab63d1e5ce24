"""MTEB scores an export loaded with ``poolhead.load`` (no remote code) as ``poolhead compare`` does.

Offline: the STS task is built from the local STS-B test split (``local_sts_task``), so mteb
fetches nothing; its cosine Spearman must equal compare's on the same pairs.
"""

from __future__ import annotations

import mteb  # the optional extra poolhead[mteb], which poolhead[dev] pulls in
import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def test_mteb_on_a_local_sts_task_gives_the_spearman_of_poolhead_compare(tiny_model_dir, data_dir, tmp_path):
    import poolhead
    from poolhead.evaluation.compare import compare
    from poolhead.evaluation.mteb_task import local_sts_task
    from poolhead.export import export_sentence_transformer

    export = export_sentence_transformer(tiny_model_dir, {"name": "attention", "num_heads": 2}, tmp_path / "export")
    task = local_sts_task(data_dir / "stsb")
    result = mteb.evaluate(poolhead.load(export, device="cpu"), tasks=[task], cache=None, show_progress_bar=False)
    (scores,) = result.task_results[0].scores["test"]

    comparison = compare(
        [str(export)],
        [str(data_dir / "stsb")],
        strategies=["mean"],
        resamples=10,
        device="cpu",
        show_progress_bar=False,
    )
    (row,) = [row for row in comparison.rows if row.kind == "model"]
    assert row.pairs == 1379
    assert scores["cosine_spearman"] == pytest.approx(row.metrics["spearman"].value / 100, abs=1e-4)
    assert result.task_results[0].task_name == "stsb"


def test_local_sts_task_names_a_missing_column(tmp_path):
    from poolhead.evaluation.mteb_task import local_sts_task

    (tmp_path / "test.csv").write_text("sentence1,sentence2,label\na,b,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['score'\]"):
        local_sts_task(tmp_path)
