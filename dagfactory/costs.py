"""What the generated files will cost Airflow and dbt, estimated at build time.

A generated file is parsed by the DAG processor every loop and again at every task start; one
whose parse nears ``dagbag_import_timeout`` (30 s by default) becomes an import error. Each
task starts a dbt process, and some settings make every one of them parse the whole project.
Both are cheap to see from the plan, so the build says so before the files ship.

The parse model is linear and fitted by ``make bench`` (BENCHMARKS.md, "parse calibration"):
Airflow 3 spends a fixed cost per file (fork, imports, serialization), a cost per task, and a
cost per task named in a dependency call (each such name hashes the DAG). With
``cross_dag: asset_or_time`` that hash also walks the schedule's assets (Airflow falls back to
``repr`` of the timetable), which is the one term that multiplies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dagfactory._airflow_api import HASH_WALKS_SCHEDULE_ASSETS
from dagfactory.config import Config
from dagfactory.specs import DagSpec

__all__ = ["BuildWarning", "build_warnings", "estimate_parse_seconds"]

#: CPU seconds per generated file per DAG-processor loop (fork, imports, serialization)
PARSE_SECONDS_PER_FILE = 0.034
#: per task: operator construction and serialization
PARSE_SECONDS_PER_TASK = 0.00043
#: per task named in a ``set_upstream`` call (edges plus calls): one DAG hash each
PARSE_SECONDS_PER_DEPENDENCY = 0.00026
#: per dependency name and schedule asset, where the DAG hash walks the assets (fitted on
#: ``asset_or_time`` files by hand: the layered 5,000-model marts file execs in 12.4 s)
PARSE_SECONDS_PER_DEPENDENCY_ASSET = 0.0000025


@dataclass(frozen=True)
class BuildWarning:
    """Something the build did but that will cost more than the user likely wants."""

    message: str
    dag_id: str | None = None
    key: str | None = None

    def format_message(self) -> str:
        where = [f"DAG {self.dag_id}" if self.dag_id else "", self.key or ""]
        prefix = ", ".join(w for w in where if w)
        return f"{prefix}: {self.message}" if prefix else self.message


def _dependency_names(dag: DagSpec) -> int:
    """Tasks named in the file's ``set_upstream`` calls: each call's task plus its parents."""
    return sum(
        1 + len(task.upstream) + len(task.wait_for)
        for task in dag.tasks
        if task.upstream or task.wait_for
    )


def _asset_term(dag: DagSpec, airflow_version: str) -> float:
    if dag.trigger != "asset_or_time" or airflow_version not in HASH_WALKS_SCHEDULE_ASSETS:
        return 0.0
    names = _dependency_names(dag)
    return names * len(dag.schedule_assets) * PARSE_SECONDS_PER_DEPENDENCY_ASSET


def estimate_parse_seconds(dag: DagSpec, airflow_version: str = "3") -> float:
    """CPU seconds Airflow spends parsing this DAG's file once (rough, from benchmarks)."""
    tasks = len(dag.tasks) + len(dag.sensors)
    return (
        PARSE_SECONDS_PER_FILE
        + tasks * PARSE_SECONDS_PER_TASK
        + _dependency_names(dag) * PARSE_SECONDS_PER_DEPENDENCY
        + _asset_term(dag, airflow_version)
    )


def _split_hint(group_by: str) -> str:
    strategy, _, argument = group_by.partition(":")
    if strategy == "folder":
        depth = int(argument or 1)
        return f"split it into smaller DAGs, e.g. group_by: folder:{depth + 1}, or dbt groups"
    if strategy == "group":
        return "split its dbt group into smaller groups, or group_by: folder:2"
    return "split it into smaller DAGs (a finer group_by)"


def _over_budget(
    dags: tuple[DagSpec, ...], config: Config, group_by: str
) -> Iterator[BuildWarning]:
    budget = config.parse_budget_seconds
    if not budget:
        return
    for dag in dags:
        seconds = estimate_parse_seconds(dag, config.airflow_version)
        if seconds <= budget:
            continue
        asset_share = _asset_term(dag, config.airflow_version)
        if asset_share > seconds / 2:
            hint = (
                f"cross_dag: asset_or_time makes Airflow walk its {len(dag.schedule_assets)} "
                f"schedule assets on every dependency; cross_dag: assets would parse it in "
                f"~{seconds - asset_share:.1f} s, or {_split_hint(group_by)}"
            )
        else:
            hint = _split_hint(group_by)
        yield BuildWarning(
            f"its file would take ~{seconds:.2f} s CPU to parse ({len(dag.tasks)} tasks), over "
            f"parse_budget_seconds = {budget:g} (Airflow's import timeout is 30 s, and every "
            f"task start parses the file again): {hint}",
            dag_id=dag.dag_id,
            key="parse_budget_seconds",
        )


def _is_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(_is_template(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_is_template(v) for v in value)
    return False


def _templated_vars(config: Config) -> Iterator[BuildWarning]:
    for name in sorted(k for k, v in config.dbt.vars.items() if _is_template(v)):
        yield BuildWarning(
            "holds an Airflow template, so its value changes from run to run; dbt keeps "
            "its parse state only while --vars stay the same, so every task parses the whole "
            "project (measured: about 3x the CPU of a task on a 2,000-model project). Read "
            "the value with env_var() in the models that need it and set it in dbt.env "
            "instead (docs/running-dbt.md)",
            key=f"dbt.vars.{name}",
        )


def build_warnings(
    dags: tuple[DagSpec, ...], config: Config, group_by: str
) -> tuple[BuildWarning, ...]:
    """Every warning of a build, in a stable order: the config's first, then per DAG."""
    return (*_templated_vars(config), *_over_budget(dags, config, group_by))
