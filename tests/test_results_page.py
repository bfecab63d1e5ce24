"""docs/results.md is rendered from the records measuring scripts write, never typed by hand."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_results_page(monkeypatch, folder: Path):
    monkeypatch.setenv("POOLHEAD_RESULTS_DIR", str(folder))
    monkeypatch.syspath_prepend(str(SCRIPTS))
    sys.modules.pop("results_page", None)
    return importlib.import_module("results_page")


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
