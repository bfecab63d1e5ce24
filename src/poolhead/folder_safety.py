"""Refuse a model folder any file of which points outside it.

A sentence-transformers folder can reach beyond itself in several ways; every poolhead loader
(``poolhead.load``, ``load_backbone`` / ``Encoder`` on such a folder, ``with_pooler``, ``compare``
and ``inspect``) checks all of them before reading anything:

- a ``modules.json`` path that is absolute, has ``..``, or resolves (through a symlink) outside;
- a symlink anywhere in the folder whose target lies outside it;
- a path in a module's JSON config (``path``, ``*_path``, ``*_file``, ``*_dir``, ``*_folder``,
  also inside nested ``model_kwargs`` / ``processor_kwargs``) that is absolute, has ``..``, starts
  with ``~`` or is a URL;
- a code reference to another repository (``org/repo--module.Class``) or outside the folder, in a
  ``modules.json`` type or a config's ``auto_map``.

The one allowed exception: a Hugging Face hub cache snapshot, whose files are symlinks into the
same repository's ``blobs/`` folder.

A local data folder laid out as a hub dataset repository follows the same rule
(:func:`check_data_repository`): its README's ``configs`` may name only files inside it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from poolhead.errors import UserValueError

#: keys written by save_pretrained that record where a model came from; no loader follows them
PROVENANCE_KEYS = {"_name_or_path", "name_or_path"}
PATH_KEY_ENDINGS = ("_path", "_file", "_files", "_dir", "_folder")
#: JSON files larger than this are vocabularies and weights indexes, not module configs
MAX_CONFIG_BYTES = 64 * 2**20


def check_model_folder(folder: str | Path) -> None:
    """Raise a one-sentence error if anything in ``folder`` points outside it (see the module docstring)."""
    folder = Path(folder)
    allowed = allowed_roots(folder)
    check_symlinks(folder, allowed)
    for config in sorted(folder.rglob("*.json")):
        if config.is_file() and config.stat().st_size <= MAX_CONFIG_BYTES:
            check_config(folder, config)


def allowed_roots(folder: Path) -> list[Path]:
    root = folder.resolve()
    snapshots = root.parent
    if snapshots.name == "snapshots" and snapshots.parent.name.startswith(("models--", "datasets--")):
        return [root, snapshots.parent]  # hub cache: snapshot files link into ../../blobs
    return [root]


def is_inside(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()
    return any(root == resolved or root in resolved.parents for root in roots)


def check_symlinks(folder: Path, allowed: list[Path], kind: str = "model folder") -> None:
    for directory, subfolders, files in os.walk(folder, followlinks=False):
        for name in [*subfolders, *files]:
            entry = Path(directory) / name
            if entry.is_symlink() and not is_inside(entry, allowed):
                raise UserValueError(
                    f"{entry} is a symlink to {os.readlink(entry)}, outside the {kind} {folder}; refusing to "
                    f"load it: copy the file into the folder instead"
                )


def is_outside_reference(value: str) -> bool:
    """An absolute path, a path with '..', a home-relative path or a URL."""
    posix, windows = PurePosixPath(value), PureWindowsPath(value)
    return (
        posix.is_absolute()
        or bool(windows.anchor)
        or ".." in posix.parts
        or ".." in windows.parts
        or value.startswith("~")
        or "://" in value
    )


def check_inside(folder: Path, relative: str, source: Path, what: str = "path") -> None:
    """Refuse a relative path of ``source`` that leaves ``folder``, by its text or once resolved."""
    if is_outside_reference(relative) or not is_inside(folder / relative, allowed_roots(folder)):
        raise UserValueError(
            f"{source} points outside its folder ({what} {relative!r}); refusing to load it: paths in a model "
            f"folder must be relative paths inside {folder}"
        )


def check_config(folder: Path, config: Path) -> None:
    try:
        content = json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return  # not a config this check can read; the loader that reads it reports it
    if config.name == "modules.json" and config.parent == folder and isinstance(content, list):
        for entry in content:
            if isinstance(entry, dict):
                check_inside(folder, str(entry.get("path", "")), config)
                check_code_reference(folder, str(entry.get("type", "")), config)
        return
    for key, value in walk(content):
        if key == "auto_map":
            references = value.values() if isinstance(value, dict) else []
            for reference in references:
                for item in reference if isinstance(reference, list) else [reference]:
                    if isinstance(item, str):
                        check_code_reference(folder, item, config)
        elif isinstance(value, str) and is_path_key(key) and value and is_outside_reference(value):
            raise UserValueError(
                f"{config} points outside its folder ({key}: {value!r}); refusing to load it: a model folder's "
                f"configs may name only files inside it"
            )


def check_code_reference(folder: Path, reference: str, source: Path) -> None:
    """``module.Class`` or ``sub/module.Class`` inside the folder; never ``org/repo--module.Class``."""
    if "--" in reference:
        raise UserValueError(
            f"{source} refers to code in another repository ({reference!r}); refusing to load it: a model "
            f"folder may run only sentence-transformers', poolhead's or its own code"
        )
    module_path = reference.rsplit(".", 1)[0].replace(".", "/") if "/" in reference else ""
    if module_path:
        check_inside(folder, module_path, source, what="code")


def is_path_key(key: str) -> bool:
    return key not in PROVENANCE_KEYS and (key == "path" or key.endswith(PATH_KEY_ENDINGS))


def walk(content: Any, key: str = "") -> list[tuple[str, Any]]:
    """Every (key, value) pair of a JSON document, at any depth."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(content, dict):
        for name, value in content.items():
            pairs.append((str(name), value))
            pairs += walk(value, str(name))
    elif isinstance(content, list):
        for value in content:
            pairs += [(key, value)] if isinstance(value, str) else walk(value, key)
    return pairs


def check_data_repository(folder: str | Path, card: dict[str, Any]) -> None:
    """Refuse a hub-layout data folder whose README ``configs`` (``data_files``, ``data_dir``) or symlinks
    reach outside it: ``datasets`` would read ``../x.csv`` or ``/etc/*.csv`` without a word."""
    folder = Path(folder)
    allowed = allowed_roots(folder)
    check_symlinks(folder, allowed, kind="data folder")
    readme = folder / "README.md"
    configs = card.get("configs")
    for config in configs if isinstance(configs, list) else [configs]:
        if not isinstance(config, dict):
            continue
        patterns = data_file_patterns(config.get("data_files"))
        patterns += [config["data_dir"]] if isinstance(config.get("data_dir"), str) else []
        for pattern in filter(None, patterns):
            if is_outside_reference(pattern) or any(
                not is_inside(match, allowed) for match in [folder / pattern, *folder.glob(pattern)]
            ):
                raise UserValueError(
                    f"{readme} names data files outside its folder ({pattern!r}); refusing to read them: "
                    f"configs may name only files inside {folder} (copy the files there)"
                )


def data_file_patterns(data_files: Any) -> list[str]:
    """Every path or glob of a ``data_files`` entry, in any of its forms (string, list, split -> paths)."""
    if isinstance(data_files, str):
        return [data_files]
    if isinstance(data_files, dict):
        found = data_files.get("path") if "path" in data_files else list(data_files.values())
        return data_file_patterns(found)
    if isinstance(data_files, list):
        return [pattern for item in data_files for pattern in data_file_patterns(item)]
    return []
