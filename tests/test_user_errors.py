"""Bad options and bad data, tried as a new user would: each is one sentence naming the value and the
fix, printed alone (no traceback) by the command, or a warning where the run can go on. Bugs keep
their tracebacks, and POOLHEAD_DEBUG=1 shows a user error's too."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from synthetic_pairs import LABEL_HEADER, write_rows

import poolhead
from poolhead.cli import main
from poolhead.data import SentencePairDataModule
from poolhead.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def quiet_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "feature-cache"))
    monkeypatch.setattr("sys.argv", ["poolhead"])
    monkeypatch.delenv("POOLHEAD_DEBUG", raising=False)


def pairs(count: int, label: bool = False, scale: float = 1.0) -> list[tuple]:
    return [(f"sentence {i} about cats", f"sentence {i} about dogs", (i % 2) if label else scale * ((i % 5) / 4))
            for i in range(count)]  # fmt: skip


def the_error(capsys, command: str) -> str:
    """The command's one error line; nothing else of ours, and no traceback, on stderr."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("poolhead ")]
    assert line.startswith(f"poolhead {command}: error: ")
    return line


def fit(tiny_model_dir: str, data: Path, *extra: str, tmp_path: Path) -> int:
    return main(["fit", f"--model.backbone={tiny_model_dir}", f"--data.path={data}", "--trainer.accelerator=cpu",
                 "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--data.batch_size=8",
                 f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
                 "--model.pooler_kwargs={num_heads: 2}", *extra])  # fmt: skip


@pytest.fixture
def score_data(tmp_path) -> Path:
    folder = tmp_path / "scores"
    write_rows(folder / "train.csv", pairs(24))
    write_rows(folder / "validation.csv", pairs(16))
    return folder


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--model.lr=-0.001", "lr=-0.001 must be a positive number"),
        (
            "--model.pooler_kwargs={num_head: 2}",
            "has no option 'num_head' (did you mean 'num_heads'?); its options are",
        ),
        ("--model.pooler_kwargs={num_heads: two}", "option num_heads='two' must be int"),
        ("--model.pooler_kwargs={num_heads: 2, dropout: -0.1}", "option dropout=-0.1 must be in [0, 1)"),
        ("--model.max_length=4096", "max_length=4096 is more than backbone"),
        ("--checkpoint.monitor=val/spearmn", "--checkpoint.monitor val/spearmn is not a metric of this run"),
    ],
)
def test_a_bad_option_is_one_line(option, expected, tiny_model_dir, score_data, tmp_path, capsys):
    assert fit(tiny_model_dir, score_data, option, tmp_path=tmp_path) == 2
    assert expected in the_error(capsys, "fit")
    assert not list(tmp_path.rglob("*.ckpt"))  # refused before training, not after an epoch


def test_a_one_pair_training_file_is_refused(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "one"
    write_rows(folder / "train.csv", pairs(1))
    write_rows(folder / "validation.csv", pairs(8))
    assert fit(tiny_model_dir, folder, tmp_path=tmp_path) == 2
    assert "has 1 pair(s); training needs at least 2" in the_error(capsys, "fit")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("sentence1\tsentence2\tscore\na\tb\t0.5\n", "is tab-separated"),
        ("sentence1,sentence2,score\n", "holds only a header line"),
    ],
)
def test_bad_files_are_one_line(content, expected, tiny_model_dir, score_data, tmp_path, capsys):
    (score_data / "train.csv").write_text(content, encoding="utf-8")
    assert fit(tiny_model_dir, score_data, tmp_path=tmp_path) == 2
    assert expected in the_error(capsys, "fit")


def test_a_malformed_jsonl_line_is_named(tiny_model_dir, tmp_path):
    folder = tmp_path / "jsonl"
    folder.mkdir()
    good = '{"sentence1": "a", "sentence2": "b", "score": 0.5}'
    (folder / "train.jsonl").write_text(f'{good}\n{good}\n{{"sentence1": "a", "sentence2":\n{good}\n')
    with pytest.raises(UserError, match=r"train.jsonl line 3 is not valid JSON"):
        SentencePairDataModule(str(folder), tokenizer=tiny_model_dir, validation_split=None).setup("fit")


def test_zero_to_one_scores_under_score_scale_5_are_refused(tiny_model_dir, tmp_path):
    folder = tmp_path / "mixed"
    write_rows(folder / "train.csv", pairs(16, scale=5.0))
    write_rows(folder / "validation.csv", pairs(16))  # already 0-1: dividing by 5 would be silently wrong
    data = SentencePairDataModule(str(folder), tokenizer=tiny_model_dir, score_scale=5.0)
    with pytest.raises(UserError, match=r"validation.csv: every score already lies in \[0, 1\]"):
        data.setup("fit")


def test_an_additive_float_mask_is_refused_not_binarised():
    tokens = torch.randn(2, 3, 8)
    additive = torch.tensor([[0.0, 0.0, -10000.0], [0.0, -10000.0, -10000.0]])
    with pytest.raises(UserError, match="additive"):
        poolhead.pool(tokens, additive, "mean")
    torch.testing.assert_close(poolhead.pool(tokens, (additive == 0).long(), "mean")[1], tokens[1, 0])


def test_compare_refuses_one_class_labels_and_too_few_pairs(tiny_model_dir, tmp_path, capsys):
    base = ["compare", "--model", tiny_model_dir, "--strategy", "mean", "--no-progress", "--output", str(tmp_path)]
    one_class = write_rows(tmp_path / "one.csv", [(a, b, 1) for a, b, _ in pairs(20)], LABEL_HEADER)
    assert main([*base, "--data", str(one_class)]) == 2
    assert "every test pair has label 1" in the_error(capsys, "compare")
    assert main([*base, "--data", str(write_rows(tmp_path / "three.csv", pairs(3)))]) == 2
    assert "has 3 test pair(s); a comparison needs at least 10" in the_error(capsys, "compare")
    assert main([*base, "--data", str(write_rows(tmp_path / "ok.csv", pairs(12))), "--batch-size", "0"]) == 2
    assert "batch size must be at least 1" in the_error(capsys, "compare")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(tiny_model_dir, tmp_path, capsys):
    data = write_rows(tmp_path / "ok.csv", pairs(12))
    assert (
        main(["compare", "--model", tiny_model_dir, "--data", str(data), "--output", str(tmp_path), "--device", "cuda"])
        == 2
    )
    assert "CUDA is not available here; use --device cpu" in the_error(capsys, "compare")
    assert main(["inspect", "a text", "--model", tiny_model_dir, "--device", "cuda"]) == 2
    assert "CUDA is not available" in the_error(capsys, "inspect")


def test_debug_flag_shows_the_traceback_and_bugs_keep_theirs(tiny_model_dir, score_data, tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_DEBUG", "1")
    with pytest.raises(UserError, match="must be a positive number"):
        fit(tiny_model_dir, score_data, "--model.lr=-1", tmp_path=tmp_path)
    monkeypatch.delenv("POOLHEAD_DEBUG")

    def bug(*args, **kwargs):
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(importlib.import_module("poolhead.evaluation.compare"), "compare", bug)
    with pytest.raises(ValueError, match="a bug"):
        main(["compare", "--model", tiny_model_dir, "--data", str(score_data), "--output", str(tmp_path)])


@pytest.mark.parametrize(
    "argv",
    [["predict", "--model", "m", "--input", "in.csv", "--output", "{file}"], ["push", "{empty}", "my-org/tiny"]],
    ids=["predict", "push"],
)
def test_predict_and_push_leave_user_errors_to_the_command_line(argv, tmp_path, monkeypatch, capsys):
    """Reported once by cli.main, as every command's: one line, and the traceback with POOLHEAD_DEBUG=1."""
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    argv = [arg.format(file=tmp_path / "a-file", empty=tmp_path / "empty") for arg in argv]
    assert main(argv) == 2
    the_error(capsys, argv[0])
    monkeypatch.setenv("POOLHEAD_DEBUG", "1")
    with pytest.raises(UserError):
        main(argv)


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--modle.lr", "1"], "--modle.lr"),
        (["--model.lr", "nan"], "model.lr"),
        (["--trainer.maxepochs", "3"], "maxepochs"),
    ],
)
def test_a_misspelt_or_impossible_lightning_option_is_one_line(option, named, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "minilm_attention_stsb", *option])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()  # not the 100-line usage
    assert line.startswith("poolhead fit: error: ") and named in line and "poolhead fit --help" in line


def test_lightning_does_not_advertise_on_every_command(tiny_model_dir, data_dir, tmp_path, capsys, caplog):
    args = ["validate", f"--model.backbone={tiny_model_dir}", "--model.pooler=mean", f"--data.path={data_dir / 'stsb'}"]
    assert main([*args, "--data.limit_eval_pairs=16", f"--trainer.default_root_dir={tmp_path}"]) == 0
    captured = capsys.readouterr()
    assert "litlogger" not in captured.out + captured.err + caplog.text
