"""``meta.dagfactory`` of a dbt node, read once at manifest load into a frozen value.

Every later stage reads :class:`NodeSettings`, never the raw meta dict, so each mistake in it
(an unknown key, a wrong type, a bad pod setting, a schedule that is not one) is found in one
place and reported the same way: a :class:`~dagfactory.errors.ManifestError` (exit 2) naming
the manifest, the node and the key, with "did you mean" for a misspelt key.

What needs the config to judge (a size that ``routing.kubernetes.sizes`` must define, a pod
image that some layer must set) is checked by routing, which names the same key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dagfactory import _cron, _k8s
from dagfactory.config import TASK_SETTING_CHECKS, describe_value
from dagfactory.errors import ManifestError, did_you_mean

__all__ = ["KEYS", "RUNNERS", "TASK_SETTING_KEYS", "NodeSettings", "parse_node_settings"]

RUNNERS = ("celery", "kubernetes")
#: the task settings a node may set, overriding ``task_defaults`` (same checks)
TASK_SETTING_KEYS = tuple(TASK_SETTING_CHECKS)
#: every key ``meta.dagfactory`` may hold
KEYS = ("runner", "size", "pod", "schedule", "notifications", *TASK_SETTING_KEYS)


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """A node's own dagfactory settings; ``None`` everywhere it sets nothing."""

    runner: str | None = None
    size: str | None = None
    #: pod settings in ``_k8s`` normalised shape, free text escaped for Airflow templates
    pod: Mapping[str, Any] | None = None
    #: the schedule as written, runs of whitespace made one space (checked: a preset or cron)
    schedule: str | None = None
    retries: int | None = None
    retry_delay_seconds: float | None = None
    execution_timeout_seconds: float | None = None
    pool: str | None = None
    pool_slots: int | None = None
    #: task-level notifier events (dagfactory/notifications.py), checked for shape here and
    #: against the config's allow-list in the plan stage
    notifications: Any = None

    @property
    def has_task_settings(self) -> bool:
        return any(getattr(self, key) is not None for key in TASK_SETTING_KEYS)


def parse_node_settings(raw: Any, *, path: str, unique_id: str) -> NodeSettings | None:
    """``meta.dagfactory`` of one node, checked; None when the node has none."""
    if raw is None:
        return None

    def error(message: str, key: str = "") -> ManifestError:
        dotted = f"meta.dagfactory.{key}" if key else "meta.dagfactory"
        return ManifestError(message, path=path, unique_id=unique_id, key=dotted)

    if not isinstance(raw, Mapping):
        raise error(f"expected a mapping, got {describe_value(raw)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in KEYS:
            hint = did_you_mean(str(key), KEYS)
            raise error(f"unknown key{hint} (valid keys: {', '.join(KEYS)})", str(key))
        if value is None:
            continue
        if key == "runner":
            if value not in RUNNERS:
                hint = did_you_mean(str(value), RUNNERS)
                raise error(
                    f"unknown runner {value!r}{hint}; valid runners: celery, kubernetes", key
                )
        elif key == "size":
            if not isinstance(value, str) or not value:
                raise error(f"expected a size name, got {describe_value(value)}", key)
        elif key == "pod":
            try:
                value = _k8s.normalize_pod(value, "meta.dagfactory.pod", escape=True)
            except _k8s.PodSettingsError as exc:
                raise ManifestError(
                    exc.message, path=path, unique_id=unique_id, key=exc.key
                ) from None
        elif key == "notifications":
            from dagfactory import notifications

            try:
                value = notifications.parse_events(
                    value, notifications.TASK_EVENTS, "meta.dagfactory.notifications"
                )
            except notifications.NotifierError as exc:
                raise ManifestError(
                    exc.message, path=path, unique_id=unique_id, key=exc.key
                ) from None
        elif key == "schedule":
            if not isinstance(value, str):
                raise error(
                    "expected a string such as '@daily' or '0 3 * * *', "
                    f"got {describe_value(value)}",
                    key,
                )
            value = " ".join(value.split())
            try:
                _cron.check_schedule(value)
            except _cron.ScheduleError as exc:
                raise error(str(exc), key) from None
        else:
            check, wanted = TASK_SETTING_CHECKS[key]
            if not check(value):
                raise error(f"expected {wanted}, got {value!r}", key)
        values[key] = value
    return NodeSettings(**values)
