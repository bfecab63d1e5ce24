"""Columns of a split: the user's mapping onto poolhead's roles, and the shape of data they make.

Roles: ``sentence1`` / ``anchor`` (first text), ``sentence2`` / ``positive`` (second text),
``negative`` or ``negative_1`` .. ``negative_k`` (hard negatives), and ``score`` or ``label``.
A dataset names its columns as it likes; ``columns: {sentence1: premise, sentence2: hypothesis}``
maps roles to those names. The shape follows from which roles are there:

- scored pairs: two texts and ``score`` (similarities in [0, 1]);
- labelled pairs: two texts and ``label`` (integer classes: paraphrase 0/1, NLI 0/1/2, ...);
- positive pairs: two texts only, each pair an (anchor, positive);
- tuples: (anchor, positive, negative_1 .. negative_k), the negatives as hard negatives.

Two more shapes are evaluation sets of ``poolhead compare``:

- contrast sets: ``premise``, ``hypothesis`` and ``negated`` (1 when the hypothesis flips the
  premise's meaning, 0 when it keeps it): per premise, every keeper should be closer than every flipper.
  A fit trains on one as scored pairs, ``score = 1 - negated`` (keepers 1, flippers 0);
- probe sets (evaluation only): ``sentence`` and ``label`` (a class per sentence), optionally ``concept`` (the
  concept whose assertion status the label is: present, absent, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from poolhead.errors import UserValueError

FIRST_TEXT, SECOND_TEXT = ("sentence1", "anchor"), ("sentence2", "positive")
TARGETS = ("score", "label")
ROLE_NAMES = (*FIRST_TEXT, *SECOND_TEXT, *TARGETS)
CONTRAST_ROLES = ("premise", "hypothesis", "negated")
PROBE_ROLES = ("sentence", "label")
CONCEPT = "concept"
#: roles a mapping may name: the training roles and those of the evaluation-only shapes
MAPPABLE_ROLES = (*ROLE_NAMES, *CONTRAST_ROLES, "sentence", CONCEPT)
NEGATIVE = re.compile(r"negative(?:_(\d+))?")
ROLES = (
    "sentence1, sentence2, anchor, positive, negative, negative_1 .. negative_k, score, label "
    "(and, for evaluation only, premise, hypothesis, negated, sentence, concept)"
)
EXPECTED_SCHEMA = (
    "sentence1, sentence2 and either score (a similarity in [0, 1]) or label (an integer class); "
    "or anchor, positive and optionally negative / negative_1 .. negative_k"
)


@dataclass(frozen=True)
class DataShape:
    """Which roles a split fills, in the names its (mapped) columns carry.

    Attributes:
        first, second: the columns of the two texts (``sentence1`` or ``anchor``, ...).
        negatives: the hard-negative columns, in order.
        target: ``"score"``, ``"label"`` or None (positive pairs and tuples).
        width: how many columns the split has.
    """

    first: str
    second: str
    negatives: tuple[str, ...] = ()
    target: str | None = None
    width: int = 0

    @property
    def kind(self) -> str:
        """``"score"``, ``"label"``, or ``"positive"`` (every pair an anchor with its positive)."""
        return self.target or "positive"

    def describe(self) -> str:
        """E.g. ``3 columns -> anchor, positive, 1 negative``."""
        parts = [self.first, self.second]
        if self.negatives:
            count = len(self.negatives)
            parts.append(f"{count} negative{'s' if count > 1 else ''}")
        if self.target:
            parts.append(self.target)
        return f"{self.width} columns -> {', '.join(parts)}"


def map_columns(found: list[str], mapping: dict[str, str] | None, source: str) -> dict[str, str]:
    """Dataset column -> role name, for the columns that change name (all others keep theirs).

    Args:
        found: the split's column names.
        mapping: role -> dataset column, as the user wrote it.
        source: names the split in errors.
    """
    renames = {}
    for role, column in (mapping or {}).items():
        if role not in MAPPABLE_ROLES and not NEGATIVE.fullmatch(role):
            raise UserValueError(f"columns maps unknown role {role!r}; the roles are {ROLES}")
        if column not in found:
            raise UserValueError(
                f"columns.{role} names column {column!r}, but {source} has columns {', '.join(found) or 'none'}; "
                f"set columns.{role} to one of them"
            )
        if column != role:
            renames[column] = role
    return renames


def evaluation_shape(columns: list[str]) -> str:
    """``"contrast"``, ``"probe"`` or ``"pairs"``: which kind of evaluation set columns (named as roles) make.

    Pairs are the default, so a pair file with a missing column is still told what pairs need.
    """
    present = set(columns)
    if set(CONTRAST_ROLES) <= present:
        return "contrast"
    if set(PROBE_ROLES) <= present and not present & {*FIRST_TEXT, *SECOND_TEXT}:
        return "probe"
    return "pairs"


def shape_of(columns: list[str], source: str, found: list[str] | None = None) -> DataShape:
    """The shape of a split whose columns carry role names (after ``map_columns``).

    Args:
        columns: the split's columns, renamed to roles.
        source: names the split in errors.
        found: the split's columns as the data set names them, for messages (default ``columns``).
    """
    present = set(columns)
    first, second = (_one_of(names, present, source) for names in (FIRST_TEXT, SECOND_TEXT))
    targets = [name for name in TARGETS if name in present]
    # Name a missing text column after the one that is there (sentence1 -> sentence2, anchor -> positive).
    style = 1 if "anchor" in (first, second) or "positive" in (first, second) else 0
    missing = [names[style] for names, found in ((FIRST_TEXT, first), (SECOND_TEXT, second)) if not found]
    negatives = _negatives(columns)
    if first != "anchor" and not targets and not negatives:
        # Pairs named sentence1 / sentence2 carry a target; only anchor / positive pairs go without.
        missing.append("score or label")
    if missing:
        raise UserValueError(
            f"{source}: missing column(s) {', '.join(missing)}; found columns {', '.join(found or columns) or 'none'}; "
            f"expected {EXPECTED_SCHEMA}; map other names with columns: {{sentence1: ..., sentence2: ..., score: ...}}"
        )
    if len(targets) > 1:
        raise UserValueError(
            f"{source} has both a 'score' and a 'label' column; keep only the one your loss trains on "
            f"(expected {EXPECTED_SCHEMA})"
        )
    if negatives and targets:
        raise UserValueError(
            f"{source} has negatives ({', '.join(negatives)}) and a {targets[0]!r} column; hard negatives go with "
            f"(anchor, positive) tuples: map the {targets[0]} column away or drop the negatives"
        )
    return DataShape(first, second, negatives, targets[0] if targets else None, len(found or columns))


def _one_of(names: tuple[str, str], present: set[str], source: str) -> str | None:
    found = [name for name in names if name in present]
    if len(found) > 1:
        raise UserValueError(f"{source} has both {found[0]!r} and {found[1]!r}: they fill one role; keep one")
    return found[0] if found else None


def _negatives(columns: list[str]) -> tuple[str, ...]:
    matches = [(column, NEGATIVE.fullmatch(column)) for column in columns]
    found = [(int(match.group(1) or 0), column) for column, match in matches if match]
    return tuple(column for _, column in sorted(found))
