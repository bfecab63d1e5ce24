"""scripts/harness: timings report the measured work's CPU seconds beside the wall-clock, and a fresh
process reports its own results, CPU time and memory."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load(monkeypatch, name: str):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module(name)


def busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_interleaved_repeats_tell_waiting_from_working(monkeypatch, capsys):
    timing = load(monkeypatch, "harness.timing")
    order = []
    runs = {
        "waits": lambda: (order.append("waits"), time.sleep(0.3)),
        "works": lambda: (order.append("works"), busy(0.3)),
    }
    times = timing.interleaved(runs, repeats=2)

    assert order == ["waits", "works", "works", "waits"]  # the first one rotates
    assert all(wall >= 0.3 for wall in times["seconds"]["waits"])
    assert all(cpu < 0.1 for cpu in times["cpu_seconds"]["waits"])
    assert all(cpu >= 0.25 for cpu in times["cpu_seconds"]["works"])
    assert "run 2/2 waits" in capsys.readouterr().out


def test_a_fresh_process_reports_its_results_cpu_time_and_memory(monkeypatch):
    harness = load(monkeypatch, "harness")
    child = (
        "import time\nfrom harness import report\nend = time.process_time() + 0.4\n"
        "while time.process_time() < end: pass\nreport({'answer': 42})"
    )
    (result,) = harness.run_fresh(["-c", child], "busy child")

    assert result["answer"] == 42
    assert result["process_cpu_s"] >= 0.4
    assert result["process_s"] >= result["process_cpu_s"] * 0.5
    assert 1 < result["peak_rss_mib"] < 1000


def test_a_failed_measurement_stops_with_its_name(monkeypatch, capsys):
    harness = load(monkeypatch, "harness")
    try:
        harness.run_fresh(["-c", "raise SystemExit(3)"], "the failing one")
    except SystemExit as stop:
        assert str(stop) == "the failing one failed with exit code 3"
    else:
        raise AssertionError("a failed child must stop the measurement")


def test_scripts_never_import_tests():
    for script in SCRIPTS.rglob("*.py"):
        text = script.read_text(encoding="utf-8")
        assert "standins" not in text.replace("tests/standins.py", "") and '"tests"' not in text, script
