"""bench_scale's tables and verdicts, recorded on docs/results.md (the measuring lives in bench_scale.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness import inputs_of
from harness.results_page import RECORDS, command_line, record

TITLE = "Scale: memory-mapped feature cache, LoRA against full fine-tuning, data setup (scripts/bench_scale.py)"


def cache_table(cache: dict) -> tuple[str, dict]:
    lines = [
        "| cache | process | peak RSS MiB | private (anon) MiB | cache pages RSS MiB | cache PSS MiB | on disk MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in cache.items():
        for rank, run in enumerate(runs if isinstance(runs, list) else [runs]):
            lines.append(
                f"| {name} | {rank} | {run['peak_rss_mib']:.0f} | {run['rss_anon_mib']:.0f} | "
                f"{run['cache_rss_mib']:.1f} | {run['cache_pss_mib']:.1f} | {run['cache_mib_on_disk']:.0f} |"
            )
    small, large = cache["10k, 1 process"], cache["1M, 1 process"]
    verdicts = {
        "private memory 1M / 10k": large["rss_anon_mib"] / small["rss_anon_mib"],
        "peak RSS (cache pages included) 1M / 10k": large["peak_rss_mib"] / small["peak_rss_mib"],
    }
    if "100k, 2 DDP processes" in cache:
        single = cache["100k, 1 process"]["peak_rss_mib"]
        verdicts["peak RSS of a DDP process / one process (100k)"] = (
            max(run["peak_rss_mib"] for run in cache["100k, 2 DDP processes"]) / single
        )
    return "\n".join(lines), verdicts


def finetune_table(runs: dict) -> tuple[str, dict]:
    lines = [
        "| fine-tune | trainable parameters | checkpoint MiB | peak RSS MiB | s / epoch | STS-B validation "
        "Spearman | STS-B test Spearman |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        validation = run.get("stsb_validation_spearman")
        lines.append(
            f"| {name} | {run['trainable_parameters']:,} | {run['checkpoint_mib']:.2f} | {run['peak_rss_mib']:.0f} | "
            f"{run['s_per_epoch']:.0f} | {'' if validation is None else f'{validation:.2f}'} | "
            f"{run['stsb_test_spearman']:.2f} |"
        )
    verdicts = {}
    loras = [name for name in runs if name.startswith("lora")]
    if "full" in runs and loras:
        # The LoRA rate is chosen on validation (a run without a validation score is the only one).
        chosen = max(loras, key=lambda name: runs[name].get("stsb_validation_spearman", 0.0))
        full, lora = runs["full"], runs[chosen]
        lines.append(f"\nLoRA run compared: {chosen} (best STS-B validation).")
        verdicts["STS-B test, full - LoRA"] = full["stsb_test_spearman"] - lora["stsb_test_spearman"]
        verdicts["checkpoint, LoRA / full"] = lora["checkpoint_mib"] / full["checkpoint_mib"]
    return "\n".join(lines), verdicts


def data_table(sizes: dict) -> tuple[str, dict]:
    lines = [
        "| pairs | unique sentences | setup s | peak RSS MiB | private (anon) MiB at the end | token ids MiB |",
        "|---|---|---|---|---|---|",
    ]
    for run in sizes.values():
        lines.append(
            f"| {run['pairs']:,} | {run['unique_sentences']:,} | {run['setup_s']:.1f} | {run['peak_rss_mib']:.0f} | "
            f"{run['rss_anon_mib']:.0f} | {run['token_id_mib']:.1f} |"
        )
    verdicts = {}
    if {"100k", "1M"} <= set(sizes):
        small, large = sizes["100k"], sizes["1M"]
        growth = large["peak_rss_mib"] - small["peak_rss_mib"]
        tokens = large["token_id_mib"] - small["token_id_mib"]
        verdicts["data setup: (peak RSS growth 100k -> 1M pairs - token-id growth) / peak RSS at 100k"] = (
            growth - tokens
        ) / small["peak_rss_mib"]
    return "\n".join(lines), verdicts


TARGETS = {
    "data setup: (peak RSS growth 100k -> 1M pairs - token-id growth) / peak RSS at 100k": 0.10,
    "private memory 1M / 10k": 1.10,
    "peak RSS (cache pages included) 1M / 10k": 1.10,
    "peak RSS of a DDP process / one process (100k)": 1.2,
    "STS-B test, full - LoRA": 0.5,
    "checkpoint, LoRA / full": 1 / 50,
}


def record_results(args: argparse.Namespace, results: dict) -> None:
    """Print the tables, write --json, and record them, keeping a part measured by an earlier command."""
    previous = RECORDS / "bench_scale.json"
    data = json.loads(previous.read_text(encoding="utf-8")).get("data") or {} if previous.is_file() else {}
    for part, values in results.items():
        data[part] = {"command": command_line(), "settings": inputs_of(args), "results": values}
    verdicts = record_data(data)
    if args.json:
        Path(args.json).write_text(json.dumps({"data": data, "verdicts": verdicts}, indent=2), encoding="utf-8")


def record_data(data: dict) -> dict[str, float]:
    """Render every measured part with its command, record the section; return the verdicts' figures.

    ``python scripts/measure.py --page`` shows the stored record; ``rerender()`` renders its stored
    measurements again after a change to this file.
    """
    body, verdicts = [], {}
    for part, render in (("cache", cache_table), ("finetune", finetune_table), ("data", data_table)):
        if part in data:
            table, found = render(data[part]["results"])
            body += [f"`{data[part]['command']}`", "", table, ""]
            if part == "finetune":
                settings = data[part]["settings"]
                body[-1:-1] = [
                    f"{settings['epochs']} epoch(s) each; LoRA adapters at lr {settings['lora_lr']}, the full "
                    f"fine-tune's backbone at {settings['full_lr']}; the heads at 0.01."
                ]
            verdicts.update(found)
    for name, value in verdicts.items():
        verdict = "PASS" if value <= TARGETS[name] else "FAIL"
        body.append(f"- {name} = {value:.3f} (target <= {TARGETS[name]:.3f}: {verdict})")
    text = "\n".join(body)
    print(text)
    commands = " && ".join(dict.fromkeys(entry["command"] for entry in data.values()))
    record("bench_scale", TITLE, description() + "\n\n" + text, command=commands, data=data)
    return verdicts


def rerender() -> None:
    record_data(json.loads((RECORDS / "bench_scale.json").read_text(encoding="utf-8"))["data"])


def description() -> str:
    return (
        "cache: peak RSS of one epoch of a frozen-backbone attention head (tiny random BERT, hidden 32) on "
        "4,000 pairs drawn across a cache of N synthetic sentences (12 tokens each); private = RssAnon at the "
        "end; cache pages = resident / proportional (PSS, shared pages split between the processes mapping "
        "them) memory of the cache's mapped files. fine-tune: all-MiniLM-L6-v2 on STS-B train as "
        "configs/minilm_layers_finetune_stsb.yaml, without validation during training (STS-B validation scored "
        "after it); LoRA r 8, alpha 16 on query, value. "
        "data: SentencePairDataModule.setup('fit') of a CSV of N synthetic scored pairs drawn with repeats "
        "from 300k unique sentences (tiny BERT's tokenizer, one process per size, a fresh datasets cache); "
        "token ids = the flat arrays and offsets the data module holds.\n\n"
        "Peak RSS is each measuring process's own (VmHWM; ru_maxrss would carry the launching process's "
        "peak across exec). Lookups read a batch's rows from the page cache with positional reads, which "
        "the processes of a machine share; the chunks' memory maps are used for their small index only, "
        "so a touched page of features never becomes part of a process's resident memory. What a process "
        "owns, and what would be a copy per process, is its private memory."
    )
