"""The one error tree of dagfactory.

    DagFactoryError                  exit code 1 unless a subclass says otherwise
     ├── ManifestError               manifest.json / run_results.json unreadable or unsupported, or a
     │                               node's meta.dagfactory wrong (any key, any mistake) (exit 2)
     │    └── UnsupportedSchemaError dbt schema older than v4 or unknown (exit 2)
     ├── ConfigError                 dagfactory.yml or flags: unknown key, wrong type, bad value (exit 2)
     ├── GraphError                  the dbt graph cannot become tasks: a model cycle, id collisions (exit 2)
     │    └── GroupCycleError        groups depend on each other in a circle (exit 2)
     ├── RoutingError                a node cannot be routed (no pod image, pod layers that clash) (exit 2)
     ├── RenderError                 a user template fails or lays out something that is not Python (exit 2)
     ├── OutputError                 the output folder cannot be written or swapped in (exit 1)
     │    └── ForeignOutputError     --out holds files no dagfactory build wrote: refused (exit 2)
     └── PublishError                a push failed; nothing was deleted (exit 1)
          └── PushConflictError      another push of the project holds or took its state (exit 1)

Exit code 2 means the input is wrong (fix the dbt project or the config); 1 means the
environment failed (disk, network, permissions) and the same command may pass on a rerun.

Library code raises these and never prints or exits; ``dagfactory.cli`` is the single place
that turns them into a message on stderr and an exit code. Each error carries the context a
user needs to find the problem (file path, ``unique_id``, group, config key).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "DagFactoryError",
    "ForeignOutputError",
    "GraphError",
    "GroupCycleError",
    "ManifestError",
    "OutputError",
    "PublishError",
    "PushConflictError",
    "RenderError",
    "RoutingError",
    "UnsupportedSchemaError",
]


#: C0 and C1 control characters other than the two that ``one_line`` spells out
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """A name from user input on one line: a newline in it cannot start a line of output,
    and no other control character reaches a terminal or log raw."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return _CONTROL.sub(lambda c: f"\\x{ord(c[0]):02x}", text)


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.5) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``: every error about
    an unknown name (config key, meta key, group, choice) suggests the same way."""
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


class DagFactoryError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        unique_id: str | None = None,
        group: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.unique_id = unique_id
        self.group = group
        self.key = key

    def format_message(self) -> str:
        """The message with its context, one ``name: value`` prefix per known field."""
        where = []
        if self.path:
            where.append(one_line(str(self.path)))
        if self.unique_id:
            where.append(f"node {one_line(self.unique_id)}")
        if self.group:
            where.append(f"group {self.group!r}")
        if self.key:
            where.append(f"key {self.key!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def __str__(self) -> str:
        return self.format_message()


class ManifestError(DagFactoryError):
    exit_code = 2


class UnsupportedSchemaError(ManifestError):
    pass


class ConfigError(DagFactoryError):
    exit_code = 2


class GraphError(DagFactoryError):
    exit_code = 2


class GroupCycleError(GraphError):
    def __init__(self, message: str, *, cycle: list[str], closing_edges: list[tuple[str, str]]):
        super().__init__(message)
        self.cycle = cycle
        self.closing_edges = closing_edges


class RoutingError(DagFactoryError):
    exit_code = 2


class RenderError(DagFactoryError):
    exit_code = 2


class OutputError(DagFactoryError):
    pass


class ForeignOutputError(OutputError):
    """--out holds something no dagfactory build wrote: replacing it would lose it."""

    exit_code = 2


class PublishError(DagFactoryError):
    pass


class PushConflictError(PublishError):
    """A conditional write of the state object lost: another push of the project changed it
    since this one read it (HTTP 412), or took over this push's lease."""
