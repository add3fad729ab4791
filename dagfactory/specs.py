"""The plan of the generated DAGs: ``DagSpec`` and ``TaskSpec``, assembled from the stages.

This is where dbt concepts become Airflow concepts, in one place: group -> DAG id
(``<team>__<group>``), node -> task id (``<name>`` or ``<name>_v<version>``), unit -> the dbt
command line, cross-group edge -> an asset URI produced by the upstream task and consumed by
the downstream DAG. Renderers receive these specs ready-made and decide nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dagfactory.config import Config
from dagfactory.errors import GraphError
from dagfactory.graph import DbtGraph
from dagfactory.grouping import Grouping
from dagfactory.manifest import Manifest, Node
from dagfactory.routing import Route

__all__ = ["DagSpec", "TaskSpec", "assemble", "asset_uri", "sanitize_id"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")
MAX_ID_LENGTH = 250  # Airflow's limit for dag_id and task_id


def sanitize_id(text: str) -> str:
    """An Airflow-safe id: letters, digits and ``_``; runs of anything else become ``_``."""
    cleaned = _UNSAFE.sub("_", text).strip("_")
    return cleaned or "_"


def asset_uri(project: str, unique_id: str) -> str:
    """A stable, provider-free URI for the data a dbt node produces."""
    return f"x-dbt://{quote(project, safe='')}/{quote(unique_id, safe='')}"


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    unique_ids: tuple[str, ...]  # the primary node first
    resource_type: str
    dbt_command: str  # build | test
    selector: str
    argv: tuple[str, ...]  # the dbt command line, not yet quoted for a shell
    route: Route
    upstream: tuple[str, ...] = ()  # task ids in the same DAG
    inlets: tuple[str, ...] = ()  # asset URIs read from other DAGs
    outlets: tuple[str, ...] = ()  # asset URIs other DAGs read
    doc: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)  # per-node meta.dagfactory


@dataclass(frozen=True)
class DagSpec:
    dag_id: str
    file_name: str
    group: str
    team: str
    project: str
    owner: str
    schedule: str | None
    tags: tuple[str, ...]
    tasks: tuple[TaskSpec, ...]
    upstream_dags: tuple[str, ...]  # dag ids this DAG waits for
    schedule_assets: tuple[str, ...] = ()  # asset URIs the DAG is scheduled on

    def to_dict(self) -> dict[str, Any]:
        """The summary shape of ``--format json`` (see README)."""
        return {
            "dag_id": self.dag_id,
            "file": self.file_name,
            "group": self.group,
            "owner": self.owner,
            "schedule": self.schedule,
            "schedule_assets": list(self.schedule_assets),
            "upstream_dags": list(self.upstream_dags),
            "tasks": [
                {
                    "task_id": t.task_id,
                    "unique_ids": list(t.unique_ids),
                    "resource_type": t.resource_type,
                    "runner": t.route.runner,
                    "reason": t.route.reason,
                    "selector": t.selector,
                    "upstream": list(t.upstream),
                    "inlets": list(t.inlets),
                    "outlets": list(t.outlets),
                }
                for t in self.tasks
            ],
        }


def _task_id(node: Node) -> str:
    name = node.name
    if node.version is not None:
        name = f"{name}_v{node.version}"
    return sanitize_id(name)


def _dbt_dir(value: str | None, fallback: str, config: Config) -> str:
    if value is None:
        return fallback
    path = Path(value)
    if not path.is_absolute() and config.base_dir:
        path = Path(config.base_dir) / path
    return str(path) if path.is_absolute() else value


def default_project_dir(manifest: Manifest) -> str:
    """The dbt project folder: the manifest's folder or its parent holding dbt_project.yml."""
    folder = Path(manifest.path).resolve().parent
    for candidate in (folder, folder.parent):
        if (candidate / "dbt_project.yml").is_file():
            return str(candidate)
    return str(folder)


def dbt_argv(command: str, selector: str, manifest: Manifest, config: Config) -> tuple[str, ...]:
    dbt = config.dbt
    project_dir = _dbt_dir(dbt.project_dir, default_project_dir(manifest), config)
    profiles_dir = _dbt_dir(dbt.profiles_dir, project_dir, config)
    argv = [dbt.executable, command, "--select", selector]
    argv += ["--project-dir", project_dir, "--profiles-dir", profiles_dir]
    if dbt.target:
        argv += ["--target", dbt.target]
    # Cautious: a model's task runs the tests whose only parent it is, never a test that
    # also reads another model (that one is a task of its own, after all its parents).
    argv += ["--indirect-selection", "cautious"]
    return tuple(argv)


def _node_settings(node: Node) -> Mapping[str, Any]:
    settings = node.meta.get("dagfactory")
    return settings if isinstance(settings, dict) else {}


def assemble(
    graph: DbtGraph,
    grouping: Grouping,
    routes: Mapping[str, Route],
    manifest: Manifest,
    config: Config,
) -> tuple[DagSpec, ...]:
    project = config.project or manifest.project_name
    team = config.team or sanitize_id(project)
    team_id = sanitize_id(team)
    dag_ids: dict[str, str] = {}
    seen_dag_ids: dict[str, str] = {}
    for group in grouping.groups:
        dag_id = f"{team_id}__{sanitize_id(group)}"
        if dag_id in seen_dag_ids:
            raise GraphError(
                f"groups {seen_dag_ids[dag_id]!r} and {group!r} both become DAG id {dag_id!r}; "
                "rename one of them",
                group=group,
            )
        if len(dag_id) > MAX_ID_LENGTH:
            raise GraphError(f"DAG id is longer than {MAX_ID_LENGTH} characters", group=group)
        seen_dag_ids[dag_id] = group
        dag_ids[group] = dag_id

    task_ids: dict[str, str] = {}
    for group, info in grouping.groups.items():
        used: dict[str, str] = {}
        for unit_id in info.units:
            task_id = _task_id(manifest.nodes[unit_id])
            if task_id in used:
                raise GraphError(
                    f"task id {task_id!r} would be used by both {used[task_id]} and {unit_id} "
                    f"in DAG {dag_ids[group]!r}; rename one of the nodes or group them apart",
                    unique_id=unit_id,
                    group=group,
                )
            if len(task_id) > MAX_ID_LENGTH:
                raise GraphError(
                    f"task id is longer than {MAX_ID_LENGTH} characters", unique_id=unit_id
                )
            used[task_id] = unit_id
            task_ids[unit_id] = task_id

    group_of = grouping.group_of
    produced: set[str] = set()  # units whose output another DAG reads
    for edges in grouping.cross_edges.values():
        produced.update(up for up, _ in edges)

    dags = []
    for group, info in grouping.groups.items():
        tasks = []
        schedule_assets: set[str] = set()
        for unit_id in info.units:
            unit = graph.units[unit_id]
            node = manifest.nodes[unit_id]
            upstream, inlets = [], []
            for parent in graph.upstream(unit_id):
                if group_of[parent] == group:
                    upstream.append(task_ids[parent])
                else:
                    inlets.append(asset_uri(project, parent))
            schedule_assets.update(inlets)
            tasks.append(
                TaskSpec(
                    task_id=task_ids[unit_id],
                    unique_ids=unit.members,
                    resource_type=unit.resource_type,
                    dbt_command=unit.command,
                    selector=unit.selector,
                    argv=dbt_argv(unit.command, unit.selector, manifest, config),
                    route=routes[unit_id],
                    upstream=tuple(sorted(upstream)),
                    inlets=tuple(sorted(inlets)),
                    outlets=(asset_uri(project, unit_id),) if unit_id in produced else (),
                    doc=node.description,
                    settings=_node_settings(node),
                )
            )
        tasks.sort(key=lambda t: t.task_id)
        upstream_dags = sorted(
            {dag_ids[up] for (up, down) in grouping.cross_edges if down == group}
        )
        group_config = config.groups.get(group)
        defaults = config.dag_defaults
        schedule = (
            group_config.schedule if group_config and group_config.schedule else defaults.schedule
        )
        tags = sorted({*defaults.tags, *(group_config.tags if group_config else ())})
        dags.append(
            DagSpec(
                dag_id=dag_ids[group],
                file_name=f"{dag_ids[group]}.py",
                group=group,
                team=team,
                project=project,
                owner=info.owner,
                schedule=schedule,
                tags=tuple(tags),
                tasks=tuple(tasks),
                upstream_dags=tuple(upstream_dags),
                schedule_assets=tuple(sorted(schedule_assets)),
            )
        )
    return tuple(dags)
