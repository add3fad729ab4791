"""Values Airflow would reject, refused while building instead.

A generated file that Airflow refuses to import takes its DAG off the scheduler; a value that
only fails when a task runs (a retry delay that overflows a date, a queue name longer than
its database column) fails at 3 a.m. Each rule here is one of Airflow 3.3's own limits, with
where Airflow keeps it, so the build fails with exit 2 and a line naming the key or node.

Two entry points, one per place a value becomes known:

* :func:`check_config` runs from ``config._validate``, on the values of ``dagfactory.yml``;
* :func:`check_dags` runs from ``pipeline.generate`` after assembly, on what exists only
  then: the DAG and task ids, the asset URIs, a schedule a node's meta asked for.

Each ``*_problem`` function says what is wrong with one value, or returns None; the check
command (``dagfactory/check.py``) reuses them on files it reads back. This module never
imports Airflow: the limits are copied as numbers, and a test loads them from Airflow to
keep them honest (``tests/unit/test_airflow_rules.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dagfactory import _cron
from dagfactory.errors import ConfigError, GraphError

if TYPE_CHECKING:
    from dagfactory.config import Config
    from dagfactory.specs import DagSpec

__all__ = [
    "MAX_ASSET_LENGTH",
    "MAX_DB_INT",
    "MAX_DURATION_SECONDS",
    "MAX_KEY_LENGTH",
    "MAX_NAME_COLUMN",
    "MAX_OWNER_LENGTH",
    "MAX_TAG_LENGTH",
    "check_config",
    "check_dags",
    "duration_problem",
    "int_problem",
    "key_problem",
    "name_problem",
    "schedule_problem",
    "tag_problem",
    "team_problem",
]

#: dag_id and task_id (``airflow.sdk.definitions._internal.node.validate_key``, ``ID_LEN``)
MAX_KEY_LENGTH = 250
#: what a dag_id or task_id may hold (``KEY_REGEX`` beside ``validate_key``)
KEY_RE = re.compile(r"^[\w.-]+$")
#: ``DAG(tags=...)``: each tag (``TAG_MAX_LEN``, the ``dag_tag.name`` column)
MAX_TAG_LENGTH = 100
#: an Asset's URI and name (``_validate_identifier`` in ``airflow.sdk.definitions.asset``)
MAX_ASSET_LENGTH = 1500
#: ``dag.owners``, the owners of a DAG's tasks joined (``String(2000)``)
MAX_OWNER_LENGTH = 2000
#: ``task_instance.queue`` and ``task_instance.pool`` (``String(256)``)
MAX_NAME_COLUMN = 256
#: retries, pool slots and max_active_runs land in ``Integer`` columns
MAX_DB_INT = 2**31 - 1
#: Airflow adds a retry delay or a timeout to the current time; past year 9999 that
#: overflows when the task runs, and ``timedelta`` itself ends at 999,999,999 days. A
#: hundred years is far beyond any meant value and far from both limits.
MAX_DURATION_SECONDS = 100 * 365 * 86400

#: the team is the DAG-id prefix and the push folder: see docs/check.md#identity
TEAM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def duration_problem(seconds: Any, *, positive: bool = False) -> str | None:
    """Why ``seconds`` cannot be a ``timedelta`` Airflow adds to a date, or None."""
    if not _is_number(seconds) or not math.isfinite(seconds):
        return f"expected a number of seconds, got {seconds!r}"
    if seconds < 0 or (positive and seconds == 0):
        return f"expected a {'positive' if positive else 'non-negative'} number, got {seconds!r}"
    if seconds > MAX_DURATION_SECONDS:
        return (
            f"{seconds!r} seconds is over {MAX_DURATION_SECONDS:,} (100 years): Airflow adds it "
            "to a date, which overflows past year 9999"
        )
    return None


def int_problem(value: Any, *, minimum: int = 0) -> str | None:
    """Why ``value`` cannot go into one of Airflow's ``Integer`` columns, or None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expected an integer, got {value!r}"
    if value < minimum:
        return f"expected an integer of at least {minimum}, got {value!r}"
    if value > MAX_DB_INT:
        return f"{value!r} is over {MAX_DB_INT:,}, the largest integer Airflow's database stores"
    return None


def tag_problem(tag: str) -> str | None:
    if len(tag) > MAX_TAG_LENGTH:
        return f"tag is {len(tag)} characters; Airflow allows at most {MAX_TAG_LENGTH}"
    return None


def name_problem(what: str, value: str, limit: int = MAX_NAME_COLUMN) -> str | None:
    """Why a queue, pool or owner name does not fit its Airflow column, or None."""
    if len(value) > limit:
        return f"{what} is {len(value)} characters; Airflow stores at most {limit}"
    return None


def key_problem(what: str, value: str) -> str | None:
    """Why ``value`` cannot be a dag_id or task_id, or None."""
    if len(value) > MAX_KEY_LENGTH:
        return f"{what} is {len(value)} characters; Airflow allows at most {MAX_KEY_LENGTH}"
    if not KEY_RE.fullmatch(value):
        return f"{what} {value!r} may hold only letters, digits, '_', '-' and '.'"
    return None


def team_problem(team: str) -> str | None:
    """Why ``team`` cannot be a team: it must map to exactly one DAG-id prefix.

    DAG ids are ``<team>__<group>``, with the team as written. A group id never starts with
    ``_`` (``specs.sanitize_id`` strips it), so when the team holds no ``__`` and does not
    end in ``_``, the first ``__`` of a DAG id is where the team ends: two different teams
    can never make the same DAG id, whatever their groups are called.
    """
    if not TEAM_RE.fullmatch(team):
        return (
            f"{team!r} is not a valid team: use letters, digits, '_', '-' or '.', starting with "
            "a letter or digit"
        )
    if "__" in team or team.endswith("_"):
        return (
            f"{team!r} is not a valid team: it must not contain '__' or end in '_', because "
            "DAG ids are <team>__<group> and the first '__' must end the team"
        )
    if ".." in team:
        return f"{team!r} must not contain '..'"
    return None


def schedule_problem(schedule: str, max_active_runs: int | None) -> str | None:
    """Why Airflow would refuse this schedule with this ``max_active_runs``, or None.

    Cron fields and ranges are checked by ``_cron.check_schedule`` (croniter, as Airflow);
    ``@continuous`` allows one active run (``ContinuousTimetable.active_runs_limit``), and
    an unset ``max_active_runs`` means Airflow's default of 16.
    """
    try:
        schedule = _cron.check_schedule(schedule)
    except _cron.ScheduleError as exc:
        return str(exc)
    if schedule == "@continuous" and (max_active_runs is None or max_active_runs > 1):
        shown = "unset (Airflow's default, 16)" if max_active_runs is None else max_active_runs
        return f"@continuous needs dag_defaults.max_active_runs: 1, got {shown}"
    return None


def _raise_config(problem: str | None, key: str) -> None:
    if problem:
        raise ConfigError(problem, key=key)


def check_config(config: Config) -> None:
    """Every value of ``dagfactory.yml`` that Airflow would reject, as a ``ConfigError``."""
    if config.team is not None:
        _raise_config(team_problem(config.team), "team")
    defaults = config.dag_defaults
    for index, tag in enumerate(defaults.tags):
        _raise_config(tag_problem(tag), f"dag_defaults.tags[{index}]")
    if defaults.max_active_runs is not None:
        _raise_config(int_problem(defaults.max_active_runs), "dag_defaults.max_active_runs")
    _raise_config(name_problem("owner", defaults.owner, MAX_OWNER_LENGTH), "dag_defaults.owner")
    if defaults.schedule is not None:
        problem = schedule_problem(defaults.schedule, defaults.max_active_runs)
        _raise_config(problem, "dag_defaults.schedule")
    for name, group in config.groups.items():
        for index, tag in enumerate(group.tags):
            _raise_config(tag_problem(tag), f"groups.{name}.tags[{index}]")
        if group.owner is not None:
            problem = name_problem("owner", group.owner, MAX_OWNER_LENGTH)
            _raise_config(problem, f"groups.{name}.owner")
        if group.schedule:
            problem = schedule_problem(group.schedule, defaults.max_active_runs)
            _raise_config(problem, f"groups.{name}.schedule")
    if config.routing.celery.queue is not None:
        problem = name_problem("queue", config.routing.celery.queue)
        _raise_config(problem, "routing.celery.queue")


def _outlets(dag: DagSpec) -> Iterable[tuple[str, str]]:
    for task in dag.tasks:
        for uri in task.outlets:
            yield task.unique_ids[0], uri


def check_dags(dags: Iterable[DagSpec], config: Config) -> None:
    """What only exists after assembly: ids, asset URIs, a schedule asked for in meta.

    Every asset another DAG reads is some task's outlet, so checking outlets covers inlets
    and asset schedules too.
    """
    max_active_runs = config.dag_defaults.max_active_runs
    for dag in dags:
        if config.team is None:  # the default team, from the project name
            problem = team_problem(dag.team)
            if problem:
                raise ConfigError(f"{problem}; set team: in dagfactory.yml", key="team")
        problem = key_problem("DAG id", dag.dag_id)
        if problem:
            raise GraphError(problem, group=dag.group)
        problem = name_problem("owner", dag.owner, MAX_OWNER_LENGTH)
        if problem:
            raise GraphError(problem, group=dag.group)
        for tag in dag.tags:
            if tag_problem(tag):
                raise GraphError(f"tag {tag[:40]!r}...: {tag_problem(tag)}", group=dag.group)
        if dag.schedule is not None and dag.trigger != "assets":
            problem = schedule_problem(dag.schedule, max_active_runs)
            if problem:
                raise ConfigError(problem, key="dag_defaults.max_active_runs", group=dag.group)
        for task_id in [*(t.task_id for t in dag.tasks), *(s.task_id for s in dag.sensors)]:
            problem = key_problem("task id", task_id)
            if problem:
                raise GraphError(problem, group=dag.group)
        for unique_id, uri in _outlets(dag):
            if len(uri) > MAX_ASSET_LENGTH:
                raise GraphError(
                    f"asset URI is {len(uri)} characters; Airflow allows at most "
                    f"{MAX_ASSET_LENGTH} (shorten the model name or path)",
                    unique_id=unique_id,
                    group=dag.group,
                )
