"""Every measurement behind docs/results.md, from one place.

    python scripts/measure.py --list                 # what can be measured, its command, what it writes
    python scripts/measure.py bench_backends         # run one with the settings of its record
    python scripts/measure.py bench_backends --num-texts 500 --repeats 2   # or with your own
    python scripts/measure.py --page                 # docs/results.md again from docs/results/*.json

A measurement runs its script (``python scripts/SCRIPT ...``) from the repository root, and the
script writes its record ``docs/results/NAME.json`` and re-renders the page (scripts/harness/).
Arguments after the name replace the recorded settings, after the mode a script needs to know
which measurement it is (``bench_backends`` is ``bench_encode.py --backend ...``).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Measurement:
    name: str
    what: str
    script: str
    writes: tuple[str, ...]  # the records' names; <...> stands for a part the arguments choose
    mode: list[str] = field(default_factory=list)  # the arguments that choose this measurement
    settings: list[list[str]] = field(default_factory=list)  # the recorded runs, one list of arguments each

    def commands(self, arguments: list[str] | None = None) -> list[list[str]]:
        runs = [arguments] if arguments else self.settings or [[]]
        return [["python", f"scripts/{self.script}", *self.mode, *run] for run in runs]


MEASUREMENTS = [
    Measurement(
        "suite", "a config fitted with 3 seeds, exported and compared on the out-of-domain suite",
        "reproduce_results.py", ("suite_<config>",), settings=[["--config", "minilm_attention_floor_stsb"]],
    ),
    Measurement(
        "selection", "a head's anchoring option chosen on held-out validation data, never on the suite",
        "select_penalty.py", ("penalty_selection", "selection_<config>_<option>"),
    ),
    Measurement(
        "negation", "every fixed strategy on the SemAntoNeg contrast set and a negation probe",
        "measure_negation.py", ("negation_fixed",),
    ),
    Measurement(
        "negation_selection", "negation recipes (frozen heads; fine-tunes) chosen on validation data",
        "select_negation.py", ("negation_selection", "negation_finetune_selection"),
        settings=[[], ["--configs", "minilm_mean_finetune_negation", "minilm_mean_finetune_negation_light",
                       "--negation-floor", "85", "--record", "negation_finetune_selection"]],
    ),
    Measurement(
        "versus_st_recorded", "a fine-tune's record beside sentence-transformers' fine-tunes another record holds",
        "versus_recorded_reference.py", ("versus_st_<config>",),
        settings=[[name, "--reference-record", "suite_minilm_mean_finetune_stsb"]
                  for name in ("suite_minilm_mean_finetune_negation", "suite_minilm_mean_finetune_negation_light")],
    ),
    Measurement(
        "negation_inspect", "the notebook's negated finding through a negation head and an STS-only head",
        "inspect_negation.py", ("negation_inspect",),
    ),
    Measurement(
        "bench_encode", "encoding speed of an exported head against the original sentence-transformers model",
        "bench_encode.py", ("bench_encode",), settings=[["--num-texts", "4000", "--repeats", "3", "--threads", "1"]],
    ),
    Measurement(
        "bench_predict", "poolhead predict against SentenceTransformer.encode: speed, and peak memory by corpus size",
        "bench_encode.py", ("bench_predict",), mode=["--predict"],
        settings=[["--threads", "1", "--num-texts", "4000", "--repeats", "7", "--rss-sizes", "10000", "200000"]],
    ),
    Measurement(
        "bench_backends", "one export encoded through torch, ONNX Runtime and OpenVINO (CPU)",
        "bench_encode.py", ("bench_backends",), mode=["--backend", "torch", "onnx", "openvino"],
        settings=[["--threads", "1", "--num-texts", "2000", "--repeats", "3"]],
    ),
    Measurement(
        "bench_memory", "peak memory of streaming many texts through encode and compare",
        "bench_memory.py", ("bench_memory",),
        settings=[["--tiny", "--num-texts", "10000", "100000", "--resamples", "100"]],
    ),
    Measurement(
        "bench_train", "training speed: feature cache, no cache, sentence-transformers' trainer, one plain pass",
        "bench_train.py", ("bench_train",),
        settings=[["--methods", "ad", "--limit-pairs", "600", "--epochs", "10", "--repeats", "3", "--threads", "1"]],
    ),
    Measurement(
        "bench_finetune", "fine-tuning MiniLM: poolhead's fit beside sentence-transformers' trainer (~1 h on 2 cores)",
        "bench_finetune.py", ("bench_finetune",),
    ),
    Measurement(
        "bench_scale", "memory-mapped feature cache at 10k-1M sentences, LoRA against full fine-tuning, data setup",
        "bench_scale.py", ("bench_scale",),
        settings=[["--parts", part, "--threads", "1"] for part in ("cache", "lora", "data")],
    ),
]  # fmt: skip
BY_NAME = {m.name: m for m in MEASUREMENTS}


def writer_of(record: str) -> Measurement | None:
    """The measurement that writes the record called ``record``."""
    for m in MEASUREMENTS:
        for name in m.writes:
            if record == name or ("<" in name and record.startswith(name.split("<")[0])):
                return m
    return None


def listing() -> str:
    lines = []
    for m in MEASUREMENTS:
        lines += [f"{m.name}: {m.what}", "    writes " + ", ".join(f"docs/results/{n}.json" for n in m.writes)]
        lines += [f"    {shlex.join(command)}" for command in m.commands()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help="what to measure: one of " + ", ".join(BY_NAME))
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the script's arguments (default: as recorded)")
    parser.add_argument("--list", action="store_true", help="list what can be measured")
    parser.add_argument("--page", action="store_true", help="render docs/results.md from docs/results/*.json")
    args = parser.parse_args(argv)
    if args.page:
        sys.path.insert(0, str(REPO / "scripts"))
        from harness.results_page import PAGE, render

        render()
        print(f"wrote {PAGE}")
        return 0
    if args.list or not args.name:
        print(listing())
        return 0
    if args.name not in BY_NAME:
        parser.error(f"nothing called {args.name!r} is measured; choose one of {', '.join(BY_NAME)} (see --list)")
    for command in BY_NAME[args.name].commands(args.arguments):
        print(f"$ {shlex.join(command)}", flush=True)
        done = subprocess.run([sys.executable, *command[1:]], cwd=REPO, check=False)
        if done.returncode:
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
