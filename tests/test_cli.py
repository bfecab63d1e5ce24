"""The ``poolhead`` command: fit writes a complete run folder, validate/test reload its checkpoint,
and every shipped config parses (the Bio_ClinicalBERT one also trains, on a local hub stand-in)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch
import yaml
from standins import hub_cache_standin

from poolhead.cli import main, run_lightning
from poolhead.configs import FOLDER as CONFIG_FOLDER
from poolhead.configs import merged_settings
from poolhead.data import DatasetSource

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(CONFIG_FOLDER.glob("*.yaml"))
LOCAL_DATA = "../shared/data"  # the local copy of the configs' hub data sets, seen from the repository root
HUB_ID = "emilyalsentzer/Bio_ClinicalBERT"


@pytest.fixture(autouse=True)
def feature_cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLHEAD_CACHE_DIR", str(tmp_path / "feature-cache"))
    monkeypatch.setattr("sys.argv", ["poolhead"])  # pytest's own arguments are not the CLI's


pytestmark = pytest.mark.usefixtures("one_thread")


def read_metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def logged(rows: list[dict[str, str]], name: str) -> list[float]:
    return [float(row[name]) for row in rows if row.get(name)]


def test_fit_then_validate_and_test_from_the_checkpoint(tiny_model_dir, data_dir, tmp_path):
    runs = tmp_path / "runs"
    common = [
        f"--model.backbone={tiny_model_dir}",
        f"--data.path={data_dir / 'stsb'}",
        "--data.limit_eval_pairs=32",
        "--data.batch_size=16",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        f"--trainer.logger.init_args.save_dir={runs}",
        "--trainer.logger.init_args.name=tiny",
    ]
    fit = ["fit", *common, "--model.pooler_kwargs={num_heads: 2}", "--data.limit_train_pairs=64"]

    assert main([*fit, "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path}"]) == 0

    run = runs / "tiny" / "version_0"
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["best-epoch0-step4.ckpt", "last.ckpt"]  # 64 pairs / 16 = 4 steps
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert config["model"]["backbone"] == tiny_model_dir and config["data"]["limit_train_pairs"] == 64
    fit_spearman = logged(read_metrics(run), "val/spearman")
    assert len(fit_spearman) == 1 and -100 <= fit_spearman[0] <= 100

    best = run / "checkpoints" / "best-epoch0-step4.ckpt"
    assert main(["validate", f"--config={run / 'config.yaml'}", f"--ckpt_path={best}"]) == 0
    assert main(["test", f"--config={run / 'config.yaml'}", f"--ckpt_path={best}"]) == 0

    validate_run, test_run = runs / "tiny" / "version_1", runs / "tiny" / "version_2"
    # The reloaded checkpoint scores the same 32 validation pairs exactly as the model did in fit.
    assert logged(read_metrics(validate_run), "val/spearman") == pytest.approx(fit_spearman, abs=1e-4)
    test_spearman = logged(read_metrics(test_run), "test/spearman")
    assert len(test_spearman) == 1 and -100 <= test_spearman[0] <= 100


def assert_contains(parsed: dict, written: dict, where: str) -> None:
    """Every value the file sets is in the parsed config (which adds defaults)."""
    for key, value in written.items():
        assert key in parsed, f"{where}.{key} missing"
        if isinstance(value, dict):
            assert_contains(parsed[key], value, f"{where}.{key}")
        else:
            assert parsed[key] == value, f"{where}.{key}: {parsed[key]!r} != {value!r}"


@pytest.mark.parametrize("no_validation", ["--data.validation_split=null", "--trainer.limit_val_batches=0"])
def test_fit_without_validation_runs_every_epoch(tiny_model_dir, data_dir, tmp_path, no_validation, capsys):
    # Early stopping watches val/spearman; without validation it used to end the run with a
    # RuntimeError after the first epoch.
    runs = tmp_path / "runs"
    args = [
        "fit",
        f"--model.backbone={tiny_model_dir}",
        "--model.pooler_kwargs={num_heads: 2}",
        f"--data.path={data_dir / 'stsb'}",
        "--data.limit_train_pairs=32",
        "--data.batch_size=16",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.max_epochs=2",
        f"--trainer.logger.init_args.save_dir={runs}",
        "--trainer.logger.init_args.name=noval",
        no_validation,
    ]
    assert main(args) == 0
    run = runs / "noval" / "version_0"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4  # 2 epochs x 2 steps
    assert not logged(read_metrics(run), "val/spearman")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_every_shipped_config_parses(config, monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT)  # LOCAL_DATA is relative to the repository root
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"--config={config.stem}", f"--data.data_root={LOCAL_DATA}", "--print_config"])
    assert exit_info.value.code in (0, None)

    parsed = yaml.safe_load(capsys.readouterr().out)
    written = merged_settings(config)  # the file over its bases
    for section in ("model", "data", "trainer", "checkpoint", "early_stopping"):
        assert_contains(parsed[section], written.get(section, {}), f"{config.name}: {section}")
    data = parsed["data"]
    entries = data["datasets"] or [{"path": data["path"], "subset": data["subset"], "name": data["name"]}]
    for entry in entries:
        source = DatasetSource(**entry)
        assert not Path(source.path).exists(), f"{config.name}: {source.path} is not a hub id a user can reach"
        assert (REPO_ROOT / LOCAL_DATA / source.name).is_dir()  # what --data.data_root reads instead


def test_bioclinicalbert_config_trains_on_a_hub_cache_standin(offline_hub_cache, tmp_path, monkeypatch):
    config = CONFIG_FOLDER / "bioclinicalbert_attention_stsb.yaml"
    assert yaml.safe_load(config.read_text(encoding="utf-8"))["model"]["backbone"] == HUB_ID
    hub_cache_standin(offline_hub_cache, HUB_ID)
    monkeypatch.chdir(REPO_ROOT)
    args = [
        "fit",
        "--config=bioclinicalbert_attention_stsb",
        f"--data.data_root={LOCAL_DATA}",
        "--trainer.fast_dev_run=1",
        "--trainer.accelerator=cpu",
        f"--trainer.default_root_dir={tmp_path}",
        "--data.limit_train_pairs=64",
        "--data.limit_eval_pairs=64",
    ]

    cli = run_lightning(args)

    assert cli.trainer.global_step == 1  # one real optimiser step on the stand-in
    assert cli.model.hparams.backbone == HUB_ID and cli.model.backbone.hidden_size == 32
    assert cli.model.feature_cache is not None  # frozen backbone: features came from the cache
    assert cli.datamodule.tokenizer.tokenize("Patient has no fever")[:2] == ["patient", "has"]


def test_bioclinicalbert_config_without_the_model_fails_on_the_hub_id(offline_hub_cache, monkeypatch, capsys):
    # The negative control: the run above really used the stand-in, not some other copy. Offline,
    # a hub-only backbone is one line naming it, not transformers' chain of tracebacks.
    monkeypatch.chdir(REPO_ROOT)
    config, local = "bioclinicalbert_attention_stsb", f"--data.data_root={LOCAL_DATA}"
    assert main(["fit", f"--config={config}", local, "--trainer.fast_dev_run=1", "--trainer.accelerator=cpu"]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("poolhead ")]
    assert line.startswith(f"poolhead fit: error: could not load backbone '{HUB_ID}'")
    assert "couldn't find them in the cached files" in line and "HF_HUB_OFFLINE" in line


def test_a_shipped_config_runs_by_name_from_outside_the_repository(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ folder here: the name is found in the installed package
    args = [
        "fit",
        "--config",
        "minilm_attention_mixture",
        f"--data.data_root={data_dir}",
        f"--model.backbone={tiny_model_dir}",
        "--model.max_length=128",  # the tiny model's positions; the config's 256 is MiniLM's
        "--model.pooler_kwargs={num_heads: 2}",
        "--data.limit_train_pairs=32",
        "--data.limit_eval_pairs=16",
        "--trainer.fast_dev_run=1",
        "--trainer.accelerator=cpu",
    ]
    cli = run_lightning(args)
    assert cli.trainer.global_step == 1
    assert [source.path for source in cli.datamodule.sources] == [str(data_dir / "stsb"), str(data_dir / "msrp")]

    with pytest.raises(
        SystemExit, match="no shipped config of that name; give a path or one of .*minilm_attention_stsb"
    ):
        main(["fit", "--config", "minilm_attention_stbs"])


def test_data_root_names_the_missing_local_copy(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    expected = r"no local copy of 'sentence-transformers/stsb' at .*stsb; put its splits there"
    args = ["fit", "--config=minilm_attention_stsb", f"--data.data_root={tmp_path}", "--trainer.fast_dev_run=1"]
    assert main(args) == 2
    assert re.search(expected, capsys.readouterr().err)
