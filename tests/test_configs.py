"""The shipped configs: each resolves, through its bases, to the effective config recorded in
tests/fixtures/effective_configs/; a user's own file can start from a shipped base; and a wheel carries
them, so ``poolhead fit --config NAME`` runs by name from any folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from poolhead.cli import main
from poolhead.configs import FOLDER, merged_settings, shipped_bases, shipped_configs, with_bases

REPO_ROOT = Path(__file__).resolve().parents[1]
EFFECTIVE = Path(__file__).resolve().parent / "fixtures" / "effective_configs"
# The one line that varies between machines: the Lightning version print_config stamps on top.
VERSION_HEADER = re.compile(r"^# lightning\.pytorch==\S+\n")


def print_config(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return VERSION_HEADER.sub("", capsys.readouterr().out)


def recorded(name: str) -> str:
    return VERSION_HEADER.sub("", (EFFECTIVE / f"{name}.yaml").read_text(encoding="utf-8"))


def test_every_shipped_config_resolves_to_its_recorded_effective_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # by name, from outside the checkout
    assert shipped_configs() == sorted(path.stem for path in EFFECTIVE.glob("*.yaml"))
    differing = [name for name in shipped_configs() if print_config([f"--config={name}"], capsys) != recorded(name)]
    assert differing == []


def test_each_experiment_file_holds_only_what_its_bases_do_not(capsys):
    for name in shipped_configs():
        *bases, own = with_bases(FOLDER / f"{name}.yaml")
        inherited = merged_settings(bases[-1]) if bases else {}
        own_settings = yaml.safe_load(own.read_text(encoding="utf-8"))
        assert bases, f"{name} names no base"
        restated = [key for key, value in leaves(own_settings) if key != "base" and lookup(inherited, key) == value]
        assert restated == [], f"{name} restates its base's {restated}"


def leaves(settings: dict, prefix: str = ""):
    for key, value in settings.items():
        if isinstance(value, dict) and not key.endswith("kwargs"):  # a *_kwargs dict is one value
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def lookup(settings: dict, key: str):
    for part in key.split("."):
        if not isinstance(settings, dict) or part not in settings:
            return object()  # equal to nothing
        settings = settings[part]
    return settings


def test_a_users_own_config_starts_from_a_shipped_base(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine.yaml"
    mine.write_text("base: minilm_attention_stsb\nmodel:\n  lr: 0.0002\n", encoding="utf-8")
    effective = yaml.safe_load(print_config([f"--config={mine}"], capsys))
    assert effective["model"]["lr"] == 0.0002
    assert effective["model"]["pooler_kwargs"] == {"num_heads": 4, "dropout": 0.1}  # the shipped experiment's
    assert effective["trainer"]["max_epochs"] == 10  # base/frozen.yaml's, two bases down
    assert effective["trainer"]["logger"]["init_args"]["name"] == "minilm-attention-stsb"

    # A base by path, relative to the file that names it, over a shipped base by name.
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "mine.yaml").write_text("base: frozen\nmodel:\n  pooler: mean\n", encoding="utf-8")
    (tmp_path / "run.yaml").write_text("base: recipes/mine.yaml\ntrainer:\n  max_epochs: 2\n", encoding="utf-8")
    effective = yaml.safe_load(print_config(["--config", "run.yaml"], capsys))
    assert (effective["model"]["pooler"], effective["model"]["lr"], effective["trainer"]["max_epochs"]) == (
        "mean",
        0.001,
        2,
    )


def test_bases_that_go_round_in_a_circle_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text("base: b.yaml\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n", encoding="utf-8")
    assert main(["fit", "--config", "a.yaml", "--print_config"]) == 2
    assert "config bases go round in a circle (a.yaml -> b.yaml -> a.yaml)" in capsys.readouterr().err

    (tmp_path / "c.yaml").write_text("base: frozn\n", encoding="utf-8")
    assert main(["fit", "--config", "c.yaml", "--print_config"]) == 2
    assert re.search(
        r"no config 'frozn' beside it and no shipped config or base of that name.*frozen", capsys.readouterr().err
    )


def test_a_wheel_runs_a_shipped_config_by_name_from_any_folder(tmp_path):
    wheel = build_wheel(tmp_path / "source", tmp_path / "dist")
    packed = {name.rsplit("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist() if name.endswith("__init__.py")}
    in_source = {str(path.parent.relative_to(REPO_ROOT / "src")) for path in (REPO_ROOT / "src").rglob("__init__.py")}
    assert packed == in_source | {"poolhead/configs"}  # pyproject.toml lists every package
    assert {f"poolhead/configs/base/{name}.yaml" for name in shipped_bases()} <= set(zipfile.ZipFile(wheel).namelist())

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--quiet"]
    subprocess.run([*pip, str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Only the venv decides what imports: a PYTHONPATH at a checkout's src/ would win over the wheel.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    where = subprocess.run(
        [python, "-c", "import importlib.util; print(importlib.util.find_spec('poolhead').origin)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv)  # the wheel, not the checkout

    name = "minilm_attention_floor_stsb"
    run = subprocess.run(
        [venv / "bin" / "poolhead", "fit", "--config", name, "--print_config"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert VERSION_HEADER.sub("", run.stdout) == recorded(name)


def build_wheel(source: Path, dist: Path) -> Path:
    """A wheel of this checkout, built from a copy (the build writes beside its sources), offline."""
    for part in ("src", "configs"):
        shutil.copytree(REPO_ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for part in ("pyproject.toml", "README.md", "LICENSE"):
        (source / part).write_bytes((REPO_ROOT / part).read_bytes())
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet"]
    subprocess.run([*command, "--wheel-dir", str(dist), str(source)], check=True)
    (wheel,) = dist.glob("poolhead-*.whl")
    return wheel
