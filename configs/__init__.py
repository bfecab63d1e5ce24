"""The configs poolhead ships: ``poolhead fit --config NAME`` runs ``NAME.yaml`` from this folder.

This folder is ``configs/`` at the top of the repository, installed as the package ``poolhead.configs``
(pyproject.toml maps one to the other), so a name runs from any folder.

A config can start from another with a top-level ``base:`` key: a shipped name (an experiment here or a
base in ``base/``) or a path, relative to the file that names it. ``poolhead`` reads the base first and
the file over it (``--config BASE --config FILE``), so a file holds only what makes it its experiment;
a user's own YAML can name a shipped base the same way.

They read their data from the hub (``sentence-transformers/stsb``, ...). Offline, point them at
a local copy with ``--data.data_root FOLDER``: each data set is then read from ``FOLDER/NAME``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from poolhead.errors import UserFileNotFoundError, UserValueError

FOLDER = Path(__file__).resolve().parent
BASE_FOLDER = FOLDER / "base"
#: the top-level key that names a config's base
BASE_KEY = "base"


def shipped_configs() -> list[str]:
    """Names of the shipped experiments (file names without ``.yaml``), bases left out."""
    return sorted(path.stem for path in FOLDER.glob("*.yaml"))


def config_path(name: str) -> Path | None:
    """The shipped experiment or base called ``name`` (with or without ``.yaml``), or None."""
    stem = name.removesuffix(".yaml").removesuffix(".yml")
    if "/" in stem:
        return None
    for folder in (FOLDER, BASE_FOLDER):
        path = folder / f"{stem}.yaml"
        if path.is_file():
            return path
    return None


def with_bases(path: Path) -> list[Path]:
    """``path`` after its chain of bases, the deepest first: the order to read them in."""
    chain = [path.resolve()]
    while (name := base_name(chain[0])) is not None:
        base = _base_path(name, chain[0])
        if base in chain:
            cycle = " -> ".join(p.name for p in [*reversed(chain), base])
            raise UserValueError(f"config bases go round in a circle ({cycle}); remove one of these base: keys")
        chain.insert(0, base)
    return chain


def base_name(path: Path) -> str | None:
    """The ``base:`` a config file names, or None."""
    text = yaml.safe_load(path.read_text(encoding="utf-8"))
    name = text.get(BASE_KEY) if isinstance(text, dict) else None
    if name is not None and not isinstance(name, str):
        raise UserValueError(f"{path}: base: {name!r} is not a config name or path; write base: NAME")
    return name


def without_base(value: Any) -> Any:
    """A loaded config with its ``base:`` key dropped: the base was already read as an earlier config."""
    if isinstance(value, dict) and isinstance(value.get(BASE_KEY), str):
        return {key: item for key, item in value.items() if key != BASE_KEY}
    return value


def _base_path(name: str, named_by: Path) -> Path:
    own = (named_by.parent / name).resolve()
    if own.is_file():
        return own
    shipped = config_path(name)
    if shipped is None:
        raise UserFileNotFoundError(
            f"{named_by}: no config {name!r} beside it and no shipped config or base of that name; "
            f"give a path or one of {', '.join(shipped_configs() + shipped_bases())}"
        )
    return shipped


def shipped_bases() -> list[str]:
    """Names of the shipped bases in ``base/``: each holds what a family of experiments shares."""
    return sorted(path.stem for path in BASE_FOLDER.glob("*.yaml"))


def merged_settings(path: Path) -> dict[str, Any]:
    """A config's settings over its bases', as scripts read them (``model.freeze_backbone``, ...).

    Mappings merge key by key, all the way down; ``poolhead fit`` instead replaces a dict-valued option
    (``pooler_kwargs``) whole, so ask ``--print_config`` for a run's exact config.
    """
    merged: dict[str, Any] = {}
    for file in with_bases(path):
        merged = _merge(merged, without_base(yaml.safe_load(file.read_text(encoding="utf-8")) or {}))
    return merged


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        both_maps = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if both_maps else value
    return merged
