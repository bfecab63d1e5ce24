"""An output path that is a file is refused in one sentence before any work: every command checks its
outputs before loading a model (the model named here does not even exist, and is never looked at)."""

from __future__ import annotations

import pytest

from poolhead.cli import main


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "results.txt"
    path.write_text("a user's file\n", encoding="utf-8")
    return path


def only_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("poolhead ")]
    return line


@pytest.mark.parametrize(
    "command",
    [
        ["compare", "--model", "MISSING", "--data", "MISSING", "--output", "OUT"],
        ["inspect", "a text", "--model", "MISSING", "--output", "OUT"],
        ["predict", "--model", "MISSING", "--input", "MISSING", "--output", "OUT"],
        ["predict", "--model", "MISSING", "--input", "MISSING", "--output", "OUT/inside"],
        ["export", "MISSING", "OUT"],
        ["export", "MISSING", "OUT/inside"],
    ],
)
def test_an_output_in_the_way_is_refused_before_the_model_loads(command, a_file, tmp_path, capsys):
    missing = str(tmp_path / "missing.ckpt")
    argv = [arg.replace("OUT", str(a_file)).replace("MISSING", missing) for arg in command]
    assert main(argv) == 2
    line = only_line(capsys)
    assert f"{a_file} is a file" in line and "missing.ckpt" not in line
    assert a_file.read_text(encoding="utf-8") == "a user's file\n"


def test_export_refuses_a_full_folder_before_reading_the_checkpoint(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("keep me\n", encoding="utf-8")
    assert main(["export", str(tmp_path / "missing.ckpt"), str(tmp_path / "out")]) == 2
    assert "is not empty" in only_line(capsys)
