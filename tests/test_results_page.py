"""docs/results.md is rendered from the records measuring scripts write, never typed by hand."""

from __future__ import annotations

import importlib
import json
import shlex
import sys
from pathlib import Path

from poolhead.configs import config_path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"


def load_results_page(monkeypatch, folder: Path):
    monkeypatch.setenv("POOLHEAD_RESULTS_DIR", str(folder))
    monkeypatch.syspath_prepend(str(SCRIPTS))
    sys.modules.pop("harness.results_page", None)  # it reads POOLHEAD_RESULTS_DIR when imported
    return importlib.import_module("harness.results_page")


def test_a_record_lands_on_the_page_with_its_command_and_machine(monkeypatch, tmp_path):
    page = load_results_page(monkeypatch, tmp_path)
    page.record(
        "bench_x", "Speed of x", "| a | b |\n|---|---|\n| 1 | 2 |", command="python scripts/bench_x.py", data={"a": 1}
    )
    saved = json.loads((tmp_path / "results" / "bench_x.json").read_text())
    assert saved["command"] == "python scripts/bench_x.py" and saved["data"] == {"a": 1}
    text = (tmp_path / "results.md").read_text()
    assert "## Speed of x" in text and "python scripts/bench_x.py" in text and "| 1 | 2 |" in text
    assert f"Machine: {saved['machine']}." in text


def test_sections_follow_the_page_order_then_names(monkeypatch, tmp_path):
    page = load_results_page(monkeypatch, tmp_path)
    for name in ("bench_train", "zeta", "suite_minilm", "penalty_a"):
        page.record(name, f"title {name}", "body", command="x")
    text = page.render()
    positions = [text.index(f"## title {n}") for n in ("suite_minilm", "penalty_a", "bench_train", "zeta")]
    assert positions == sorted(positions)


def test_what_a_script_printed_is_recorded_as_printed(monkeypatch, tmp_path, capsys):
    page = load_results_page(monkeypatch, tmp_path)
    with page.printed_text() as out:
        print("method  wall s")
    assert out.getvalue() == "method  wall s\n"
    assert page.text_block(out.getvalue()) == "```text\nmethod  wall s\n```"


def test_every_record_names_a_command_that_exists_and_measure_lists_it(monkeypatch):
    sys.path.insert(0, str(SCRIPTS))
    measure = importlib.import_module("measure")
    records = sorted((REPO / "docs" / "results").glob("*.json"))
    assert records
    for path in records:
        entry = json.loads(path.read_text(encoding="utf-8"))
        writer = measure.writer_of(path.stem)
        assert writer is not None, f"{path.name}: no measurement in scripts/measure.py writes it"
        for command in entry["command"].replace(" && ", "\n").splitlines():
            words = shlex.split(command)
            assert words[:2] == ["python", f"scripts/{writer.script}"], f"{path.name}: {command}"
            assert (REPO / words[1]).is_file()
            if "--config" in words:
                assert config_path(words[words.index("--config") + 1]) is not None, f"{path.name}: {command}"
