"""``notifications:``: Airflow notifier classes that a DAG or its tasks call on failure, retry
or success, read once from config (global, per group) and ``meta.dagfactory`` (per node).

A notifier is named by its import path plus literal keyword arguments; the generated file
imports the class and passes an instance (``on_failure_callback=[SmtpNotifier(...)]``), so
nothing here imports it. The import path must sit under an allow-list of module prefixes
(``notifications.allowed_modules``, default ``airflow.providers.``): the build refuses any
other (exit 2), so a config cannot make every generated file import arbitrary code. String
arguments may be Airflow templates (``{{ dag.dag_id }}``, ``{{ ti.task_id }}``,
``{{ task.owner }}``, ``{{ ti.log_url }}``): they come from the team's own config, like
``dbt.vars``, and the notifier renders them when it runs.

Precedence, per event: a node's ``meta.dagfactory.notifications`` beats
``groups.<g>.notifications.task``, which beats ``notifications.task``; for the DAG,
``groups.<g>.notifications.dag`` beats ``notifications.dag``. A more specific level replaces
the event's whole list (``[]`` turns it off there); events it does not name are inherited.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dagfactory.config import describe_value

__all__ = [
    "DAG_EVENTS",
    "DEFAULT_ALLOWED_MODULES",
    "RESERVED_NAMES",
    "TASK_EVENTS",
    "Events",
    "Notifications",
    "Notifier",
    "NotifierError",
    "check_allowed",
    "merge",
    "parse_events",
    "parse_group",
    "parse_notifications",
]

TASK_EVENTS = ("on_failure", "on_retry", "on_success")
#: a DAG run fails or succeeds; it does not retry
DAG_EVENTS = ("on_failure", "on_success")
DEFAULT_ALLOWED_MODULES = ("airflow.providers.",)
_NOTIFIER_KEYS = ("notifier", "kwargs")
_TOP_KEYS = ("allowed_modules", "task", "dag")
_GROUP_KEYS = ("task", "dag")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_KWARG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: names a generated file defines or imports itself: a notifier class may not shadow them
RESERVED_NAMES = frozenset(
    {"DAG", "Asset", "datetime", "k8s", "Secret", "build_dag", "_AssetList", "annotations"}
)


class NotifierError(ValueError):
    """A bad notifications value; ``key`` is the dotted key below the section."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


@dataclass(frozen=True)
class Notifier:
    """``module.Class(**kwargs)`` in a generated file."""

    module: str
    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def path(self) -> str:
        return f"{self.module}.{self.name}"


#: event name -> notifiers, only for the events a level names, sorted by event
Events = tuple[tuple[str, tuple[Notifier, ...]], ...]


@dataclass(frozen=True)
class Notifications:
    """The global section: the allow-list and the task- and DAG-level events."""

    allowed_modules: tuple[str, ...] = DEFAULT_ALLOWED_MODULES
    task: Events = ()
    dag: Events = ()


def _literal(value: Any, key: str) -> Any:
    """Plain YAML data (what ``_pysrc.literal`` writes); anything else is refused here."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_literal(item, f"{key}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for name, item in sorted(value.items(), key=lambda kv: str(kv[0])):
            if not isinstance(name, str):
                raise NotifierError(f"mapping keys must be strings, got {name!r}", key)
            out[name] = _literal(item, f"{key}.{name}")
        return out
    raise NotifierError(f"arguments must be literals, got {describe_value(value)}", key)


def _notifier(raw: Any, key: str) -> Notifier:
    if isinstance(raw, str):
        raw = {"notifier": raw}
    if not isinstance(raw, Mapping):
        raise NotifierError(f"expected a mapping with notifier:, got {describe_value(raw)}", key)
    unknown = sorted(str(k) for k in raw if k not in _NOTIFIER_KEYS)
    if unknown:
        raise NotifierError(f"unknown key {unknown[0]!r} (valid: notifier, kwargs)", key)
    path = raw.get("notifier")
    if not isinstance(path, str) or not _DOTTED.fullmatch(path):
        raise NotifierError(
            f"expected a dotted import path such as "
            f"airflow.providers.smtp.notifications.smtp.SmtpNotifier, got {describe_value(path)}",
            f"{key}.notifier",
        )
    module, _, name = path.rpartition(".")
    if any(keyword.iskeyword(part) for part in path.split(".")) or name in RESERVED_NAMES:
        raise NotifierError(f"{path!r} cannot be imported by that name", f"{key}.notifier")
    kwargs = raw.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise NotifierError(f"expected a mapping, got {describe_value(kwargs)}", f"{key}.kwargs")
    pairs = []
    for arg in sorted(kwargs, key=str):
        if not isinstance(arg, str) or not _KWARG.fullmatch(arg) or keyword.iskeyword(arg):
            raise NotifierError(f"{arg!r} is not a keyword argument name", f"{key}.kwargs")
        pairs.append((arg, _literal(kwargs[arg], f"{key}.kwargs.{arg}")))
    return Notifier(module, name, tuple(pairs))


def parse_events(raw: Any, events: tuple[str, ...], key: str) -> Events:
    """``{on_failure: [notifier, ...], ...}`` for the given events, checked."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise NotifierError(f"expected a mapping, got {describe_value(raw)}", key)
    out = []
    for event in sorted(raw, key=str):
        if event not in events:
            raise NotifierError(
                f"unknown event {event!r} (valid: {', '.join(events)})", f"{key}.{event}"
            )
        items = raw[event]
        if items is None:
            items = []
        if not isinstance(items, list):
            items = [items]
        notifiers = tuple(_notifier(item, f"{key}.{event}[{i}]") for i, item in enumerate(items))
        out.append((event, notifiers))
    return tuple(out)


def _section(raw: Any, keys: tuple[str, ...], key: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise NotifierError(f"expected a mapping, got {describe_value(raw)}", key)
    for name in raw:
        if name not in keys:
            raise NotifierError(
                f"unknown key (valid keys here: {', '.join(keys)})", f"{key}.{name}"
            )
    return raw


def parse_notifications(raw: Any, key: str = "notifications") -> Notifications:
    """The global ``notifications:`` section, checked, its notifiers against its allow-list."""
    section = _section(raw or {}, _TOP_KEYS, key)
    allowed = section.get("allowed_modules", list(DEFAULT_ALLOWED_MODULES))
    if isinstance(allowed, str):
        allowed = [allowed]
    if not isinstance(allowed, list) or not all(isinstance(a, str) and a for a in allowed):
        raise NotifierError("expected a list of module prefixes", f"{key}.allowed_modules")
    out = Notifications(
        tuple(sorted(set(allowed))),
        parse_events(section.get("task"), TASK_EVENTS, f"{key}.task"),
        parse_events(section.get("dag"), DAG_EVENTS, f"{key}.dag"),
    )
    check_allowed(out.task, out.allowed_modules, f"{key}.task")
    check_allowed(out.dag, out.allowed_modules, f"{key}.dag")
    return out


def parse_group(raw: Any, key: str) -> tuple[Events, Events]:
    """``groups.<g>.notifications``: (task events, DAG events)."""
    section = _section(raw or {}, _GROUP_KEYS, key)
    return (
        parse_events(section.get("task"), TASK_EVENTS, f"{key}.task"),
        parse_events(section.get("dag"), DAG_EVENTS, f"{key}.dag"),
    )


def check_allowed(events: Events, allowed_modules: tuple[str, ...], key: str) -> None:
    """Every notifier's import path starts with one of the allowed module prefixes.

    A prefix ending in ``.`` matches a package and everything below it; one without matches
    that exact module path or anything below it (``x.y`` allows ``x.y.Z`` and ``x.y.z.Z``,
    never ``x.yz.Z``).
    """
    for event, notifiers in events:
        for index, notifier in enumerate(notifiers):
            path = notifier.path
            ok = any(path.startswith(p if p.endswith(".") else f"{p}.") for p in allowed_modules)
            if not ok:
                raise NotifierError(
                    f"{path!r} is outside the allowed modules "
                    f"({', '.join(allowed_modules)}); widen notifications.allowed_modules "
                    "to allow it",
                    f"{key}.{event}[{index}].notifier",
                )


def merge(*levels: Events) -> Events:
    """Events of the later (more specific) levels replace the earlier ones, per event."""
    merged: dict[str, tuple[Notifier, ...]] = {}
    for level in levels:
        merged.update(dict(level))
    return tuple(sorted((event, items) for event, items in merged.items() if items))
