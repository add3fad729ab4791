"""Configuration: parsed and validated once at the edge, then passed down frozen.

The YAML file (``dagfactory.yml``) and the CLI flags are merged into one mapping, which is
checked against the dataclasses below: unknown keys and wrong types are errors that name the
key (dotted) and suggest the closest valid one. Every default lives in this module.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from dagfactory import airflow_rules
from dagfactory.errors import ConfigError, did_you_mean

__all__ = [
    "CONFIG_FILE_NAME",
    "TASK_SETTING_CHECKS",
    "CeleryConfig",
    "CheckConfig",
    "Config",
    "DagDefaults",
    "DbtConfig",
    "GroupConfig",
    "KubernetesConfig",
    "RoutingConfig",
    "TaskDefaults",
    "find_config_file",
    "load_config",
]

CONFIG_FILE_NAME = "dagfactory.yml"
SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _frozen_dict(**kwargs: Any) -> Any:
    return field(default_factory=dict, **kwargs)


@dataclass(frozen=True)
class DbtConfig:
    """How the generated tasks call dbt on the worker."""

    #: the dbt project on the workers; default /opt/airflow/dbt/<project>. A relative path
    #: resolves against the config file's folder (handy for local previews).
    project_dir: str | None = None
    profiles_dir: str | None = None  # default: project_dir
    target: str | None = None
    executable: str = "dbt"
    #: dbt vars passed as ``--vars``; values may use Airflow templates such as ``{{ ds }}``
    #: (each rendered value reaches dbt as one JSON value, see the README).
    vars: Mapping[str, Any] = _frozen_dict()
    #: environment variables for the dbt process (added to the worker's environment); values
    #: may use Airflow templates, e.g. a target folder per task try:
    #: ``DBT_TARGET_PATH: /tmp/dbt/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}/{{ ti.try_number }}``
    env: Mapping[str, str] = _frozen_dict()
    #: pass ``--use-fast-test-edges``; null: when the manifest's dbt has it (1.10 and later)
    fast_test_edges: bool | None = None
    #: let each task write manifest.json and run_results.json; false: ``--no-write-json``
    write_json: bool = False
    #: pass ``--cache-selected-only`` (dbt lists only the schemas of the task's nodes, not
    #: every schema of the project); null: when the manifest's dbt has it (1.7 and later)
    cache_selected_only: bool | None = None
    #: each task try gets its own ``--target-path``/``--log-path``, a fresh folder under this
    #: one, removed when the task ends (Bash tasks); "" keeps the project's own ``target/``
    target_base: str = "/tmp/dagfactory-dbt"
    #: leave the task's target folder in place (its path is in the task log), e.g. to collect
    #: run_results.json with ``write_json: true``
    keep_target: bool = False
    #: dbt's parse state, read by every task and written by none (``dbt parse`` in the image
    #: build); default ``<project_dir>/target/partial_parse.msgpack``; "" for none
    parse_state: str | None = None
    #: the folder ``dagfactory dbt-slices`` writes in the image build: each task hands dbt a
    #: small manifest of its own nodes instead of the whole project's parse (its ``run.py``
    #: runs plain dbt where that might differ); default ``<project_dir>/target/
    #: dagfactory_slices``, used when it exists on the worker; "" for none
    slices: str | None = None
    #: tasks on slices fork from a dbt server that each worker starts once (it imported
    #: dbt and its adapter, ~2 s of CPU and ~100 MB that tasks then share) and that
    #: leaves after this many seconds without a task; 0: every task starts its own dbt.
    #: Not used in the pods of Airflow's KubernetesExecutor (one task per pod)
    server_idle_seconds: float = 600

    def __post_init__(self) -> None:
        if not _is_number(self.server_idle_seconds) or self.server_idle_seconds < 0:
            wanted = "a number of seconds, 0 or more"
            got = self.server_idle_seconds
            raise ConfigError(f"expected {wanted}, got {got!r}", key="dbt.server_idle_seconds")


@dataclass(frozen=True)
class DagDefaults:
    schedule: str | None = "@daily"
    start_date: str = "2024-01-01"
    catchup: bool = False
    owner: str = "airflow"
    tags: tuple[str, ...] = ("dbt",)
    default_args: Mapping[str, Any] = _frozen_dict()
    max_active_runs: int | None = 1


@dataclass(frozen=True)
class TaskDefaults:
    """Per-task settings; ``meta.dagfactory`` on a node overrides them for that node.

    They become the operator's ``retries``, ``retry_delay``, ``execution_timeout``,
    ``pool`` and ``pool_slots``; a pool must exist in Airflow (``airflow pools set``).
    """

    retries: int | None = None
    retry_delay_seconds: float | None = None
    execution_timeout_seconds: float | None = None
    pool: str | None = None
    pool_slots: int | None = None

    def __post_init__(self) -> None:
        for key, (check, wanted) in TASK_SETTING_CHECKS.items():
            value = getattr(self, key)
            if value is not None and not check(value):
                raise ConfigError(f"expected {wanted}, got {value!r}", key=f"task_defaults.{key}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_MAX_DB_INT = airflow_rules.MAX_DB_INT
_MAX_SECONDS = airflow_rules.MAX_DURATION_SECONDS
_MAX_NAME = airflow_rules.MAX_NAME_COLUMN

#: Task settings (``task_defaults.<key>`` and per node ``meta.dagfactory.<key>``) and the
#: check each value must pass: key -> (check, what is expected).
TASK_SETTING_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    # upper bounds: what Airflow can store and add to a date (dagfactory/airflow_rules.py)
    "retries": (
        lambda v: _is_int(v) and 0 <= v <= _MAX_DB_INT,
        f"a non-negative integer up to {_MAX_DB_INT:,}",
    ),
    "retry_delay_seconds": (
        lambda v: _is_number(v) and 0 <= v <= _MAX_SECONDS,
        f"a non-negative number up to {_MAX_SECONDS:,} (100 years)",
    ),
    "execution_timeout_seconds": (
        lambda v: _is_number(v) and 0 < v <= _MAX_SECONDS,
        f"a positive number up to {_MAX_SECONDS:,} (100 years)",
    ),
    "pool": (
        lambda v: isinstance(v, str) and v.strip() != "" and len(v) <= _MAX_NAME,
        f"a non-empty string of at most {_MAX_NAME} characters",
    ),
    "pool_slots": (
        lambda v: _is_int(v) and 1 <= v <= _MAX_DB_INT,
        f"a positive integer up to {_MAX_DB_INT:,}",
    ),
}


@dataclass(frozen=True)
class CeleryConfig:
    """Tasks routed to Celery: a BashOperator on the shared workers."""

    queue: str | None = None
    #: written as ``executor=`` only when ``routing.executors`` lists several executors
    executor: str = "CeleryExecutor"


@dataclass(frozen=True)
class KubernetesConfig:
    """Tasks routed to Kubernetes: their own pod (see the README and ``_k8s``)."""

    #: pod_operator: a KubernetesPodOperator runs dbt in ``image``;
    #: executor: the Bash task runs on ``executor`` with a ``pod_override``
    mode: str = "pod_operator"
    executor: str = "KubernetesExecutor"
    image: str | None = None  # required in pod_operator mode (here, in pod, a size or meta)
    namespace: str | None = None  # pod_operator mode; default: the connection's namespace
    #: dbt tags that send a node to Kubernetes
    tags: tuple[str, ...] = ()
    #: pod settings for every Kubernetes task (keys: ``_k8s.POD_KEYS``)
    pod: Mapping[str, Any] = _frozen_dict()
    #: size tiers: pod settings plus an optional ``min_seconds`` for choosing by run time
    sizes: Mapping[str, Mapping[str, Any]] = _frozen_dict()
    default_size: str | None = None
    # KubernetesPodOperator settings (pod_operator mode)
    kubernetes_conn_id: str | None = None
    on_finish_action: str = "delete_pod"
    get_logs: bool = True
    log_events_on_failure: bool = True
    startup_timeout_seconds: int = 300  # pulling a dbt image can take longer than 120 s
    deferrable: bool = False


@dataclass(frozen=True)
class RoutingConfig:
    default: str = "celery"
    force: str | None = None
    #: a node whose observed run time reaches this goes to Kubernetes (None: ignore timings)
    long_running_seconds: float | None = None
    statistic: str = "p95"  # p95 | median
    #: Airflow's configured executors; with several, tasks name theirs (``executor=``)
    executors: tuple[str, ...] = ()
    celery: CeleryConfig = field(default_factory=CeleryConfig)
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)


@dataclass(frozen=True)
class GroupConfig:
    """Settings of one group's DAG (``groups: {<name>: ...}``); see the README."""

    owner: str | None = None
    #: cron or preset; must agree with any ``meta.dagfactory.schedule`` of the group's nodes
    schedule: str | None = None
    tags: tuple[str, ...] = ()
    #: ``{task: {on_failure: [...]}, dag: {...}}`` (dagfactory/notifications.py)
    notifications: Mapping[str, Any] = _frozen_dict()


@dataclass(frozen=True)
class CheckConfig:
    """Policies ``dagfactory check`` enforces on generated files (docs/check.md)."""

    require_owner: bool = False  # every DAG names an owner other than Airflow's "airflow"
    required_tags: tuple[str, ...] = ()  # every DAG carries each of these tags
    team_prefix: bool = True  # every dag_id starts with "<team>__"
    #: regular expressions every queue / executor / pod namespace / pod image must match
    queues: str | None = None
    executors: str | None = None
    namespaces: str | None = None
    images: str | None = None
    max_tasks: int | None = None  # tasks per DAG
    max_schedule_assets: int | None = None  # assets a DAG is scheduled on
    min_retries: int | None = None  # every task retries at least this often
    #: a file that takes longer to import in Airflow is a violation (0: never)
    parse_budget_seconds: float = 2.0

    def __post_init__(self) -> None:
        for key in ("queues", "executors", "namespaces", "images"):
            pattern = getattr(self, key)
            if pattern is None:
                continue
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"not a regular expression: {exc}", key=f"check.{key}") from None


@dataclass(frozen=True)
class Config:
    team: str | None = None  # default: the dbt project name
    project: str | None = None  # default: the dbt project name from the manifest
    group_by: str | None = None  # default: "group" when the manifest defines groups, else "folder"
    airflow_version: str = "3"  # "2": Airflow 2.10 names (dagfactory/_airflow_api.py)
    cross_dag: str = "assets"  # assets | asset_or_time | sensors (see the README)
    group_cycles: str = "error"  # error | merge: groups on a cycle become one DAG
    #: warn when a generated file is estimated to cost more CPU seconds to parse (0: never)
    parse_budget_seconds: float = 5.0
    dbt: DbtConfig = field(default_factory=DbtConfig)
    dag_defaults: DagDefaults = field(default_factory=DagDefaults)
    task_defaults: TaskDefaults = field(default_factory=TaskDefaults)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    groups: Mapping[str, GroupConfig] = _frozen_dict()
    check: CheckConfig = field(default_factory=CheckConfig)  # ``dagfactory check`` policies
    #: notifier classes called on failure/retry/success (dagfactory/notifications.py)
    notifications: Mapping[str, Any] = _frozen_dict()
    #: folder the config file was read from; relative paths in it resolve against this folder
    base_dir: str | None = field(default=None, metadata={"internal": True})


_CHOICES: dict[str, tuple[str, ...]] = {
    "airflow_version": ("2", "3"),
    "cross_dag": ("assets", "asset_or_time", "sensors"),
    "group_cycles": ("error", "merge"),
    "routing.default": ("celery", "kubernetes"),
    "routing.force": ("celery", "kubernetes"),
    "routing.statistic": ("p95", "median"),
    "routing.kubernetes.mode": ("pod_operator", "executor"),
    "routing.kubernetes.on_finish_action": ("delete_pod", "delete_succeeded_pod", "keep_pod"),
}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "a list"
    if origin is Mapping or (dataclasses.is_dataclass(tp)):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"expected {_type_name(tp)}, got {describe_value(value)}", key=key)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"expected a list, got {describe_value(value)}", key=key)
        (item_tp, _) = typing.get_args(tp)
        return tuple(_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is Mapping:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"expected a mapping, got {describe_value(value)}", key=key)
        _, value_tp = typing.get_args(tp)
        return {
            str(k): _coerce(v, value_tp, f"{key}.{k}") for k, v in sorted(value.items(), key=str)
        }
    if tp is Any:
        return value
    if tp is str:
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"expected a string, got {describe_value(value)}", key=key)
        return str(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {describe_value(value)}", key=key)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {describe_value(value)}", key=key)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {describe_value(value)}", key=key)
        return float(value)
    raise TypeError(f"unsupported config type {tp!r} at {key}")  # pragma: no cover


def describe_value(value: Any) -> str:
    """How an error message names a wrong value: its kind, or its type and repr."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping, got {describe_value(data)}", key=prefix or None)
    hints = typing.get_type_hints(cls)
    public = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in public:
            hint = did_you_mean(str(name), public)
            valid = ", ".join(sorted(public))
            raise ConfigError(f"unknown key{hint} (valid keys here: {valid})", key=key)
        kwargs[name] = _coerce(value, hints[name], key)
        choices = _CHOICES.get(key)
        if choices and kwargs[name] is not None and kwargs[name] not in choices:
            hint = did_you_mean(str(kwargs[name]), choices)
            raise ConfigError(f"{kwargs[name]!r} is not one of {', '.join(choices)}{hint}", key=key)
    return cls(**kwargs)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def validate_slug(value: object, key: str) -> str:
    """A team or project name: one path segment of an object key, part of every DAG id.

    The one slug check: ``load_config`` and the push (which may read them from a build
    folder's marker) both call it.
    """
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} is missing or empty", key=key)
    if not SLUG_RE.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"{key} {value!r} is not a valid slug: use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (no '/', spaces or '..')",
            key=key,
        )
    return value


def _validate(config: Config) -> None:
    for key in ("team", "project"):
        value = getattr(config, key)
        if value is not None:
            validate_slug(value, key)
    for name in ("start_date", "end_date"):
        if name in config.dag_defaults.default_args:
            raise ConfigError(
                "is a DAG setting, not a task default: use dag_defaults.start_date",
                key=f"dag_defaults.default_args.{name}",
            )
    try:
        dt.date.fromisoformat(config.dag_defaults.start_date[:10])
    except ValueError:
        raise ConfigError(
            f"{config.dag_defaults.start_date!r} is not an ISO date (YYYY-MM-DD)",
            key="dag_defaults.start_date",
        ) from None
    airflow_rules.check_config(config)  # values Airflow itself would reject
    _validate_for_plan(config)


def _validate_for_plan(config: Config) -> None:
    """What the later stages would otherwise find late: pod settings, schedules, and
    ``default_args`` values that must become Python literals in every file."""
    from dagfactory import _cron, _k8s
    from dagfactory._pysrc import literal

    _k8s.pod_policy(config.routing.kubernetes)
    _check_notifications(config)
    schedules = [("dag_defaults.schedule", config.dag_defaults.schedule)]
    schedules += [(f"groups.{name}.schedule", g.schedule) for name, g in config.groups.items()]
    for key, schedule in schedules:
        if schedule:
            try:
                _cron.check_schedule(" ".join(schedule.split()))
            except _cron.ScheduleError as exc:
                raise ConfigError(str(exc), key=key) from None
    for name, value in config.dag_defaults.default_args.items():
        try:
            literal(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"cannot be written into a DAG file: {exc}", key=f"dag_defaults.default_args.{name}"
            ) from None


def _check_notifications(config: Config) -> None:
    """The notifiers of the global and group sections: shape, literals, allow-list."""
    from dagfactory import notifications

    try:
        allowed = notifications.parse_notifications(config.notifications).allowed_modules
        for name, group in config.groups.items():
            key = f"groups.{name}.notifications"
            task, dag = notifications.parse_group(group.notifications, key)
            notifications.check_allowed(task, allowed, f"{key}.task")
            notifications.check_allowed(dag, allowed, f"{key}.dag")
    except notifications.NotifierError as exc:
        raise ConfigError(exc.message, key=exc.key) from None


def find_config_file(manifest_path: str | Path) -> Path | None:
    """The ``dagfactory.yml`` for a manifest: beside ``dbt_project.yml`` or in the cwd.

    dbt writes the manifest to ``<project>/target/manifest.json``, so the manifest's folder
    and its parents are searched for a dbt project first.
    """
    folder = Path(manifest_path).resolve().parent
    for candidate in (folder, *list(folder.parents)[:3]):
        if (candidate / CONFIG_FILE_NAME).is_file():
            return candidate / CONFIG_FILE_NAME
        if (candidate / "dbt_project.yml").is_file():
            break
    cwd = Path.cwd() / CONFIG_FILE_NAME
    return cwd if cwd.is_file() else None


#: a config file is a page of YAML; these bound what a hostile one can make the build do
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_NODES = 100_000  # values after expanding YAML aliases (``&a`` / ``*a``)


def _yaml_loader() -> type:
    """YAML's safe loader, with dates left as text.

    PyYAML turns ``2024-01-01`` into a date (and ``2024-13-45`` into a traceback); dagfactory
    checks dates itself, so a wrong one is an error naming its key.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    timestamp = "tag:yaml.org,2002:timestamp"
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != timestamp]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def _expanded_size(node: Any, sizes: dict[int, int], path: set[int]) -> int:
    """How many values ``node`` becomes once every alias is expanded (an alias bomb is tiny
    as text and enormous as data)."""
    import yaml

    key = id(node)
    if key in path:
        raise ConfigError("a YAML alias refers to itself")
    if key not in sizes:
        path.add(key)
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        sizes[key] = 1 + sum(_expanded_size(child, sizes, path) for child in children)
        path.discard(key)
    return sizes[key]


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"the config file is over {MAX_CONFIG_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the config file is not UTF-8 (byte {exc.start})") from None
    loader = _yaml_loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, set()) > MAX_CONFIG_NODES:
            raise ConfigError(f"the config expands to over {MAX_CONFIG_NODES:,} values")
        return loader.construct_document(node)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: e.g. an integer of 5,000 digits
        raise ConfigError(f"invalid YAML: {' '.join(str(exc).split())}") from exc
    finally:
        loader.dispose()


def _check_plain(value: Any, key: str) -> None:
    """Config values are what JSON can hold: YAML's ``!!binary``, ``!!set`` and ``.nan``
    would only fail later, far from the file."""
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                raise ConfigError(f"keys must be strings, got {describe_value(name)}", key=key)
            _check_plain(item, f"{key}.{name}" if key else name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, f"{key}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"expected a finite number, got {value!r}", key=key)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise ConfigError(f"expected plain YAML data, got {describe_value(value)}", key=key)


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Read a YAML config file (optional), apply dotted-key ``overrides``, validate."""
    data: dict[str, Any] = {}
    base_dir = None
    if path is not None:
        path = Path(path)
        try:
            loaded = _read_yaml(path)
            if loaded is not None and not isinstance(loaded, dict):
                raise ConfigError("the config file must hold a mapping at the top")
            _check_plain(loaded, "")
        except ConfigError as exc:
            exc.path = str(path)
            raise
        data = loaded or {}
        base_dir = str(path.resolve().parent)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
    try:
        config = _build(Config, data, "")
        _validate(config)
    except ConfigError as exc:
        if path is not None and exc.path is None:
            exc.path = str(path)
        raise
    return dataclasses.replace(config, base_dir=base_dir)
