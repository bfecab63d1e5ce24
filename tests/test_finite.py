"""A non-finite number is never a result: a diverged fit stops at its first NaN, and compare, predict,
export and push refuse NaN weights or embeddings, naming where they came from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from quiet_fit import saved_checkpoint

from poolhead.cli import main
from poolhead.training.checkpoints import read_checkpoint
from poolhead.training.finite import nonfinite_tensors
from poolhead.training.module import PoolingModule

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def feature_cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "feature-cache"))
    monkeypatch.setattr("sys.argv", ["poolhead"])


def only_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("poolhead ")]
    return line


def poison(module: torch.nn.Module) -> None:
    """Every weight of ``module`` NaN: what a diverged fit leaves behind."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.fill_(float("nan"))


def test_a_diverging_fit_stops_at_its_first_nan_and_saves_no_nan_checkpoint(tiny_model_dir, data_dir, tmp_path, capsys):
    runs = tmp_path / "runs"
    fit = ["fit", f"--model.backbone={tiny_model_dir}", "--model.pooler_kwargs={num_heads: 2}",
           "--model.lr=1e30", "--model.warmup_ratio=0", f"--data.path={data_dir / 'stsb'}",
           "--data.limit_train_pairs=64", "--data.limit_eval_pairs=32", "--data.batch_size=16",
           "--trainer.max_epochs=3", "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false",
           f"--trainer.logger.init_args.save_dir={runs}", f"--trainer.default_root_dir={tmp_path}"]  # fmt: skip
    assert main(fit) == 2
    line = only_line(capsys)
    assert "training stopped at step" in line and "--model.lr" in line
    saved = list(runs.rglob("*.ckpt"))
    for path in saved:  # nothing non-finite on disk: a best/last checkpoint would be exported
        assert nonfinite_tensors(read_checkpoint(path)["state_dict"]) == [], path


def test_a_checkpoint_with_nan_weights_is_never_written(tiny_model_dir, tmp_path):
    model = PoolingModule(backbone=tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2})
    poison(model.pooler)
    callbacks = model.configure_callbacks()  # what fit adds to the trainer's callbacks
    with pytest.raises(ValueError, match="pooler.scorer.weight"):
        saved_checkpoint(model, tmp_path / "nan.ckpt", callbacks=callbacks)
    assert not (tmp_path / "nan.ckpt").exists()


def head_filled_with(value: float):
    from poolhead.pooling import AttentionPooling

    head = AttentionPooling(32, num_heads=2)
    with torch.no_grad():
        head.scorer.weight.fill_(value)
    return head


@pytest.fixture(scope="module")
def nan_export(tiny_model_dir, tmp_path_factory) -> Path:
    """An export of a head whose weights are NaN (a diverged fit exported before poolhead refused it).

    Export refuses NaN weights now, so a finite head is exported and its weights file poisoned after.
    """
    from safetensors.torch import load_file, save_file

    from poolhead.export import export_sentence_transformer

    folder = export_sentence_transformer(tiny_model_dir, head_filled_with(0.5), tmp_path_factory.mktemp("e") / "nan")
    (weights,) = [path for path in folder.glob("*/model.safetensors")]  # the head's; the backbone's is at the top
    save_file({name: torch.full_like(t, float("nan")) for name, t in load_file(weights).items()}, weights)
    return folder


@pytest.fixture(scope="module")
def overflowing_export(tiny_model_dir, tmp_path_factory) -> Path:
    """Finite but huge weights: the attention scores overflow, so every embedding is NaN."""
    from poolhead.export import export_sentence_transformer

    return export_sentence_transformer(tiny_model_dir, head_filled_with(3e38), tmp_path_factory.mktemp("e") / "huge")


@pytest.fixture(scope="module")
def score_set(tmp_path_factory) -> Path:
    from synthetic_pairs import write_pairs

    folder = tmp_path_factory.mktemp("sts-mini")
    write_pairs(folder / "test.csv", "score", 24, 0)
    return folder


@pytest.mark.parametrize("export", ["nan_export", "overflowing_export"])
def test_compare_refuses_nan_embeddings_and_writes_no_figure(export, score_set, tmp_path, capsys, request):
    folder = request.getfixturevalue(export)
    out = tmp_path / "report"
    command = ["compare", "--model", str(folder), "--data", str(score_set), "--output", str(out)]
    assert main([*command, "--resamples", "20", "--no-progress"]) == 2
    line = only_line(capsys)
    assert f"model {folder.name} ({folder})" in line
    assert re.search(r"NaN or infinite embeddings for (\d+) of \1 texts", line)  # every sentence of the set
    assert not out.exists() and not (folder / "poolhead_compare.json").exists()


def predict(folder: Path, corpus: Path, out: Path) -> list[str]:
    return ["predict", "--model", str(folder), "--input", str(corpus), "--output", str(out),
            "--accelerator", "cpu", "--devices", "1", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.csv"
    path.write_text("text\nA dog runs.\nA cat sleeps.\n", encoding="utf-8")
    return path


def test_predict_refuses_nan_weights_and_nan_embeddings(nan_export, overflowing_export, corpus, tmp_path, capsys):
    assert main(predict(nan_export, corpus, tmp_path / "a")) == 2
    line = only_line(capsys)
    assert f"model {nan_export} holds NaN or infinite weights" in line and "scorer.weight" in line
    assert main(predict(overflowing_export, corpus, tmp_path / "b")) == 2
    line = only_line(capsys)
    assert f"model {overflowing_export} gives NaN or infinite embeddings for 2 of 2 texts" in line
    assert "'A dog runs.'" in line
    assert not list((tmp_path / "b").glob("*.parquet"))  # no shard a rerun would skip as done


def test_export_and_push_refuse_nan_weights(tiny_model_dir, nan_export, tmp_path, capsys, monkeypatch):
    model = PoolingModule(backbone=tiny_model_dir, pooler="attention", pooler_kwargs={"num_heads": 2})
    poison(model.pooler)
    # written without the fit's callbacks, as checkpoints were before the fit refused them
    checkpoint = saved_checkpoint(model, tmp_path / "diverged.ckpt")
    assert main(["export", str(checkpoint), str(tmp_path / "out")]) == 2
    line = only_line(capsys)
    assert f"checkpoint {checkpoint} holds NaN or infinite weights ('pooler.scorer.weight')" in line
    assert not (tmp_path / "out").exists()

    from huggingface_hub import HfApi

    uploads = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, *a, **k: uploads.append(a))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, *a, **k: uploads.append(k))
    assert main(["push", str(nan_export), "my-org/diverged"]) == 2
    line = only_line(capsys)
    assert f"of export {nan_export} holds NaN or infinite weights" in line and uploads == []


def test_the_python_export_of_a_nan_head_is_refused_and_leaves_no_folder(tiny_model_dir, tmp_path):
    from poolhead.errors import UserValueError
    from poolhead.export import export_sentence_transformer

    with pytest.raises(UserValueError, match=r"holds NaN or infinite weights \(.*scorer\.weight"):
        export_sentence_transformer(tiny_model_dir, head_filled_with(float("nan")), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its partial twin


def test_push_refuses_a_nan_score_in_the_compare_results(overflowing_export, tmp_path, capsys, monkeypatch):
    import json
    import shutil

    from huggingface_hub import HfApi

    folder = Path(shutil.copytree(overflowing_export, tmp_path / "export"))
    results = {"model": "export", "results": [{"dataset": "sts-mini", "task": "score", "pairs": 24,
                                               "metrics": {"spearman": float("nan")}}]}  # fmt: skip
    (folder / "poolhead_compare.json").write_text(json.dumps(results), encoding="utf-8")
    uploads = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, *a, **k: uploads.append(a))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, *a, **k: uploads.append(k))
    assert main(["push", str(folder), "my-org/diverged"]) == 2
    line = only_line(capsys)
    assert "poolhead_compare.json gives sts-mini a non-finite spearman" in line and uploads == []
