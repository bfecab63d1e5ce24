"""A local data folder laid out as a hub dataset repository may name only files inside itself, as a model
folder may: README ``configs`` paths with '..', absolute paths, globs and symlinks that leave it are refused."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from poolhead.data import SentencePairDataModule
from poolhead.errors import UserValueError

pytestmark = pytest.mark.usefixtures("one_thread")
ROWS = [[f"A man plays the guitar {i}.", f"A man is playing a guitar {i}.", i % 5 / 5] for i in range(8)]


def write_csv(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["sentence1", "sentence2", "score"], *ROWS])
    return path


def repository(tmp_path: Path, train_path: str) -> Path:
    """A hub-layout folder ``repo`` whose train split is ``train_path``; a private file lies beside it."""
    folder = tmp_path / "repo"
    write_csv(folder / "data" / "train.csv")
    write_csv(tmp_path / "private" / "secret.csv")
    card = f"---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: {train_path!r}\n---\n"
    (folder / "README.md").write_text(card, encoding="utf-8")
    return folder


def setup_fit(folder: Path, tokenizer: str) -> SentencePairDataModule:
    pairs = SentencePairDataModule(str(folder), tokenizer=tokenizer, validation_split=None)
    pairs.setup("fit")
    return pairs


def test_a_repository_reading_its_own_files_loads(tmp_path, tiny_model_dir):
    assert len(setup_fit(repository(tmp_path, "data/*.csv"), tiny_model_dir).pairs["train"]) == len(ROWS)


@pytest.mark.parametrize(
    "train_path",
    ["../private/secret.csv", "data/../../private/*.csv", "ABSOLUTE", "**/../../private/*.csv", "hf://datasets/x/y"],
)
def test_data_files_outside_the_folder_are_refused_in_one_sentence(tmp_path, tiny_model_dir, train_path):
    train_path = str(tmp_path / "private" / "secret.csv") if train_path == "ABSOLUTE" else train_path
    folder = repository(tmp_path, train_path)
    with pytest.raises(UserValueError, match=r"README.md names data files outside its folder .*refusing to read"):
        setup_fit(folder, tiny_model_dir)


def test_a_glob_reaching_a_symlink_out_of_the_folder_is_refused(tmp_path, tiny_model_dir):
    folder = repository(tmp_path, "data/*.csv")
    (folder / "data" / "more.csv").symlink_to(tmp_path / "private" / "secret.csv")
    with pytest.raises(UserValueError, match=r"more.csv is a symlink to .*outside the data folder"):
        setup_fit(folder, tiny_model_dir)
