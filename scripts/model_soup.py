"""A model soup: several exported heads of one config (one per seed) averaged in weight space.

    python scripts/model_soup.py reports/reproduce/cfg/seed0/model reports/reproduce/cfg/seed1/model ... --out SOUP

The exports must share the backbone and the pooler config (the seeds of one config do); the soup
is the first export with its PoolheadPooling weights replaced by the element-wise mean of all of
them. Heads that start from the same init (mean pooling) and move a little stay in one basin, so
the mean of their weights is itself a good head, with less seed noise than any of them.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HEAD_TYPE = "PoolheadPooling"


def head_folder(export: Path) -> Path:
    entries = json.loads((export / "modules.json").read_text(encoding="utf-8"))
    paths = [entry["path"] for entry in entries if entry["type"].endswith(HEAD_TYPE)]
    if len(paths) != 1:
        raise SystemExit(f"{export} holds {len(paths)} poolhead heads; a soup needs exports with exactly one")
    return export / paths[0]


def make_soup(exports: list[Path], out: Path) -> Path:
    """Write the soup of ``exports`` to ``out`` (replaced if it exists) and return it."""
    folders = [head_folder(export) for export in exports]
    configs = [json.loads((folder / "config.json").read_text(encoding="utf-8")) for folder in folders]
    if any(config != configs[0] for config in configs):
        raise SystemExit("the exports' heads differ in their config; a soup averages seeds of one config")
    first = exports[0] / "model.safetensors"
    if not all(filecmp.cmp(first, export / "model.safetensors", shallow=False) for export in exports[1:]):
        raise SystemExit("the exports' backbones differ; a soup of frozen-backbone heads needs one backbone")
    states = [load_file(folder / "model.safetensors") for folder in folders]
    soup = {key: torch.stack([state[key].float() for state in states]).mean(0).to(states[0][key].dtype)
            for key in states[0]}  # fmt: skip
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(exports[0], out)
    save_file(soup, head_folder(out) / "model.safetensors")
    os.utime(out)  # copytree gave it the first export's time; later steps ask whether it is newer
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exports", nargs="+", type=Path, help="exported folders of one config, one per seed")
    parser.add_argument("--out", required=True, type=Path, help="folder of the soup (replaced if it exists)")
    args = parser.parse_args()
    print(f"wrote {make_soup(args.exports, args.out)}")


if __name__ == "__main__":
    main()
