"""Stage 5: decide every operator call and every DAG keyword, before anything is rendered.

``specs`` says what runs where (a ``DagSpec`` per group, a ``TaskSpec`` per unit with its
route); this stage turns that into what the generated file calls: for each task the operator
(a symbol of :data:`dagfactory._airflow_api.SYMBOLS`, in Airflow 3 names) and its keyword
values, for each DAG its ``DAG(...)`` keywords. It is the only stage after routing that reads
the ``Config`` parts that shape operators (runner mode, executors, queue, pod settings, task
defaults, dbt vars and env), so ``render`` receives finished values and only lays them out.

Precedence written down here, once:

* task settings (``retries``, ``retry_delay_seconds``, ``execution_timeout_seconds``,
  ``pool``, ``pool_slots``): the node's ``meta.dagfactory`` beats ``task_defaults``;
  sensors (``cross_dag: sensors``) retry like the dbt tasks (``task_defaults``);
* the DAG owner (``default_args.owner`` and the ``doc_md`` line are the same value):
  ``groups.<g>.owner`` > the dbt group's owner > ``dag_defaults.default_args.owner`` >
  ``dag_defaults.owner`` (decided in ``grouping``, written here);
* ``executor=``: a Celery task names its executor only when ``routing.executors`` lists
  several; a Kubernetes task in ``executor`` mode always names its own.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import orjson

from dagfactory import _k8s, notifications
from dagfactory._pysrc import Call, Concat, Raw, jinja_escape
from dagfactory.config import Config, DbtConfig, TaskDefaults
from dagfactory.errors import ConfigError, ManifestError, RoutingError
from dagfactory.node_settings import NodeSettings
from dagfactory.specs import DagSpec, DbtRun, SensorSpec, TaskSpec

__all__ = [
    "ASSET_LIST",
    "DagPlan",
    "OperatorCall",
    "bash_command",
    "plan_dag",
    "plan_dags",
]

#: the schedule's collection type (``Call(ASSET_LIST, ([assets],))``); ``render`` defines it
#: in the file where the Airflow version hashes schedule assets, else writes a plain list
ASSET_LIST = "_AssetList"
#: module constants of a generated file: the shell text every dbt task of the file shares
SETUP_NAME, FLAGS_NAME = "DBT_SETUP", "DBT_FLAGS"

BASH, POD, SENSOR = "BashOperator", "KubernetesPodOperator", "ExternalTaskSensor"


@dataclass(frozen=True)
class OperatorCall:
    """One task: ``operator(**kwargs)``, set after the task ids in ``upstream``."""

    task_id: str
    #: the operator's symbol in ``_airflow_api.SYMBOLS`` (its Airflow 3 name)
    operator: str
    #: keyword values as ``_pysrc.literal`` takes them (``Call`` for constructors)
    kwargs: tuple[tuple[str, Any], ...]
    upstream: tuple[str, ...] = ()


@dataclass(frozen=True)
class DagPlan:
    """Everything one generated file holds, decided; ``render`` only lays it out."""

    dag_id: str
    file_name: str
    group: str
    dag_kwargs: tuple[tuple[str, Any], ...]
    sensors: tuple[OperatorCall, ...]
    tasks: tuple[OperatorCall, ...]
    #: module constants (name, text) the tasks' ``Raw`` references point at
    constants: tuple[tuple[str, str], ...] = ()
    #: (module, name) imports beyond the Airflow name table: the notifier classes
    imports: tuple[tuple[str, str], ...] = ()


# --- dbt command lines -------------------------------------------------------------------

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


#: what ``shlex.quote`` leaves as it is (and holds no ``{`` for Jinja to open)
_SHELL_SAFE = re.compile(r"[\w@%+=:,./-]+", re.ASCII)


def _shell(text: str) -> str:
    """One shell word that Airflow's Jinja renders as itself."""
    if _SHELL_SAFE.fullmatch(text):  # most selectors: nothing to quote or escape
        return text
    return _quoted(text)


@lru_cache(maxsize=4096)  # the shared flags repeat in every task
def _quoted(text: str) -> str:
    return jinja_escape(shlex.quote(text))


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
    if run.slices:
        # "$@" is the dbt executable, or run.py and the dbt executable where the slices are.
        exe, runner = _shell(run.executable[0]), _shell(f"{run.slices.rstrip('/')}/run.py")
        # tasks fork from the worker's dbt server (run.py starts one where none runs)
        server = f" --server={run.server_idle_seconds:g}" if run.server_idle_seconds else ""
        lines.append(f"set -- {exe}; if [ -x {runner} ]; then set -- {runner}{server} {exe}; fi")
    return "".join(f"{line}\n" for line in lines)


def _shell_tail(run: DbtRun, dbt: DbtConfig) -> str:
    """What follows the dbt argv: the target folder and ``--vars``."""
    tail = ' --target-path "$T" --log-path "$T"' if run.target_base else ""
    if dbt.vars:
        # Vars are the one place where Airflow templates are wanted ({{ ds }}): they come
        # from the team's own config, not from the manifest. What a template renders
        # ({{ params.x }}, {{ dag_run.conf[...] }}) may hold a quote, so the quoting for the
        # shell happens after rendering, in Jinja, never around the unrendered text.
        vars_json = _vars_json(dbt.vars)
        tail += f" --vars {_SHELL_QUOTED_OPEN}{vars_json}{_SHELL_QUOTED_CLOSE}"
    return tail


def bash_command(argv: Iterable[str], dbt: DbtConfig, run: DbtRun = _NO_DBT_RUN) -> str:
    """The dbt command line for ``bash -c``, as a Bash task's ``bash_command`` renders to."""
    words = [_shell(arg) for arg in argv]
    if run.slices and words:
        words[0] = '"$@"'
    return _shell_setup(run) + " ".join(words) + _shell_tail(run, dbt)


# --- task settings -----------------------------------------------------------------------


def _timedelta(seconds: float) -> Call:
    return Call("datetime.timedelta", (), (("seconds", seconds),))


#: task setting -> (operator keyword, conversion to what the operator takes)
_TASK_KWARGS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("retries", "retries", int),
    ("retry_delay_seconds", "retry_delay", lambda v: _timedelta(float(v))),
    ("execution_timeout_seconds", "execution_timeout", lambda v: _timedelta(float(v))),
    ("pool", "pool", str),
    ("pool_slots", "pool_slots", int),
)


def task_settings(own: NodeSettings | None, defaults: TaskDefaults) -> tuple[tuple[str, Any], ...]:
    """Retries, retry delay, timeout and pool: the node's ``meta.dagfactory`` beats
    ``task_defaults`` (both checked where they were read)."""
    kwargs: list[tuple[str, Any]] = []
    for key, keyword, convert in _TASK_KWARGS:
        value = getattr(own, key) if own is not None else None
        if value is None:
            value = getattr(defaults, key)
        if value is not None:
            kwargs.append((keyword, convert(value)))
    return tuple(kwargs)


# --- operator calls ----------------------------------------------------------------------


@dataclass(frozen=True)
class _FileShared:
    """What every task of one file shares, worked out once per file instead of per task."""

    run: DbtRun
    setup: str  # shell lines before the dbt command ("" for none)
    flags: str  # shell text after ``--select <selector>``
    default_settings: tuple[tuple[str, Any], ...]  # of a node that sets none of them

    @classmethod
    def of(cls, spec: DagSpec, config: Config) -> _FileShared:
        run = spec.dbt_run
        flags = "".join(f" {_shell(flag)}" for flag in run.flags)
        return cls(
            run,
            _shell_setup(run),
            flags + _shell_tail(run, config.dbt),
            task_settings(None, config.task_defaults),
        )


_SETUP_REF, _FLAGS_REF = Raw(SETUP_NAME), Raw(FLAGS_NAME)


def _bash_command_value(task: TaskSpec, shared: _FileShared) -> Concat:
    """``bash_command`` as source: the file's shared constants around the task's own part.

    Equal to :func:`bash_command` of the task's argv once Python evaluates it; naming the
    shared text once keeps a 2,000-task file half the size, and so cheaper to parse.
    """
    if shared.run.slices:  # DBT_SETUP put the executable (or run.py and it) in "$@"
        command = '"$@" ' + _shell_words((task.dbt_command, "--select"))
    else:
        command = _shell_words((*shared.run.executable, task.dbt_command, "--select"))
    parts: list[Raw | str] = [_SETUP_REF] if shared.setup else []
    parts.append(f"{command} {_shell(task.selector)}")
    if shared.flags:
        parts.append(_FLAGS_REF)
    return Concat(tuple(parts))


def _task_tail(task: TaskSpec, shared: _FileShared, config: Config) -> list[tuple[str, Any]]:
    """Keyword arguments every operator gets: retries & co, assets, docs."""
    if task.settings is not None and task.settings.has_task_settings:
        kwargs = list(task_settings(task.settings, config.task_defaults))
    else:
        kwargs = list(shared.default_settings)
    if task.inlets:
        kwargs.append(("inlets", [Call("Asset", (uri,)) for uri in task.inlets]))
    if task.outlets:
        kwargs.append(("outlets", [Call("Asset", (uri,)) for uri in task.outlets]))
    if task.doc:
        kwargs.append(("doc_md", task.doc))
    return kwargs


def _bash_kwargs(task: TaskSpec, shared: _FileShared, dbt: DbtConfig) -> list[tuple[str, Any]]:
    kwargs: list[tuple[str, Any]] = [
        ("task_id", task.task_id),
        ("bash_command", _bash_command_value(task, shared)),
    ]
    if dbt.env:
        kwargs.append(("env", dict(dbt.env)))
        kwargs.append(("append_env", True))
    return kwargs


def _celery_call(task: TaskSpec, shared: _FileShared, config: Config) -> tuple[str, list]:
    """BashOperator on the shared Celery workers (its queue; its executor when several run)."""
    kwargs = _bash_kwargs(task, shared, config.dbt)
    celery = config.routing.celery
    if celery.queue:
        kwargs.append(("queue", celery.queue))
    if len(config.routing.executors) > 1:
        kwargs.append(("executor", celery.executor))
    return BASH, kwargs


def _kubernetes_executor_call(
    task: TaskSpec, shared: _FileShared, config: Config
) -> tuple[str, list]:
    """The same Bash task, run by the KubernetesExecutor in a pod shaped by ``pod_override``."""
    kwargs = _bash_kwargs(task, shared, config.dbt)
    kwargs.append(("executor", config.routing.kubernetes.executor))
    pod = task.route.pod or {}
    kwargs.append(("executor_config", {"pod_override": _k8s.pod_override(pod)}))
    return BASH, kwargs


def _kubernetes_pod_call(task: TaskSpec, shared: _FileShared, config: Config) -> tuple[str, list]:
    """KubernetesPodOperator running the task's dbt command line in the configured image.

    ``cmds``/``arguments`` are the Bash task's argv without a shell; both are Airflow
    template fields, so each argument is escaped like the Bash command (``--vars`` excepted:
    the team's own config may use templates there).
    """
    kubernetes = config.routing.kubernetes
    pod = task.route.pod or {}
    if not pod.get("image"):  # routing checks this; a hand-made Route may not have
        raise RoutingError(
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
    kwargs += _k8s.pod_operator_kwargs(pod, pod_env(config.dbt.env, pod, task.unique_ids[0]))
    kwargs += [
        ("on_finish_action", kubernetes.on_finish_action),
        ("get_logs", kubernetes.get_logs),
        ("log_events_on_failure", kubernetes.log_events_on_failure),
        ("startup_timeout_seconds", kubernetes.startup_timeout_seconds),
        ("deferrable", kubernetes.deferrable),
    ]
    return POD, kwargs


#: an Airflow template that reads a connection or a variable: ``{{ conn.warehouse.password }}``
_READS_CREDENTIALS = re.compile(r"\{\{[^}]*?\b(?:conn|var)\s*\.")


def pod_env(env: Mapping[str, str], pod: Mapping[str, Any], unique_id: str) -> dict[str, str]:
    """``dbt.env`` for a KubernetesPodOperator: what reads a connection or variable stays out.

    On Celery and the KubernetesExecutor the task renders ``env`` in the worker, so
    ``{{ conn.x.password }}`` reaches dbt and nothing else. A pod operator would render it
    into the pod spec (``env_vars``) in clear text, readable by anyone who can read pods. So
    here such a value must come from a Kubernetes secret in the pod's ``secrets`` (an ``env``
    secret whose ``deploy_target`` is the variable, or a whole secret as env-from); the
    template is dropped, and a variable no secret provides is a build error.
    """
    targets = {s["deploy_target"] for s in pod.get("secrets") or () if s["deploy_type"] == "env"}
    plain = {}
    for name, value in env.items():
        if not _READS_CREDENTIALS.search(str(value)):
            plain[name] = value
        elif name not in targets and None not in targets:  # None: a whole secret, env-from
            raise ConfigError(
                f"reads an Airflow connection or variable, which a pod would hold in clear "
                f"text: give the pod a Kubernetes secret for it (routing.kubernetes.pod.secrets:"
                f" {{deploy_type: env, deploy_target: {name}, secret: ..., key: ...}})",
                unique_id=unique_id,
                key=f"dbt.env.{name}",
            )
    return plain


def _task_call(task: TaskSpec, shared: _FileShared, config: Config) -> OperatorCall:
    """The operator and its keyword arguments for one task, by its route."""
    runner = task.route.runner
    if runner == "celery":
        operator, kwargs = _celery_call(task, shared, config)
    elif runner == "kubernetes" and config.routing.kubernetes.mode == "executor":
        operator, kwargs = _kubernetes_executor_call(task, shared, config)
    elif runner == "kubernetes":
        operator, kwargs = _kubernetes_pod_call(task, shared, config)
    else:
        raise RoutingError(f"unknown runner {runner!r}", unique_id=task.unique_ids[0])
    kwargs += _task_tail(task, shared, config)
    return OperatorCall(task.task_id, operator, tuple(kwargs), (*task.wait_for, *task.upstream))


def _sensor_call(sensor: SensorSpec, defaults: TaskDefaults) -> OperatorCall:
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
    if defaults.retries is not None:
        kwargs.append(("retries", defaults.retries))
    if defaults.retry_delay_seconds is not None:
        kwargs.append(("retry_delay", _timedelta(defaults.retry_delay_seconds)))
    return OperatorCall(sensor.task_id, SENSOR, tuple(kwargs))


# --- the DAG -----------------------------------------------------------------------------


def _start_date(value: str) -> Call:
    date = dt.date.fromisoformat(value[:10])
    return Call(
        "datetime.datetime",
        (date.year, date.month, date.day),
        (("tzinfo", Raw("datetime.timezone.utc")),),
    )


def _schedule(spec: DagSpec) -> Any:
    """The ``schedule=`` value, in Airflow 3 names (``render`` localises them)."""
    if spec.trigger == "schedule":
        return spec.schedule
    assets = [Call("Asset", (uri,)) for uri in spec.schedule_assets]
    if spec.trigger == "assets":
        return Call(ASSET_LIST, (assets,))
    timetable = Call("CronTriggerTimetable", (spec.schedule,), (("timezone", "UTC"),))
    return Call("AssetOrTimeSchedule", (), (("timetable", timetable), ("assets", assets)))


def _dag_kwargs(spec: DagSpec, config: Config) -> tuple[tuple[str, Any], ...]:
    defaults = config.dag_defaults
    # The owner decided in grouping is the one both default_args and doc_md name.
    default_args = {**dict(defaults.default_args), "owner": spec.owner}
    kwargs: list[tuple[str, Any]] = [
        ("dag_id", spec.dag_id),
        ("schedule", _schedule(spec)),
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
    return tuple(kwargs)


# --- notifications -------------------------------------------------------------------------

#: event -> the keyword the operator and the DAG take it as
_CALLBACK_KEYWORDS = {
    "on_failure": "on_failure_callback",
    "on_retry": "on_retry_callback",
    "on_success": "on_success_callback",
}


def _callback_kwargs(events: notifications.Events) -> list[tuple[str, Any]]:
    """``on_<event>_callback=[Notifier(...), ...]`` for each event that has notifiers."""
    return [
        (_CALLBACK_KEYWORDS[event], [Call(n.name, (), n.kwargs) for n in notifiers])
        for event, notifiers in events
        if notifiers
    ]


def plan_notifications(
    spec: DagSpec, tasks: tuple[OperatorCall, ...], config: Config
) -> tuple[tuple[OperatorCall, ...], list[tuple[str, Any]], tuple[tuple[str, str], ...]]:
    """The notifier callbacks of one file: (tasks with theirs, the DAG's, the imports).

    Per event, a node's ``meta.dagfactory.notifications`` beats the group's ``task``
    section, which beats the global one; the DAG's come from the group's ``dag`` section,
    else the global one (precedence and allow-list: ``dagfactory/notifications.py``).
    Sensors get none: they wait, the dbt tasks do the work someone must hear about.
    """
    top = notifications.parse_notifications(config.notifications)
    group = config.groups.get(spec.group)
    group_task, group_dag = notifications.parse_group(
        group.notifications if group is not None else None, f"groups.{spec.group}.notifications"
    )
    own_of = {
        task.task_id: getattr(task.settings, "notifications", None) or () for task in spec.tasks
    }
    uid_of = {task.task_id: task.unique_ids[0] for task in spec.tasks}
    used: dict[str, str] = {}

    def imported(events: notifications.Events) -> None:
        for _, notifiers in events:
            for notifier in notifiers:
                if used.setdefault(notifier.name, notifier.module) != notifier.module:
                    raise ConfigError(
                        f"two notifier classes named {notifier.name} "
                        f"({used[notifier.name]}, {notifier.module}) in one DAG file",
                        group=spec.group,
                        key="notifications",
                    )

    planned = []
    for call in tasks:
        own = own_of.get(call.task_id, ())
        if not own and not top.task and not group_task:  # nothing to check, merge or add
            planned.append(call)
            continue
        try:
            notifications.check_allowed(own, top.allowed_modules, "meta.dagfactory.notifications")
        except notifications.NotifierError as exc:
            raise ManifestError(exc.message, unique_id=uid_of[call.task_id], key=exc.key) from None
        events = notifications.merge(top.task, group_task, own)
        imported(events)
        if events:
            call = replace(call, kwargs=(*call.kwargs, *_callback_kwargs(events)))
        planned.append(call)
    dag_events = notifications.merge(top.dag, group_dag)
    imported(dag_events)
    imports = tuple(sorted((module, name) for name, module in used.items()))
    return tuple(planned), _callback_kwargs(dag_events), imports


def plan_dag(spec: DagSpec, config: Config) -> DagPlan:
    """One file's plan: its DAG keywords, its sensors and its tasks, every value decided."""
    shared = _FileShared.of(spec, config)
    sensors = tuple(_sensor_call(sensor, config.task_defaults) for sensor in spec.sensors)
    tasks = tuple(_task_call(task, shared, config) for task in spec.tasks)
    tasks, dag_callbacks, imports = plan_notifications(spec, tasks, config)
    constants: tuple[tuple[str, str], ...] = ()
    if any(task.operator == BASH for task in tasks):
        named = ((SETUP_NAME, shared.setup), (FLAGS_NAME, shared.flags))
        constants = tuple((name, text) for name, text in named if text)
    return DagPlan(
        dag_id=spec.dag_id,
        file_name=spec.file_name,
        group=spec.group,
        dag_kwargs=(*_dag_kwargs(spec, config), *dag_callbacks),
        sensors=sensors,
        tasks=tasks,
        constants=constants,
        imports=imports,
    )


def plan_dags(specs: Iterable[DagSpec], config: Config) -> list[DagPlan]:
    plans = [plan_dag(spec, config) for spec in specs]
    _check_executors(plans, config.routing.executors)
    return plans


def _check_executors(plans: Iterable[DagPlan], listed: tuple[str, ...]) -> None:
    """With ``routing.executors`` set, every executor a task names must be in that list."""
    if not listed:
        return
    named = {
        value
        for plan in plans
        for call in plan.tasks
        for keyword, value in call.kwargs
        if keyword == "executor"
    }
    missing = sorted(named - set(listed))
    if missing:
        raise ConfigError(
            f"tasks need executor(s) {', '.join(missing)}, which routing.executors does not "
            f"list ({', '.join(listed)}); Airflow rejects a DAG naming an executor "
            "it does not run",
            key="routing.executors",
        )
