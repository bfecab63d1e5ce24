"""Find and read the raw rows of one split: local csv / tsv / jsonl / parquet files, or a hub dataset.

Reading is done by Hugging Face ``datasets`` (never a home-made CSV parser); this module only
decides which files make a split, checks that text files are UTF-8, and turns what ``datasets``
raises into errors that name the file and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import yaml
from datasets import Features, Value
from datasets.exceptions import DatasetsError

from poolhead.data.arrow_batches import ArrowRows
from poolhead.data.columns import NEGATIVE, ROLE_NAMES, map_columns
from poolhead.data.progress import PROGRESS_MIN_BYTES, datasets_progress
from poolhead.errors import UserFileNotFoundError, UserValueError
from poolhead.folder_safety import check_data_repository

#: file suffix -> (``datasets`` builder, builder options)
FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".jsonl": ("json", {}),
    ".json": ("json", {}),
    ".parquet": ("parquet", {}),
}
TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")


@dataclass(frozen=True)
class RowNaming:
    """How an error message points at a row, so the user finds it in their file."""

    word: str  # "data row", "record", "row index"
    first: int  # number of the first row (1 or 0)
    note: str  # said once per message

    def __call__(self, index: int) -> str:
        return f"{self.word} {index + self.first}"


CSV_ROWS = RowNaming("data row", 1, "data rows count from 1 and do not count the header line")
JSON_ROWS = RowNaming("record", 1, "records count from 1 in file order")
PARQUET_ROWS = RowNaming("row", 1, "rows count from 1 in file order")
HUB_ROWS = RowNaming("row index", 0, "row indices count from 0, as in dataset[i]")


@dataclass
class RawSplit:
    """The rows of one file (or hub split) as read, before validation.

    The rows stay in ``datasets``' on-disk Arrow table; ``batches`` reads them a batch at a time, so
    a split of a million pairs never sits in Python lists.
    """

    split: str
    source: str  # a file path or "hub dataset NAME, split SPLIT"
    table: ArrowRows  # the rows as read
    rows: RowNaming
    #: the columns of the file or split as the data set names them (``names`` may hold fewer, renamed)
    found: list[str] = field(default_factory=list)
    #: column name as poolhead sees it (a role after ``with_roles``) -> its name in ``dataset``
    names: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.names is None:
            self.names = {name: name for name in self.table.column_names}

    def __len__(self) -> int:
        return len(self.table)

    @property
    def column_names(self) -> list[str]:
        return list(self.names)

    @property
    def columns(self) -> dict[str, list[Any]]:
        """Every column as a list: for small splits only (evaluation sets); training reads ``batches``."""
        columns: dict[str, list[Any]] = {name: [] for name in self.names}
        for _, batch in self.batches(list(self.names)):
            for name, values in batch.items():
                columns[name] += values
        return columns

    def batches(self, names: list[str]) -> Iterator[tuple[int, dict[str, list[Any]]]]:
        """(first row, column name -> values) for consecutive batches of rows, as Python objects."""
        for start, table in self.table.batches([self.names[name] for name in names]):
            try:
                values = [column.to_pylist() for column in table.columns]
            except (OSError, ValueError) as error:  # pyarrow's JSON reader keeps invalid UTF-8: it fails here
                raise read_error(self.source, error) from error
            yield start, dict(zip(names, values, strict=True))

    def as_scored_pairs(self) -> RawSplit:
        """A contrast set (premise, hypothesis, negated) read as scored pairs: ``score`` is ``negated``,
        which the reader flips (``1 - negated``: a keeper scores 1, a flipper 0) after checking it."""
        roles = {"sentence1": "premise", "sentence2": "hypothesis", "score": "negated"}
        names = {new: self.names[old] for new, old in roles.items()}
        return RawSplit(self.split, self.source, self.table, self.rows, self.found or list(self.names), names)

    def with_roles(self, mapping: dict[str, str] | None) -> RawSplit:
        """The same rows with columns renamed by a role -> column ``mapping`` (see ``poolhead.data.columns``)."""
        renames = map_columns(list(self.names), mapping, self.source)
        names = {
            renames.get(name, name): column
            for name, column in self.names.items()
            if name not in renames.values() or name in renames
        }
        return RawSplit(self.split, self.source, self.table, self.rows, self.found or list(self.names), names)


def is_local(path: str) -> bool:
    return Path(path).exists()


def is_dataset_repository(path: str) -> bool:
    """A local folder laid out as a hub dataset repository: a README.md whose YAML header lists ``configs``.

    ``datasets.load_dataset`` reads such a folder exactly as it reads the hub id it mirrors.
    """
    return dataset_card(path) is not None


def dataset_card(path: str) -> dict[str, Any] | None:
    """The YAML header of ``path``/README.md when it lists ``configs``, else None."""
    readme = Path(path) / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    header = text.split("---", 2)[1] if text.count("---") >= 2 else ""
    try:
        card = yaml.safe_load(header)
    except yaml.YAMLError:
        return None
    return card if isinstance(card, dict) and "configs" in card else None


def split_files(folder: Path, split: str) -> list[Path]:
    """``{split}.csv`` (or .tsv / .jsonl / .json / .parquet), or shards ``{split}-*.{suffix}``."""
    found = []
    for suffix in FORMATS:
        found += [folder / f"{split}{suffix}"] if (folder / f"{split}{suffix}").is_file() else []
        found += sorted(folder.glob(f"{split}-*{suffix}"))
    suffixes = {f.suffix for f in found}
    if len(suffixes) > 1:
        raise UserValueError(
            f"split {split!r} in {folder} comes in several formats ({', '.join(f.name for f in found)}); "
            f"keep one format per split"
        )
    return found


def describe_folder(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in FORMATS)
    return ", ".join(names) if names else "no csv/tsv/jsonl/json/parquet files"


def read_local_split(path: str, split: str, role: str, columns: dict[str, str] | None = None) -> list[RawSplit]:
    """Every file of ``split`` under a folder ``path``; a single file ``path`` stands for any split.

    Args:
        path: a folder of split files, or one file.
        split: the split's name (``train``, ``validation``, ...).
        role: ``train``, ``validation`` or ``test``: names the setting to change in errors.
        columns: role -> column name mapping (``{sentence1: premise, ...}``).
    """
    location = Path(path)
    if location.is_file():
        files = [location]
    else:
        files = split_files(location, split)
        if not files:
            raise UserFileNotFoundError(
                f"split {split!r} not found in {location} (files found: {describe_folder(location)}); "
                f"add {split}.csv / .jsonl / .parquet there, or set {role}_split to the name of a split that exists"
            )
    return [read_file(file, split).with_roles(columns) for file in files]


def read_file(file: Path, split: str) -> RawSplit:
    suffix = file.suffix.lower()
    if suffix not in FORMATS:
        raise UserValueError(f"{file}: unsupported file type {suffix!r}; use one of {', '.join(FORMATS)}")
    if suffix in TEXT_SUFFIXES:
        check_utf8(file)
        check_has_rows(file, header=suffix in (".csv", ".tsv"))
    builder, options = FORMATS[suffix]
    options = dict(options)
    if builder == "csv":
        options.update(csv_as_text(file, options.get("sep", ",")))
    try:
        with datasets_progress(file.stat().st_size >= PROGRESS_MIN_BYTES):
            dataset = datasets.load_dataset(builder, data_files=str(file), split="train", **options)
    except (DatasetsError, OSError, ValueError) as error:  # datasets wraps the reader's error; unwrap it
        if suffix in (".jsonl", ".json"):
            check_json_lines(file)
        raise read_error(file, error) from error
    rows = {".csv": CSV_ROWS, ".tsv": CSV_ROWS, ".parquet": PARQUET_ROWS}.get(suffix, JSON_ROWS)
    # Only the names of its files are kept: the dataset goes, and with it the memory map of its table.
    return RawSplit(split=split, source=str(file), table=ArrowRows.of(dataset), rows=rows)


@contextmanager
def quiet_datasets() -> Iterator[None]:
    """No "Generating train split" bar per file: a data module reads several small files at once."""
    with datasets_progress(False):
        yield


def csv_as_text(file: Path, sep: str) -> dict[str, Any]:
    """Read every CSV cell as text, and nothing as missing.

    pandas would otherwise turn sentences such as "NA" or "null" into missing values, and infer a
    column type per 10,000-row chunk (so one bad score far down the file becomes a cast error deep
    inside ``datasets``). Scores and labels are parsed afterwards, with row numbers in the errors.
    """
    import pandas  # a dependency of ``datasets``; used here only to list the header's columns

    try:
        columns = list(pandas.read_csv(file, sep=sep, nrows=0).columns)
    except UnicodeDecodeError as error:
        raise not_utf8_error(file, None, error) from error
    except (ValueError, pandas.errors.ParserError) as error:  # EmptyDataError is a ValueError
        raise UserValueError(f"could not read the header of {file}: {error}") from error
    if sep == "," and len(columns) == 1 and "\t" in str(columns[0]):
        raise UserValueError(
            f"{file} is tab-separated (its header is {columns[0]!r}) but named .csv, which is read as "
            f"comma-separated; rename it to {file.with_suffix('.tsv').name}"
        )
    return {"keep_default_na": False, "features": Features({name: Value("string") for name in columns})}


def check_has_rows(file: Path, header: bool) -> None:
    """Refuse a file with no data rows (only a header, or nothing) in one sentence."""
    needed = 2 if header else 1
    with open(file, "rb") as handle:  # bytes: the encoding is checked (and reported) elsewhere
        found = 0
        for line in handle:
            found += bool(line.strip())
            if found == needed:
                return
    what = "only a header line" if found else "nothing"
    raise UserValueError(f"{file} holds {what}, no sentence pairs; add one pair per line below the header")


def check_json_lines(file: Path) -> None:
    """Name the first line of a JSON-lines file that is not one JSON object (``datasets`` does not)."""
    try:
        find_bad_json_line(file)
    except UnicodeDecodeError:
        return  # not UTF-8: read_error says so


def find_bad_json_line(file: Path) -> None:
    with open(file, encoding="utf-8") as handle:
        if handle.read(1) == "[":
            return  # one JSON array, not JSON lines: datasets' message stands
        handle.seek(0)
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.strip())
            except json.JSONDecodeError as error:
                raise UserValueError(
                    f"{file} line {line_number} is not valid JSON ({error.msg} at column {error.colno}); "
                    f'each line must be one object such as {{"sentence1": ..., "sentence2": ..., "score": ...}}'
                ) from None
            if not isinstance(record, dict):
                raise UserValueError(f"{file} line {line_number} is {type(record).__name__}, not a JSON object")


def check_utf8(file: Path) -> None:
    """Raise a clear error at the first line of ``file`` that is not valid UTF-8."""
    # Line by line is exact: the newline byte never occurs inside a multi-byte UTF-8 character.
    with open(file, "rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise not_utf8_error(file, line_number, error) from None


def not_utf8_error(file: Path | str, line_number: int | None, error: UnicodeDecodeError) -> ValueError:
    where = f" (line {line_number}, byte 0x{error.object[error.start]:02x})" if line_number else ""
    return UserValueError(
        f"{file} is not UTF-8 text{where}: re-save it as UTF-8 (e.g. in a spreadsheet: 'CSV UTF-8'; "
        f"in Python: read it with its real encoding, such as encoding='latin-1', and write it with encoding='utf-8')"
    )


def read_error(file: Path | str, error: Exception) -> Exception:
    """The reader's own error behind a ``datasets`` wrapper, with the file named."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, UnicodeDecodeError):
            return not_utf8_error(file, None, cause)
        if cause.__cause__ is None and cause.__context__ is None:
            break
        cause = cause.__cause__ or cause.__context__
    return UserValueError(f"could not read {file}: {type(cause).__name__}: {cause}")


def load_hub_dataset(path: str, cache: dict[str, Any], subset: str | None = None, revision: str | None = None) -> Any:
    """``datasets.load_dataset(path, subset, revision=revision)`` once per data set (``cache`` keeps it).

    ``path`` is a hub id or a local folder laid out as a hub dataset repository.
    """
    if "dataset" not in cache:
        card = dataset_card(path) if is_local(path) else None
        if card is not None:
            check_data_repository(path, card)
        options = {key: value for key, value in (("name", subset), ("revision", revision)) if value is not None}
        try:
            cache["dataset"] = datasets.load_dataset(path, **options)
        except Exception as error:
            if is_local(path):
                raise UserValueError(
                    f"could not load the dataset repository {path} (subset {subset!r}): {type(error).__name__}: "
                    f"{error}; set subset to one of the config_name entries of its README.md"
                ) from error
            raise UserValueError(
                f"{path!r} is neither a local file or folder nor a loadable hub dataset ({type(error).__name__}: "
                f"{error}); check the path and subset, or the network / HF_HUB_OFFLINE for a hub id; offline, "
                f"point fit's --data.data_root at a folder holding a local copy (DATA_ROOT/NAME/train.csv, ...)"
            ) from error
    return cache["dataset"]


def read_hub_split(
    path: str,
    split: str,
    role: str,
    cache: dict[str, Any],
    subset: str | None = None,
    revision: str | None = None,
    columns: dict[str, str] | None = None,
) -> list[RawSplit]:
    """A split of a hub dataset; ``role`` (train / validation / test) names the setting to change in errors.

    Only the columns that fill a role are read.
    """
    dataset = load_hub_dataset(path, cache, subset, revision)
    if split not in dataset:
        raise UserFileNotFoundError(
            f"split {split!r} not found in hub dataset {path!r} (splits found: {', '.join(dataset)}); "
            f"set {role}_split to one of them"
        )
    named = f"{path} ({subset})" if subset else path
    source = f"hub dataset {named}, split {split}"
    table = dataset[split]
    found = list(table.column_names)
    renames = map_columns(found, columns, source)
    kept = [name for name in found if name in renames or _is_role(name) and name not in renames.values()]
    names = {renames.get(name, name): name for name in kept}
    return [RawSplit(split=split, source=source, table=ArrowRows.of(table), rows=HUB_ROWS, found=found, names=names)]


def _is_role(name: str) -> bool:
    return name in ROLE_NAMES or NEGATIVE.fullmatch(name) is not None
