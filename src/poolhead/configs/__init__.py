"""The configs poolhead ships: ``poolhead fit --config NAME`` runs ``NAME.yaml`` from this folder.

They read their data from the hub (``sentence-transformers/stsb``, ...). Offline, point them at
a local copy with ``--data.data_root FOLDER``: each data set is then read from ``FOLDER/NAME``.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def shipped_configs() -> list[str]:
    """Names of the shipped configs (file names without ``.yaml``)."""
    return sorted(path.stem for path in FOLDER.glob("*.yaml"))


def config_path(name: str) -> Path | None:
    """The shipped config called ``name`` (with or without ``.yaml``), or None."""
    stem = name.removesuffix(".yaml").removesuffix(".yml")
    path = FOLDER / f"{stem}.yaml"
    return path if "/" not in stem and path.is_file() else None
