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

from dagfactory import _cron
from dagfactory.config import Config
from dagfactory.errors import ConfigError, GraphError, did_you_mean
from dagfactory.graph import DbtGraph
from dagfactory.grouping import Grouping
from dagfactory.manifest import Manifest, Node
from dagfactory.node_settings import NodeSettings
from dagfactory.routing import Route

__all__ = ["DagSpec", "DbtRun", "SensorSpec", "TaskSpec", "assemble", "asset_uri", "sanitize_id"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")
MAX_ID_LENGTH = 250  # Airflow's limit for dag_id and task_id


def sanitize_id(text: str) -> str:
    """An Airflow-safe id: letters, digits and ``_``; runs of anything else become ``_``."""
    if not (text.isascii() and text.isidentifier()):  # most names are safe already
        text = _UNSAFE.sub("_", text)
    return text.strip("_") or "_"


#: what ``quote(text, safe="")`` leaves as it is
_URI_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")


def _quote(text: str) -> str:
    # Most ids need no quoting, and checking is half the cost of quote() (16k calls at 5k models).
    return text if _URI_SAFE.fullmatch(text) else quote(text, safe="")


def asset_uri(team: str, project: str, unique_id: str) -> str:
    """A stable, provider-free URI for the data a dbt node produces.

    Team and project are both in it: two teams (or two projects of one team) never share
    an asset, so one team's run never triggers another team's DAGs by accident. Depending on
    another team's model is deliberate: schedule on its URI (docs/check.md#identity).
    """
    return _asset_prefix(team, project) + _quote(unique_id)


def _asset_prefix(team: str, project: str) -> str:
    return f"x-dbt://{_quote(team)}/{_quote(project)}/"


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
    settings: NodeSettings | None = None  # the primary node's meta.dagfactory
    wait_for: tuple[str, ...] = ()  # sensor task ids (``cross_dag: sensors``) that precede it


@dataclass(frozen=True)
class SensorSpec:
    """An ExternalTaskSensor waiting for one upstream task in another DAG."""

    task_id: str
    external_dag_id: str
    external_task_id: str
    #: seconds from the upstream run waited for to this DAG's run (0: same logical date)
    execution_delta_seconds: int
    unique_id: str  # the upstream unit

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "external_dag_id": self.external_dag_id,
            "external_task_id": self.external_task_id,
            "execution_delta_seconds": self.execution_delta_seconds,
            "unique_id": self.unique_id,
        }


@dataclass(frozen=True)
class DbtRun:
    """Where a task's dbt process keeps its files: the same for every task of a project."""

    #: a fresh ``--target-path`` per task try is made under this folder ("" or None: none)
    target_base: str | None = None
    keep_target: bool = False
    #: the shared, read-only ``partial_parse.msgpack`` (used when it exists on the worker)
    parse_state: str | None = None
    #: what every task's dbt argv starts with, and the flags after ``--select <selector>``
    executable: tuple[str, ...] = ("dbt",)
    flags: tuple[str, ...] = ()
    #: the ``dagfactory dbt-slices`` folder whose ``run.py`` starts dbt when it exists
    slices: str | None = None
    #: run.py asks the worker's dbt server, which leaves after this many idle seconds (0: no)
    server_idle_seconds: float = 0


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
    #: asset URIs the DAG is scheduled on (``assets``: only on them; ``asset_or_time``: on
    #: them or at ``schedule`` at the latest); empty for ``sensors`` and root DAGs
    schedule_assets: tuple[str, ...] = ()
    cross_dag: str = "assets"  # the policy that links this DAG to its upstream DAGs
    sensors: tuple[SensorSpec, ...] = ()  # ``cross_dag: sensors``
    merged_groups: tuple[str, ...] = ()  # the groups merged into this DAG (``group_cycles``)
    dbt_run: DbtRun = field(default_factory=DbtRun)

    @property
    def trigger(self) -> str:
        """How Airflow starts this DAG: ``schedule``, ``assets`` or ``asset_or_time``."""
        if not self.schedule_assets:
            return "schedule"
        if self.cross_dag == "asset_or_time" and self.schedule:
            return "asset_or_time"
        return "assets"

    def to_dict(self) -> dict[str, Any]:
        """The summary shape of ``--format json`` (see README)."""
        return {
            "dag_id": self.dag_id,
            "file": self.file_name,
            "group": self.group,
            "merged_groups": list(self.merged_groups),
            "owner": self.owner,
            "schedule": self.schedule,
            "cross_dag": self.cross_dag,
            "trigger": self.trigger,
            "schedule_assets": list(self.schedule_assets),
            "sensors": [sensor.to_dict() for sensor in self.sensors],
            "upstream_dags": list(self.upstream_dags),
            "tasks": [
                {
                    "task_id": t.task_id,
                    "unique_ids": list(t.unique_ids),
                    "resource_type": t.resource_type,
                    "runner": t.route.runner,
                    "reason": t.route.reason,
                    "size": t.route.size,
                    "selector": t.selector,
                    "upstream": list(t.upstream),
                    "inlets": list(t.inlets),
                    "outlets": list(t.outlets),
                    "wait_for": list(t.wait_for),
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


#: Where the dbt project lives on the workers unless ``dbt.project_dir`` says otherwise.
#: A fixed path, not the build machine's: CI checkouts move, and the files must not.
DEFAULT_PROJECT_DIR = "/opt/airflow/dbt/{project}"


#: the first dbt-core version that knows each flag a task may pass after its sub-command,
#: read from each release's ``dbt/cli/main.py``: ``--target-path`` is an option of ``build``
#: since 1.5; global flags (``--no-write-json``, ``--cache-selected-only``) were options of
#: the ``dbt`` group only, before the sub-command, until 1.7 added them to every sub-command
#: (dbt 1.6 answers ``dbt build --no-write-json`` with "No such option"); the parse-state
#: path is passed as ``DBT_PARTIAL_PARSE_FILE_PATH``, read since 1.6 wherever it stands
FLAG_SINCE: Mapping[str, tuple[int, int]] = {
    "--no-write-json": (1, 7),
    "--cache-selected-only": (1, 7),
    "--target-path": (1, 5),
    "--partial-parse-file-path": (1, 6),
    "--use-fast-test-edges": (1, 10),
}


def dbt_version_tuple(version: str) -> tuple[int, int] | None:
    """``(major, minor)`` of a manifest's ``dbt_version``; None when it does not say.

    dbt Cloud's release tracks write dates (``2024.9.238``): those are newer than any 1.x.
    """
    match = re.match(r"(\d+)\.(\d+)", version or "")
    if not match:
        return None
    major, minor = int(match[1]), int(match[2])
    return (99, 0) if major >= 2000 else (major, minor)


def dbt_knows(manifest: Manifest, flag: str) -> bool:
    """Whether the dbt that wrote the manifest accepts ``flag`` (never guess: unknown = no)."""
    return dbt_at_least(manifest, FLAG_SINCE[flag])


def dbt_at_least(manifest: Manifest, since: tuple[int, int]) -> bool:
    """Whether the dbt that wrote the manifest is ``since`` or later (unknown = no)."""
    version = dbt_version_tuple(manifest.dbt_version)
    return version is not None and version >= since


#: the first dbt whose artifact classes (``dbt.artifacts``) run.py builds a slice's manifest with
SLICES_SINCE = (1, 8)


def dbt_argv_prefix(manifest: Manifest, config: Config) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What every task's dbt command line shares: ``(executable,)`` and the trailing flags.

    The command is ``<executable> <build|test> --select <selector> <flags>``. The flags are
    the cheap ones for one node of a large project (docs/running-dbt.md): the fast test-edge
    algorithm, no whole-project JSON artifacts and a relation cache of the task's own schemas
    only, where the project's dbt has them.
    """
    dbt = config.dbt
    project_dir = _project_dir(manifest, config)
    profiles_dir = _dbt_dir(dbt.profiles_dir, project_dir, config)
    flags = ["--project-dir", project_dir, "--profiles-dir", profiles_dir]
    if dbt.target:
        flags += ["--target", dbt.target]
    # Cautious: a model's task runs the tests whose only parent it is, never a test that
    # also reads another model (that one is a task of its own, after all its parents).
    flags += ["--indirect-selection", "cautious"]
    if _switched_on(dbt.fast_test_edges, manifest, "--use-fast-test-edges"):
        flags.append("--use-fast-test-edges")
    if not dbt.write_json and dbt_knows(manifest, "--no-write-json"):
        flags.append("--no-write-json")
    if _switched_on(dbt.cache_selected_only, manifest, "--cache-selected-only"):
        flags.append("--cache-selected-only")
    return (dbt.executable,), tuple(flags)


def _switched_on(setting: bool | None, manifest: Manifest, flag: str) -> bool:
    """A ``dbt.*`` flag switch: its value when the config sets one, else (null) whether the
    project's dbt knows the flag."""
    return dbt_knows(manifest, flag) if setting is None else setting


def _project_dir(manifest: Manifest, config: Config) -> str:
    project = config.project or manifest.project_name
    default = DEFAULT_PROJECT_DIR.format(project=project)
    return _dbt_dir(config.dbt.project_dir, default, config)


def dbt_run(manifest: Manifest, config: Config) -> DbtRun:
    """What every task's dbt process shares: its argv around the selector, the per-task target
    folder and the shared parse state (these two where the project's dbt can)."""
    dbt = config.dbt
    executable, flags = dbt_argv_prefix(manifest, config)
    target_base = dbt.target_base if dbt_knows(manifest, "--target-path") else ""
    parse_state = dbt.parse_state
    if parse_state is None and target_base:
        parse_state = str(Path(_project_dir(manifest, config)) / "target/partial_parse.msgpack")
    if not dbt_knows(manifest, "--partial-parse-file-path"):
        parse_state = None
    slices = dbt.slices
    if slices is None:
        slices = str(Path(_project_dir(manifest, config)) / "target/dagfactory_slices")
    if not dbt_at_least(manifest, SLICES_SINCE):
        slices = None
    return DbtRun(
        target_base or None,
        dbt.keep_target,
        parse_state or None,
        executable,
        flags,
        slices or None,
        dbt.server_idle_seconds if slices else 0,
    )


def assemble(
    graph: DbtGraph,
    grouping: Grouping,
    routes: Mapping[str, Route],
    manifest: Manifest,
    config: Config,
) -> tuple[DagSpec, ...]:
    project = config.project or manifest.project_name
    team = config.team or sanitize_id(project)
    team_id = team  # as written: airflow_rules.team_problem keeps <team>__ unambiguous
    _check_configured_groups(grouping, config)
    run = dbt_run(manifest, config)
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
    schedules = {
        group: group_schedule(group, info.units, grouping, manifest, config)
        for group, info in grouping.groups.items()
    }

    uri_prefix = _asset_prefix(team, project)
    uri_of: dict[str, str] = {}  # unit id -> asset_uri(team, project, unit id), made once

    def uri(unit_id: str) -> str:
        found = uri_of.get(unit_id)
        if found is None:
            found = uri_of[unit_id] = uri_prefix + _quote(unit_id)
        return found

    dags = []
    for group, info in grouping.groups.items():
        tasks = []
        schedule_assets: set[str] = set()
        sensors: dict[str, SensorSpec] = {}  # upstream unit id -> its sensor
        for unit_id in info.units:
            unit = graph.units[unit_id]
            node = manifest.nodes[unit_id]
            upstream, inlets, wait_for = [], [], []
            for parent in graph.upstream(unit_id):
                if group_of[parent] == group:
                    upstream.append(task_ids[parent])
                    continue
                inlets.append(uri(parent))
                if config.cross_dag == "sensors":
                    if parent not in sensors:
                        sensors[parent] = _sensor(
                            parent,
                            task_ids[parent],
                            dag_ids[group_of[parent]],
                            schedules[group_of[parent]],
                            dag_ids[group],
                            schedules[group],
                            group,
                        )
                    wait_for.append(sensors[parent].task_id)
            if config.cross_dag != "sensors":
                schedule_assets.update(inlets)
            tasks.append(
                TaskSpec(
                    task_id=task_ids[unit_id],
                    unique_ids=unit.members,
                    resource_type=unit.resource_type,
                    dbt_command=unit.command,
                    selector=unit.selector,
                    argv=(*run.executable, unit.command, "--select", unit.selector, *run.flags),
                    route=routes[unit_id],
                    upstream=tuple(sorted(upstream)) if upstream else (),
                    inlets=tuple(sorted(inlets)) if inlets else (),
                    outlets=(uri(unit_id),) if unit_id in produced else (),
                    doc=node.description,
                    settings=node.settings,
                    wait_for=tuple(sorted(set(wait_for))) if wait_for else (),
                )
            )
        tasks.sort(key=lambda t: t.task_id)
        sensor_specs = tuple(sorted(sensors.values(), key=lambda s: s.task_id))
        _check_sensor_ids(sensor_specs, tasks, dag_ids[group], group)
        upstream_dags = sorted(
            {dag_ids[up] for (up, down) in grouping.cross_edges if down == group}
        )
        group_config = config.groups.get(group)
        defaults = config.dag_defaults
        own_schedule = schedules[group]
        if schedule_assets and config.cross_dag == "asset_or_time" and own_schedule:
            _cron_or_error(own_schedule, group, "asset_or_time")
        tags = sorted({*defaults.tags, *(group_config.tags if group_config else ())})
        dags.append(
            DagSpec(
                dag_id=dag_ids[group],
                file_name=f"{dag_ids[group]}.py",
                group=group,
                team=team,
                project=project,
                owner=info.owner,
                schedule=schedules[group],
                tags=tuple(tags),
                tasks=tuple(tasks),
                upstream_dags=tuple(upstream_dags),
                schedule_assets=tuple(sorted(schedule_assets)),
                cross_dag=config.cross_dag,
                sensors=sensor_specs,
                merged_groups=tuple(grouping.merged.get(group, ())),
                dbt_run=run,
            )
        )
    return tuple(dags)


_LISTED_IDS = 10  # unique_ids listed per schedule in a conflict error


def group_schedule(
    group: str,
    units: tuple[str, ...],
    grouping: Grouping,
    manifest: Manifest,
    config: Config,
) -> str | None:
    """The schedule of one group's DAG; every source that names one must agree.

    Sources: ``meta.dagfactory.schedule`` on the group's nodes and ``groups.<name>.schedule``
    in the config (for a merged group: its own entry, else the entries of the groups it
    merges). With none, ``dag_defaults.schedule`` applies.
    """
    asked: dict[str, list[str]] = {}
    for unit_id in units:
        settings = manifest.nodes[unit_id].settings
        if settings is not None and settings.schedule is not None:  # checked at load
            asked.setdefault(settings.schedule, []).append(unit_id)
    names = [group] if group in config.groups else list(grouping.merged.get(group, ()))
    for name in names:
        configured = config.groups.get(name)
        if configured is not None and configured.schedule:
            asked.setdefault(" ".join(configured.schedule.split()), []).append(
                f"config groups.{name}.schedule"
            )
    if len(asked) > 1:
        lines = [f"the models of group {group!r} ask for different schedules:"]
        for schedule, sources in sorted(asked.items()):
            shown = sorted(sources)[:_LISTED_IDS]
            more = len(sources) - len(shown)
            listed = ", ".join(shown) + (f" and {more} more" if more else "")
            lines.append(f"  {schedule!r}: {listed}")
        lines.append(
            "Give them one schedule (meta.dagfactory.schedule or groups.<name>.schedule), "
            "or group the models apart."
        )
        raise GraphError("\n".join(lines), group=group)
    # Checked where they were read (the manifest, load_config); a Config made in Python
    # skips load_config, so its schedules are still named here.
    chosen, key = config.dag_defaults.schedule, "dag_defaults.schedule"
    if asked:
        chosen, sources = next(iter(asked.items()))
        key = sources[0].removeprefix("config ")
    if chosen is None:
        return None
    try:
        return _cron.check_schedule(chosen)
    except _cron.ScheduleError as exc:
        raise ConfigError(str(exc), key=key) from None


def _cron_or_error(schedule: str, group: str, policy: str) -> str:
    try:
        return _cron.cron_expression(schedule)
    except _cron.ScheduleError as exc:
        raise GraphError(
            f"cross_dag: {policy} needs a cron schedule for this DAG: {exc}", group=group
        ) from None


def sensor_task_id(upstream_dag_id: str, upstream_task_id: str) -> str:
    """``wait__<dag>__<task>``: the double underscores keep it apart from dbt task ids."""
    return sanitize_id(f"wait__{upstream_dag_id}__{upstream_task_id}")


def _sensor(
    unit_id: str,
    task_id: str,
    upstream_dag_id: str,
    upstream_schedule: str | None,
    dag_id: str,
    schedule: str | None,
    group: str,
) -> SensorSpec:
    try:
        delta = _cron.execution_delta_seconds(upstream_schedule, schedule)
    except _cron.ScheduleError as exc:
        raise GraphError(
            f"cross_dag: sensors cannot line up DAG {dag_id!r} (schedule {schedule!r}) with "
            f"upstream DAG {upstream_dag_id!r} (schedule {upstream_schedule!r}) that it reads "
            f"{unit_id} from: {exc}. Give both groups schedules with the same period "
            "(groups.<name>.schedule), or use cross_dag: assets.",
            unique_id=unit_id,
            group=group,
        ) from None
    return SensorSpec(
        task_id=sensor_task_id(upstream_dag_id, task_id),
        external_dag_id=upstream_dag_id,
        external_task_id=task_id,
        execution_delta_seconds=delta,
        unique_id=unit_id,
    )


def _check_sensor_ids(
    sensors: tuple[SensorSpec, ...], tasks: list[TaskSpec], dag_id: str, group: str
) -> None:
    taken = {task.task_id: task.unique_ids[0] for task in tasks}
    for sensor in sensors:
        clash = taken.get(sensor.task_id)
        if clash is not None:
            raise GraphError(
                f"sensor task id {sensor.task_id!r} (waiting for {sensor.unique_id}) is also "
                f"the task id of {clash} in DAG {dag_id!r}; rename the model",
                unique_id=clash,
                group=group,
            )
        if len(sensor.task_id) > MAX_ID_LENGTH:
            raise GraphError(
                f"sensor task id is longer than {MAX_ID_LENGTH} characters",
                unique_id=sensor.unique_id,
                group=group,
            )
        taken[sensor.task_id] = sensor.unique_id


def _check_configured_groups(grouping: Grouping, config: Config) -> None:
    """A ``groups:`` entry must name a group, so a typo never silently drops a schedule."""
    known = set(grouping.groups) | {part for parts in grouping.merged.values() for part in parts}
    for name in config.groups:
        if name in known:
            continue
        hint = did_you_mean(name, known, cutoff=0.6)
        raise ConfigError(
            f"no group named {name!r} (group_by={grouping.strategy}){hint}; "
            f"the groups are: {', '.join(sorted(known))}",
            key=f"groups.{name}",
        )
