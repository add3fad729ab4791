"""Stage 5: turn each ``DagSpec`` into the text of a self-contained DAG file, and write them.

Python decides what each operator call holds (``_task_call``); the jinja2 template only lays
out imports, the DAG and its tasks. Every value reaches the template as Python source made
by :func:`dagfactory._pysrc.literal`, so user text can only ever be a string literal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from dagfactory import _airflow_api, _k8s
from dagfactory._pysrc import Call, Concat, Raw, jinja_escape, literal
from dagfactory._version import __version__
from dagfactory.config import TASK_SETTING_CHECKS, Config
from dagfactory.errors import RenderError
from dagfactory.specs import DagSpec, DbtRun, SensorSpec, TaskSpec

__all__ = ["RenderedFile", "render_dags", "template_dirs"]

TEMPLATE_NAME = "dag.py.j2"

_BASH = "airflow.providers.standard.operators.bash.BashOperator"
#: the schedule's collection type, defined by the template when a file needs it
ASSET_LIST = "_AssetList"


@dataclass(frozen=True)
class RenderedFile:
    name: str
    text: str
    dag_id: str


class _TaskSource(NamedTuple):
    """One task as the template lays it out: ``var = operator(name=value, ...)``.

    Not a dict: jinja2 looks ``task.var`` up as an attribute first, and on a dict that raised
    (and caught) an AttributeError three times per task, ~10% of rendering a 5k-task build.
    """

    var: str
    operator: str
    kwargs: list[tuple[str, str]]


@dataclass(frozen=True)
class _Import:
    module: str
    name: str


def _import_lines(imports: Iterable[_Import]) -> list[str]:
    """``from m import a, b`` lines, one per module, sorted."""
    names: dict[str, set[str]] = {}
    for item in imports:
        names.setdefault(item.module, set()).add(item.name)
    return [f"from {module} import {', '.join(sorted(names[module]))}" for module in sorted(names)]


def template_dirs(extra: str | Path | None = None) -> list[str]:
    """Template search path: a user folder first, then the packaged or checkout templates."""
    here = Path(__file__).resolve().parent
    dirs = [Path(extra)] if extra else []
    dirs += [p for p in (here / "templates", here.parent / "templates") if p.is_dir()]
    return [str(p) for p in dirs]


@lru_cache(maxsize=8)
def _template(search_path: tuple[str, ...]):  # compiled once per process, not per file
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(search_path)),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    try:
        return env.get_template(TEMPLATE_NAME)
    except jinja2.TemplateError as exc:
        raise RenderError(f"cannot load template {TEMPLATE_NAME}: {exc}") from exc


def _start_date(value: str) -> Call:
    date = dt.date.fromisoformat(value[:10])
    return Call(
        "datetime.datetime",
        (date.year, date.month, date.day),
        (("tzinfo", Raw("datetime.timezone.utc")),),
    )


#: Jinja block that shell-quotes what it renders, like ``shlex.quote`` inside ``'...'``
_SHELL_QUOTED_OPEN = """'{% filter replace("'", "'\\"'\\"'") %}"""
_SHELL_QUOTED_CLOSE = "{% endfilter %}'"
_TEMPLATE_SLOT = "\x00dagfactory-template-{}\x00"


_JINJA_OPENER = re.compile(r"\{[{%#]")


def _vars_json(vars: Mapping[str, Any]) -> str:
    """The ``--vars`` JSON, as Jinja source: templates render, everything else stays text.

    A string holding ``{{`` or ``{%`` is an Airflow template; it is rendered inside
    ``{% filter tojson %}``, so whatever it renders to (quotes, backslashes, newlines)
    arrives as one JSON string. Everything else (keys included) is JSON made here, every
    Jinja opener in it escaped, so a key can neither render nor end the filter around it.
    """
    templates: list[str] = []

    def slot(value: Any) -> Any:
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            templates.append(value)
            return _TEMPLATE_SLOT.format(len(templates) - 1)
        if isinstance(value, Mapping):
            return {str(k): slot(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [slot(v) for v in value]
        return value

    text = orjson.dumps(slot(vars), option=orjson.OPT_SORT_KEYS).decode()
    # Keys and plain values are data: any Jinja opener in them ({{, {%, {#) prints itself.
    text = _JINJA_OPENER.sub(lambda opener: f"{{{{ '{opener[0]}' }}}}", text)
    for index, template in enumerate(templates):
        placeholder = orjson.dumps(_TEMPLATE_SLOT.format(index)).decode()
        text = text.replace(placeholder, f"{{% filter tojson %}}{template}{{% endfilter %}}", 1)
    return text


_NO_DBT_RUN = DbtRun()  # dbt's own target/ and parse state


@lru_cache(maxsize=4096)  # the shared flags repeat in every task
def _shell(text: str) -> str:
    """One shell word that Airflow's Jinja renders as itself."""
    return jinja_escape(shlex.quote(text))


#: module constants of a generated file: the shell text every dbt task of the file shares
SETUP_NAME, FLAGS_NAME = "DBT_SETUP", "DBT_FLAGS"
_SHARED = (SETUP_NAME, FLAGS_NAME)
_SETUP_REF, _FLAGS_REF = Raw(SETUP_NAME), Raw(FLAGS_NAME)


@lru_cache(maxsize=64)  # "dbt build --select" and "dbt test --select", for every task
def _shell_words(words: tuple[str, ...]) -> str:
    return " ".join(_shell(word) for word in words)


def _shell_setup(run: DbtRun) -> str:
    """The lines before the dbt command: its own target folder, the shared parse state.

    A fresh folder per task try (``mktemp -d``, named after the task by the variables
    BashOperator sets), so tasks on one worker never share ``target/`` or dbt's log; removed
    when the shell exits unless ``keep_target``. The parse state is passed only where it
    exists: dbt refuses a missing ``DBT_PARTIAL_PARSE_FILE_PATH``, and without it parses the
    whole project (and says so).
    """
    lines = []
    if run.target_base:
        base = _shell(run.target_base.rstrip("/") or "/")
        folder = f'{base}/"$AIRFLOW_CTX_DAG_ID.$AIRFLOW_CTX_TASK_ID".XXXXXX'
        lines.append(f"T=$(mkdir -p {base} && mktemp -d {folder}) || exit 1")
        if run.keep_target:
            lines.append('echo "dagfactory: dbt target folder $T"')
        else:
            lines.append("trap 'rm -rf \"$T\"' EXIT")
    if run.parse_state:
        state = _shell(run.parse_state)
        lines.append(
            f"if [ -f {state} ]; then export DBT_PARTIAL_PARSE_FILE_PATH={state}; "
            f"else echo {_shell(f'dagfactory: no dbt parse state at {run.parse_state}')} >&2; fi"
        )
    return "".join(f"{line}\n" for line in lines)


def _shell_tail(run: DbtRun, config: Config) -> str:
    """What follows the dbt argv: the target folder and ``--vars``."""
    tail = ' --target-path "$T" --log-path "$T"' if run.target_base else ""
    if config.dbt.vars:
        # Vars are the one place where Airflow templates are wanted ({{ ds }}): they come
        # from the team's own config, not from the manifest. What a template renders
        # ({{ params.x }}, {{ dag_run.conf[...] }}) may hold a quote, so the quoting for the
        # shell happens after rendering, in Jinja, never around the unrendered text.
        vars_json = _vars_json(config.dbt.vars)
        tail += f" --vars {_SHELL_QUOTED_OPEN}{vars_json}{_SHELL_QUOTED_CLOSE}"
    return tail


def _bash_command(argv: Iterable[str], config: Config, run: DbtRun = _NO_DBT_RUN) -> str:
    """The dbt command line for ``bash -c``, as the task's ``bash_command`` renders to."""
    return _shell_setup(run) + " ".join(_shell(arg) for arg in argv) + _shell_tail(run, config)


def _shared_shell(run: DbtRun, config: Config) -> tuple[str, str]:
    """The text before and after every Bash task's ``<executable> <command> --select <x>``."""
    flags = "".join(f" {_shell(flag)}" for flag in run.flags)
    return _shell_setup(run), flags + _shell_tail(run, config)


@dataclass(frozen=True)
class _FileShared:
    """What every task of one file shares, worked out once per file instead of per task."""

    run: DbtRun
    shell: tuple[str, str]  # _shared_shell(run, config)
    #: ``_task_settings`` of a task whose node sets none of them (most tasks)
    default_settings: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, spec: DagSpec, config: Config) -> _FileShared:
        defaults = _task_settings({}, config, unique_id="")
        return cls(spec.dbt_run, _shared_shell(spec.dbt_run, config), tuple(defaults))


def _bash_command_value(task: TaskSpec, shared: _FileShared) -> Concat:
    """``bash_command`` as source: the file's shared constants around the task's own part.

    Equal to :func:`_bash_command` of the task's argv once Python evaluates it; naming the
    shared text once keeps a 2,000-task file half the size, and so cheaper to parse.
    """
    command = _shell_words((*shared.run.executable, task.dbt_command, "--select"))
    setup, flags = shared.shell
    parts: list[Raw | str] = [_SETUP_REF] if setup else []
    parts.append(f"{command} {_shell(task.selector)}")
    if flags:
        parts.append(_FLAGS_REF)
    return Concat(tuple(parts))


def _timedelta(seconds: float) -> Call:
    return Call("datetime.timedelta", (), (("seconds", seconds),))


def _task_setting(settings: Mapping[str, Any], config: Config, key: str, unique_id: str) -> Any:
    """``meta.dagfactory.<key>`` of the task's node, checked, else ``task_defaults.<key>``."""
    value = settings.get(key)
    if value is None:
        return getattr(config.task_defaults, key)
    check, wanted = TASK_SETTING_CHECKS[key]
    if not check(value):
        raise RenderError(
            f"expected {wanted}, got {value!r}",
            unique_id=unique_id,
            key=f"meta.dagfactory.{key}",
        )
    return value


#: task setting -> (operator keyword, conversion to what the operator takes)
_TASK_KWARGS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("retries", "retries", int),
    ("retry_delay_seconds", "retry_delay", lambda v: _timedelta(float(v))),
    ("execution_timeout_seconds", "execution_timeout", lambda v: _timedelta(float(v))),
    ("pool", "pool", str),
    ("pool_slots", "pool_slots", int),
)


def _task_settings(
    settings: Mapping[str, Any], config: Config, unique_id: str
) -> list[tuple[str, Any]]:
    """Retries, retry delay, timeout and pool: the node's ``meta.dagfactory`` beats config."""
    kwargs: list[tuple[str, Any]] = []
    for key, keyword, convert in _TASK_KWARGS:
        value = _task_setting(settings, config, key, unique_id)
        if value is not None:
            kwargs.append((keyword, convert(value)))
    return kwargs


_KPO = "airflow.providers.cncf.kubernetes.operators.pod.KubernetesPodOperator"
#: names that ``Call`` values from ``_k8s`` use, and the import that defines each
_CALL_IMPORTS = {
    "k8s": _Import("kubernetes.client", "models as k8s"),
    "Secret": _Import("airflow.providers.cncf.kubernetes.secret", "Secret"),
}


@lru_cache(maxsize=64)  # one operator or two, asked for every task
def _operator_import(dotted: str) -> _Import:
    module, _, name = dotted.rpartition(".")
    return _Import(module, name)


def _call_imports(names: Iterable[str]) -> set[_Import]:
    """Imports for the k8s model / Secret constructors among ``names``."""
    heads = {name.split(".", 1)[0] for name in names}
    return {_CALL_IMPORTS[head] for head in heads if head in _CALL_IMPORTS}


def _task_tail(task: TaskSpec, config: Config, shared: _FileShared) -> list[tuple[str, Any]]:
    """Keyword arguments every operator gets: retries & co, assets, docs."""
    if task.settings:
        kwargs = _task_settings(task.settings, config, task.unique_ids[0])
    else:
        kwargs = list(shared.default_settings)
    if task.inlets:
        kwargs.append(("inlets", [Call("Asset", (uri,)) for uri in task.inlets]))
    if task.outlets:
        kwargs.append(("outlets", [Call("Asset", (uri,)) for uri in task.outlets]))
    if task.doc:
        kwargs.append(("doc_md", task.doc))
    return kwargs


def _bash_kwargs(task: TaskSpec, config: Config, shared: _FileShared) -> list[tuple[str, Any]]:
    kwargs: list[tuple[str, Any]] = [
        ("task_id", task.task_id),
        (
            "bash_command",
            _bash_command_value(task, shared),
        ),
    ]
    if config.dbt.env:
        kwargs.append(("env", dict(config.dbt.env)))
        kwargs.append(("append_env", True))
    return kwargs


def _celery_call(
    task: TaskSpec, config: Config, shared: _FileShared
) -> tuple[_Import, list[tuple[str, Any]]]:
    """BashOperator on the shared Celery workers (its queue; its executor when several run)."""
    kwargs = _bash_kwargs(task, config, shared)
    celery = config.routing.celery
    if celery.queue:
        kwargs.append(("queue", celery.queue))
    if len(config.routing.executors) > 1:
        kwargs.append(("executor", celery.executor))
    return _operator_import(_BASH), kwargs + _task_tail(task, config, shared)


def _kubernetes_executor_call(
    task: TaskSpec, config: Config, shared: _FileShared
) -> tuple[_Import, list[tuple[str, Any]]]:
    """The same Bash task, run by the KubernetesExecutor in a pod shaped by ``pod_override``."""
    kwargs = _bash_kwargs(task, config, shared)
    kwargs.append(("executor", config.routing.kubernetes.executor))
    pod = task.route.pod or {}
    kwargs.append(("executor_config", {"pod_override": _k8s.pod_override(pod)}))
    return _operator_import(_BASH), kwargs + _task_tail(task, config, shared)


def _kubernetes_pod_call(
    task: TaskSpec, config: Config, shared: _FileShared
) -> tuple[_Import, list[tuple[str, Any]]]:
    """KubernetesPodOperator running the task's dbt command line in the configured image.

    ``cmds``/``arguments`` are the Bash task's argv without a shell; both are Airflow
    template fields, so each argument is escaped like the Bash command (``--vars`` excepted:
    the team's own config may use templates there).
    """
    kubernetes = config.routing.kubernetes
    pod = task.route.pod or {}
    if not pod.get("image"):  # routing checks this; a hand-made Route may not have
        raise RenderError(
            "a KubernetesPodOperator task needs an image", unique_id=task.unique_ids[0]
        )
    arguments = [jinja_escape(arg) for arg in task.argv[1:]]
    if config.dbt.vars:
        # The same Jinja-safe JSON as the Bash path (no shell here, so no shell quoting).
        arguments += ["--vars", _vars_json(config.dbt.vars)]
    kwargs: list[tuple[str, Any]] = [
        ("task_id", task.task_id),
        ("image", pod["image"]),
        ("cmds", [jinja_escape(task.argv[0])]),
        ("arguments", arguments),
    ]
    if kubernetes.kubernetes_conn_id:
        kwargs.append(("kubernetes_conn_id", kubernetes.kubernetes_conn_id))
    kwargs += _k8s.pod_operator_kwargs(pod, config.dbt.env)
    kwargs += [
        ("on_finish_action", kubernetes.on_finish_action),
        ("get_logs", kubernetes.get_logs),
        ("log_events_on_failure", kubernetes.log_events_on_failure),
        ("startup_timeout_seconds", kubernetes.startup_timeout_seconds),
        ("deferrable", kubernetes.deferrable),
    ]
    return _operator_import(_KPO), kwargs + _task_tail(task, config, shared)


def _task_call(
    task: TaskSpec, config: Config, shared: _FileShared
) -> tuple[_Import, list[tuple[str, Any]]]:
    """The operator and its keyword arguments for one task, by its route."""
    runner = task.route.runner
    if runner == "celery":
        return _celery_call(task, config, shared)
    if runner == "kubernetes":
        if config.routing.kubernetes.mode == "executor":
            return _kubernetes_executor_call(task, config, shared)
        return _kubernetes_pod_call(task, config, shared)
    raise RenderError(f"unknown runner {runner!r}", unique_id=task.unique_ids[0])


def _asset_list_class(spec: DagSpec, version: str) -> bool:
    """Whether the file defines ``_AssetList``, a tuple that hashes once, for its schedule.

    Airflow 3 hashes the DAG, schedule included, for every task named in every dependency
    call; a plain list of N assets costs N ``json.dumps`` each time, so parsing grew with
    tasks x assets (60 s for a 1,400-task DAG on 950 assets).
    """
    return spec.trigger == "assets" and version in _airflow_api.HASH_WALKS_SCHEDULE_ASSETS


def _schedule(spec: DagSpec, version: str) -> Any:
    """The ``schedule=`` value, in Airflow 3 names (``_airflow_api`` maps them for 2)."""
    if spec.trigger == "schedule":
        return spec.schedule
    assets = [Call("Asset", (uri,)) for uri in spec.schedule_assets]
    if spec.trigger == "assets":
        return Call(ASSET_LIST, (assets,)) if _asset_list_class(spec, version) else assets
    timetable = Call("CronTriggerTimetable", (spec.schedule,), (("timezone", "UTC"),))
    return Call("AssetOrTimeSchedule", (), (("timetable", timetable), ("assets", assets)))


def _sensor_kwargs(sensor: SensorSpec, config: Config) -> list[tuple[str, Any]]:
    """The ExternalTaskSensor of ``cross_dag: sensors``: deferrable, fails with upstream.

    It retries like the dbt tasks (``task_defaults``): a sensor is cheap to run again.
    """
    kwargs: list[tuple[str, Any]] = [
        ("task_id", sensor.task_id),
        ("external_dag_id", sensor.external_dag_id),
        ("external_task_id", sensor.external_task_id),
    ]
    if sensor.execution_delta_seconds:
        kwargs.append(("execution_delta", _timedelta(sensor.execution_delta_seconds)))
    kwargs += [
        ("allowed_states", ["success"]),
        ("failed_states", ["failed", "upstream_failed"]),
        ("deferrable", True),
    ]
    defaults = config.task_defaults
    if defaults.retries is not None:
        kwargs.append(("retries", defaults.retries))
    if defaults.retry_delay_seconds is not None:
        kwargs.append(("retry_delay", _timedelta(defaults.retry_delay_seconds)))
    return kwargs


def _dag_kwargs(spec: DagSpec, config: Config) -> list[tuple[str, Any]]:
    defaults = config.dag_defaults
    schedule = _schedule(spec, config.airflow_version)
    default_args = {"owner": spec.owner, **dict(defaults.default_args)}
    kwargs: list[tuple[str, Any]] = [
        ("dag_id", spec.dag_id),
        ("schedule", schedule),
        ("start_date", _start_date(defaults.start_date)),
        ("catchup", defaults.catchup),
        ("default_args", default_args),
        ("tags", list(spec.tags)),
    ]
    if defaults.max_active_runs is not None:
        kwargs.append(("max_active_runs", defaults.max_active_runs))
    kwargs.append(
        (
            "doc_md",
            f"dbt project {spec.project}, group {spec.group}, owned by {spec.owner}. "
            "Generated by dagfactory: edit the dbt project, not this file.",
        )
    )
    return kwargs


#: stands for the header's hash while the text it covers is rendered
_HASH_SLOT = "@@dagfactory-content-hash@@"


def _with_content_hash(text: str) -> str:
    """Put the hash of the file's own text into its header.

    The text is all that shapes a file (plan, template, Airflow names, generator version in
    the first line), so the hash changes exactly when the file does: a config change that
    touches one DAG leaves every other file byte-identical, and so unpushed.
    """
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return text.replace(_HASH_SLOT, digest, 1)


def _localized(
    kwargs: list[tuple[str, Any]], version: str, used: set[str], calls: set[str] | None = None
) -> list[tuple[str, str]]:
    """Keyword arguments as source, Airflow names mapped to the target version (see
    ``_airflow_api``); the table symbols met are added to ``used``, and the constructor
    names emitted to ``calls``."""
    calls = set() if calls is None else calls
    if version == _airflow_api.NATIVE:  # written in these names already: only note them
        source = [(name, literal(value, calls)) for name, value in kwargs]
        used.update(name for name in calls if name in _airflow_api.SYMBOLS)
        return source
    return [
        (name, literal(_airflow_api.localize(value, version, used), calls))
        for name, value in kwargs
    ]


@lru_cache(maxsize=64)  # likewise
def _versioned(operator: _Import, version: str) -> _Import:
    """An operator's import in the target Airflow version (written for Airflow 3)."""
    return _Import(*_airflow_api.locate(operator.name, version, default_module=operator.module))


def render_dag(spec: DagSpec, config: Config, template_dir: str | None = None) -> RenderedFile:
    version = config.airflow_version
    used = {"DAG"}  # symbols of the _airflow_api table this file uses
    imports: set[_Import] = set()
    tasks = []
    for index, sensor in enumerate(spec.sensors):
        used.add("ExternalTaskSensor")
        tasks.append(
            _TaskSource(
                var=f"s{index}",
                operator=_airflow_api.locate("ExternalTaskSensor", version)[1],
                kwargs=_localized(_sensor_kwargs(sensor, config), version, used),
            )
        )
    shared = _FileShared.of(spec, config)
    calls: set[str] = set()  # constructor names in the tasks' arguments, for their imports
    for index, task in enumerate(spec.tasks):
        operator, kwargs = _task_call(task, config, shared)
        operator = _versioned(operator, version)
        imports.add(operator)
        tasks.append(
            _TaskSource(
                var=f"t{index}",
                operator=operator.name,
                kwargs=_localized(kwargs, version, used, calls),
            )
        )
    imports.update(_call_imports(calls))
    dag_kwargs = _localized(_dag_kwargs(spec, config), version, used)
    imports.update(_Import(*_airflow_api.locate(symbol, version)) for symbol in used)
    constants = []
    if any(task.operator == "BashOperator" for task in tasks):
        constants = [(name, literal(text)) for name, text in zip(_SHARED, shared.shell) if text]
    var_of = {task.task_id: f"t{index}" for index, task in enumerate(spec.tasks)}
    var_of.update({sensor.task_id: f"s{index}" for index, sensor in enumerate(spec.sensors)})
    # One set_upstream call per task, not one `>>` per edge: Airflow re-hashes the DAG (and
    # every schedule asset) on each call, so calls, not edges, drive parse time.
    upstream = [
        (var_of[task.task_id], [var_of[up] for up in (*task.wait_for, *task.upstream)])
        for task in spec.tasks
        if task.upstream or task.wait_for
    ]
    context = {
        "generator": f"dagfactory {__version__}",
        "content_hash": _HASH_SLOT,
        "dag_id_comment": spec.dag_id,
        "imports": _import_lines(imports),
        "dag_kwargs": dag_kwargs,
        "tasks": tasks,
        "upstream": upstream,
        "asset_list_class": _asset_list_class(spec, version),
        "constants": constants,
    }
    try:
        text = _template(tuple(template_dirs(template_dir))).render(context)
    except Exception as exc:  # jinja2 errors of a user template
        raise RenderError(f"template failed: {exc}", group=spec.group) from exc
    return RenderedFile(spec.file_name, _with_content_hash(text), spec.dag_id)


def render_dags(
    specs: Iterable[DagSpec], config: Config, template_dir: str | None = None
) -> list[RenderedFile]:
    return [render_dag(spec, config, template_dir) for spec in specs]
