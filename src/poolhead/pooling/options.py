"""Check a learned head's options against its constructor before building it.

Options arrive from YAML and the command line, so a misspelt key or a value of the wrong type
would otherwise surface as a TypeError deep inside the constructor, or not at all (a negative
dropout, a zero temperature). The valid keys and types are read from the constructor's signature,
so a new option is checked without being listed here. This file travels inside exports: it
imports only the standard library and the pooling files.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from .errors import UserTypeError, UserValueError

#: annotation words this check understands; an annotation with any other word is not type-checked
SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "None": (type(None),),
}


def check_pooler_options(cls: type, name: str, options: dict[str, Any], extra: tuple[str, ...] = ()) -> None:
    """Refuse unknown options (listing the valid ones), values of the wrong type, and out-of-range values.

    Args:
        cls: the pooler class the options go to.
        name: its registered name, for the message.
        options: the options given (without ``hidden_size``).
        extra: option names the registry consumes before the constructor (e.g. ``inner_kwargs``).
    """
    parameters = {
        key: parameter
        for key, parameter in inspect.signature(cls.__init__).parameters.items()
        if key not in ("self", "hidden_size") and parameter.kind is not parameter.VAR_KEYWORD
    }
    valid = [*parameters, *extra]
    for key, value in options.items():
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserValueError(
                f"pooler '{name}' has no option {key!r}{hint}; its options are {', '.join(valid) or 'none'}"
            )
        if key in parameters:
            check_type(name, key, value, parameters[key].annotation)
            check_range(name, key, value)


def check_type(name: str, key: str, value: Any, annotation: Any) -> None:
    words = [word.strip() for word in str(annotation).split("|")]
    if not all(word in SIMPLE_TYPES for word in words):
        return
    allowed = tuple(t for word in words for t in SIMPLE_TYPES[word])
    # bool is an int to Python, but `num_heads: true` is a mistake, not 1.
    if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
        raise UserTypeError(
            f"pooler '{name}' option {key}={value!r} must be {' or '.join(words)}, got {type(value).__name__}"
        )


def check_range(name: str, key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if "dropout" in key and not 0 <= value < 1:
        raise UserValueError(
            f"pooler '{name}' option {key}={value} must be in [0, 1) (the share of values dropped in training)"
        )
    if key.startswith("num_") and value < 1:
        raise UserValueError(f"pooler '{name}' option {key}={value} must be at least 1")
    if key == "temperature" and not value > 0:
        raise UserValueError(f"pooler '{name}' option temperature={value} must be a positive number, e.g. 1.0")
    if key.endswith("_penalty") and value < 0:
        raise UserValueError(
            f"pooler '{name}' option {key}={value} must be 0 or more (a weight on a penalty; 0 turns it off)"
        )
    if key.endswith("_ratio") and value < 0:
        raise UserValueError(f"pooler '{name}' option {key}={value} must be 0 or more")
