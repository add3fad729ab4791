"""Python source literals for values that come from users.

Every user string reaches a generated file through :func:`literal`, which emits ``repr``-style
literals (quotes, backslashes, newlines and non-printable characters escaped by Python
itself). The only calls it can emit are :class:`Call` values built by dagfactory code with
constructor names dagfactory chose, so no user text can become code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["Call", "Concat", "Raw", "jinja_escape", "literal"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@lru_cache(maxsize=1024)  # a file makes thousands of calls to a handful of names
def _is_dotted_identifier(name: str) -> bool:
    return _IDENTIFIER.match(name) is not None


@dataclass(frozen=True)
class Call:
    """A constructor call, e.g. ``Call("Asset", ("x-dbt://p/m",))``."""

    func: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not _is_dotted_identifier(self.func):
            raise ValueError(f"not a dotted identifier: {self.func!r}")
        for name, _ in self.kwargs:
            if not _is_dotted_identifier(name) or "." in name:
                raise ValueError(f"not an identifier: {name!r}")


@dataclass(frozen=True)
class Raw:
    """A name defined by the template itself (e.g. a task variable). Never user text."""

    source: str

    def __post_init__(self) -> None:
        if not _is_dotted_identifier(self.source):
            raise ValueError(f"not a dotted identifier: {self.source!r}")


@dataclass(frozen=True)
class Concat:
    """Strings joined with ``+``: text shared by many tasks is named once in the file."""

    parts: tuple[Raw | str, ...]

    def __post_init__(self) -> None:
        for part in self.parts:
            if not isinstance(part, (Raw, str)):
                raise ValueError(f"not a name or a string: {part!r}")


def literal(value: Any, calls: set[str] | None = None) -> str:
    """The Python source for ``value``; dict keys are sorted so output is deterministic.

    With ``calls``, the constructor name of every :class:`Call` emitted is added to it (what
    the caller must import), so callers need not walk ``value`` a second time.
    """
    # Most common first: a file holds tens of thousands of strings and calls, and the types
    # checked are exclusive, so the order changes nothing else.
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Call):
        if calls is not None:
            calls.add(value.func)
        args = value.args
        if not value.kwargs and len(args) == 1 and type(args[0]) is str:
            return f"{value.func}({args[0]!r})"  # Asset(uri): thousands per file
        parts = [literal(arg, calls) for arg in args]
        parts += [f"{name}={literal(arg, calls)}" for name, arg in value.kwargs]
        return f"{value.func}({', '.join(parts)})"
    if isinstance(value, Concat):  # its parts are strings and names (checked when made)
        return " + ".join([repr(p) if isinstance(p, str) else p.source for p in value.parts])
    if isinstance(value, (list, tuple)):  # before Mapping: an ABC check is slow
        return "[" + ", ".join([literal(v, calls) for v in value]) + "]"
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot emit non-finite number {value!r}")
        return repr(value)
    if isinstance(value, Raw):
        return value.source
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        for key, _ in items:
            if not isinstance(key, str):
                raise ValueError(f"mapping keys must be strings, got {key!r}")
        return "{" + ", ".join([f"{literal(k)}: {literal(v, calls)}" for k, v in items]) + "}"
    raise TypeError(f"cannot emit a literal for {type(value).__name__}")


def jinja_escape(text: str) -> str:
    """Make ``text`` render as itself in an Airflow (Jinja) templated field.

    Every ``{`` becomes an expression that prints ``{``, so no ``{{``, ``{%`` or ``{#`` can
    open in user text, whatever else it holds.
    """
    return text.replace("{", "{{ '{' }}")
