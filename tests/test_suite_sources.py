"""``--suite ood`` outside this repository: a set the data root lacks is read from its hub id (MTEB's SemEval
STS sets) and decontaminated against STS-B on the fly, giving the same pairs as our local copies."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from poolhead.evaluation.pairs import load_evaluation_set
from poolhead.evaluation.suite import suite_sets

STS_SETS = ["sts12", "sts13", "sts14", "sts15", "sts16"]
STSB_SPLITS = ["train", "validation", "test"]
INJECTED = 20  # pairs per year and STS-B split that share a sentence with STS-B, as the hub's sets do


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


def write_repository(folder: Path, splits: dict[str, list[list]]) -> Path:
    """A folder laid out as a hub dataset repository: README.md with configs, one csv per split."""
    (folder / "data").mkdir(parents=True)
    entries = "".join(f"  - split: {split}\n    path: data/{split}.csv\n" for split in splits)
    (folder / "README.md").write_text(f"---\nconfigs:\n- config_name: default\n  data_files:\n{entries}---\n")
    for split, rows in splits.items():
        with open(folder / "data" / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([["sentence1", "sentence2", "score"], *rows])
    return folder


@pytest.fixture
def offline_hub(tmp_path, monkeypatch, data_dir) -> Path:
    """An offline machine whose datasets cache holds STS-B and the five MTEB STS sets (as stand-ins).

    Each STS stand-in is our decontaminated copy (scores back on 0-5) plus pairs that share a sentence
    with some STS-B split, one side padded with extra spaces; decontamination must drop exactly those.
    """
    import datasets.config
    from standins import hub_dataset_cache_standin

    cache = tmp_path / "hf" / "datasets"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    stsb = {split: read_rows(data_dir / "stsb" / f"{split}.csv") for split in STSB_SPLITS}
    hub_dataset_cache_standin(cache, "sentence-transformers/stsb", write_repository(tmp_path / "stsb", stsb))
    for year, name in enumerate(STS_SETS):
        ours = [[a, b, float(score) * 5] for a, b, score in read_rows(data_dir / name / "test.csv")]
        drawn = [row for split in STSB_SPLITS for row in stsb[split][year * INJECTED :][:INJECTED]]
        shared = [row[n % 2] for n, row in enumerate(drawn)]  # from every split, either side
        injected = [[f"  {s} ", ours[i][1], 2.5] if i % 2 else [ours[i][0], s, 4.0] for i, s in enumerate(shared)]
        mixed = [row for pair in zip(ours, injected, strict=False) for row in pair] + ours[len(injected) :]
        repository = write_repository(tmp_path / f"{name}-sts", {"test": mixed})
        hub_dataset_cache_standin(cache, f"mteb/{name}-sts", repository)
    return cache


def test_ood_suite_without_local_copies_gives_our_decontaminated_pairs(offline_hub, data_dir, tmp_path):
    data_root = tmp_path / "my-checkout-data"
    data_root.mkdir()
    shutil.copytree(data_dir / "msrp", data_root / "msrp")  # a local copy still wins
    sources = suite_sets("ood", data_root)
    assert sources[-1] == str(data_root / "msrp")  # semantoneg has no hub source: left out, not a path to nowhere
    for name, source in zip(STS_SETS, sources, strict=False):
        assert not source.startswith(str(data_root))
        evaluation_set = load_evaluation_set(source)
        ours = load_evaluation_set(data_dir / name)
        assert evaluation_set.name == name
        assert len(evaluation_set.test) == len(ours.test)  # 1,608 / 750 / 1,499 / 1,125 / 683
        assert evaluation_set.test.sentence1 == ours.test.sentence1
        assert evaluation_set.test.sentence2 == ours.test.sentence2
        assert evaluation_set.test.targets == pytest.approx(ours.test.targets, abs=1e-6)


def test_the_local_copy_is_read_when_the_data_root_has_it(data_dir):
    assert suite_sets("ood", data_dir) == [str(data_dir / name) for name in [*STS_SETS, "msrp", "semantoneg"]]


def test_the_ood_suite_without_semantoneg_scores_the_other_sets_and_says_so(
    offline_hub, data_dir, tiny_model_dir, tmp_path, capsys
):
    from standins import tiny_attention_export

    from poolhead.cli import main

    data_root = tmp_path / "my-checkout-data"
    data_root.mkdir()
    shutil.copytree(data_dir / "msrp", data_root / "msrp")  # GLUE's MRPC has no stand-in here
    model = tiny_attention_export(tiny_model_dir, tmp_path / "export")
    out = tmp_path / "report"
    quick = ["--limit", "40", "--resamples", "20", "--strategy", "mean", "--strategy", "cls", "--no-progress"]
    argv = ["compare", "--model", str(model), "--suite", "ood", "--data-root", str(data_root), "--output", str(out)]
    assert main([*argv, *quick]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("poolhead ")]
    assert said == [
        f"poolhead compare: semantoneg (SemAntoNeg's premise split from the CANNOT compilation) is on no hub and "
        f"--data-root {data_root} has no semantoneg/ folder, so it is not scored; to include it, give --data-root "
        f"FOLDER holding semantoneg/test.csv"
    ]
    document = json.loads((out / "suite.json").read_text(encoding="utf-8"))
    assert [row["set"] for row in document["rows"]] == [*STS_SETS, "msrp", "macro"]
    assert list(document["skipped"]) == ["semantoneg"]
    assert "Skipped: semantoneg (SemAntoNeg" in (out / "suite.md").read_text(encoding="utf-8")
    assert "semantoneg" not in (out / "comparison.csv").read_text(encoding="utf-8")

    from poolhead.evaluation.suite import skipped_suite_sets

    shutil.copytree(data_dir / "semantoneg", data_root / "semantoneg")  # the way to include it
    assert suite_sets("ood", data_root)[-1] == str(data_root / "semantoneg")
    assert skipped_suite_sets("ood", data_root) == {}
