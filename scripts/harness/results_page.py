"""docs/results.md, made from records the measuring scripts write: nothing on that page is typed by hand.

A script that measures something calls ``record(name, title, command, body)``: it writes
``docs/results/<name>.json`` with the command that made the figures, the machine it ran on and
the Markdown the script rendered from its own measurements, then re-renders the page. The page
itself is ``python scripts/measure.py --page`` (every record, in ``ORDER`` and then by name).
A record says what was measured, on what machine and with which command; never who ran it or when.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# A smoke run of a benchmark points POOLHEAD_RESULTS_DIR elsewhere, so docs/ keeps the real figures.
DOCS = Path(os.environ.get("POOLHEAD_RESULTS_DIR", REPO / "docs"))
RECORDS = DOCS / "results"
PAGE = DOCS / "results.md"
#: The page's order: records whose name starts with an earlier prefix come first, then by name.
ORDER = [
    "suite_",
    "penalty_",
    "selection_",
    "negation_fixed",
    "negation_selection",
    "negation_finetune_selection",
    "versus_st_",
    "negation_inspect",
    "bench_scale",
    "bench_",
]
INTRO = """# Results

Every section below was written by the script it names, from what that script measured; run the
command beside a section to regenerate it (`python scripts/measure.py --page` re-renders this page
from `docs/results/*.json`). Spearman and accuracy are ×100. Quality figures that come from training
are the mean ± std over 3 seeds where the section says so.
"""


def machine() -> str:
    """The machine in words: what a reader needs to compare timings, nothing about who ran them."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, {device}; "
        f"python {platform.python_version()}, torch {torch.__version__}"
    )


def command_line() -> str:
    """The command that is running, as a user would type it from the repository root."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(REPO)
    except ValueError:
        pass
    return shlex.join(["python", str(script), *sys.argv[1:]])


def record(name: str, title: str, body: str, command: str | None = None, data: Any = None, inputs: Any = None) -> Path:
    """Save one section of the results page and re-render the page; returns the record's path.

    ``inputs`` are the settings the figures were measured with (see ``harness.inputs_of``).
    """
    RECORDS.mkdir(parents=True, exist_ok=True)
    path = RECORDS / f"{name}.json"
    entry = {
        "title": title,
        "command": command or command_line(),
        "machine": machine(),
        "body": body.strip(),
        "data": data,
    }
    if inputs is not None:
        entry["inputs"] = inputs
    path.write_text(json.dumps(entry, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    render()
    return path


@contextlib.contextmanager
def printed_text():
    """Print as usual and keep a copy: ``with printed_text() as out: report(...)``, then
    ``record(..., text_block(out.getvalue()))`` saves exactly what the script printed."""
    copy = io.StringIO()

    class Tee(io.TextIOBase):
        def write(self, text: str) -> int:
            copy.write(text)
            return sys.__stdout__.write(text)

    with contextlib.redirect_stdout(Tee()):
        yield copy


def text_block(text: str) -> str:
    return f"```text\n{text.strip()}\n```"


def render() -> str:
    """Write docs/results.md from every record."""
    records = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(RECORDS.glob("*.json"))}

    def rank(name: str) -> tuple[int, str]:
        prefixes = [i for i, prefix in enumerate(ORDER) if name.startswith(prefix)]
        return (prefixes[0] if prefixes else len(ORDER), name)

    names = sorted(records, key=rank)
    sections = [INTRO]
    for name in names:
        entry = records[name]
        sections.append(
            f"## {entry['title']}\n\n```bash\n{entry['command']}\n```\n\n"
            f"Machine: {entry['machine']}.\n\n{entry['body']}\n"
        )
    text = "\n".join(sections)
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text, encoding="utf-8")
    return text
