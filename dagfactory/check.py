"""``dagfactory check``: the CI guardrails that stop a bad DAG file before it reaches the bucket.

Four kinds of check over a folder of DAG files, each finding naming a file and a line:

* **static** (always): the file parses as Python, defines a DAG with a literal ``dag_id``,
  its values pass Airflow's own limits (``airflow_rules``), and no two files share a DAG id;
* **load** (when an interpreter with Airflow is found): every file is imported by Airflow's
  ``DagBag`` in a fresh subprocess, as the DAG processor would, which reports import errors,
  cycles and executors Airflow does not have, and times each file against a budget;
* **policy** (the ``check:`` section of the config, or ``--policy FILE``): owner, tags,
  the team prefix, allowed queues / executors / namespaces / images, sizes, retries;
* **bucket** (``--against URL``): read-only; a DAG id of ours already pushed under another
  team's or project's prefix, and files in our prefix that our state object does not own.

The generator never imports Airflow, and neither does this module: the load check runs a small
self-contained script with the Airflow interpreter. Without one, the report says so on stderr
and in every format, and the static checks still run: never a silent pass.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagfactory import airflow_rules
from dagfactory.config import CheckConfig, Config
from dagfactory.errors import ConfigError, one_line

__all__ = [
    "CheckReport",
    "Finding",
    "check_build",
    "checked_build",
    "find_airflow_python",
    "format_github",
    "format_text",
    "load_policy",
]

FORMATS = ("text", "json", "github")
#: the owner Airflow fills in when a DAG names none (``[operators] default_owner``)
AIRFLOW_DEFAULT_OWNER = "airflow"
#: a load that takes longer than this is stopped: Airflow's own ``dagbag_import_timeout``
LOAD_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Finding:
    """One problem: where it is (file relative to the checked folder, 1-based line), which
    rule found it, and a one-line message."""

    path: str
    line: int
    rule: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "rule": self.rule, "message": self.message}


@dataclass(frozen=True)
class CheckReport:
    folder: str
    files: tuple[str, ...]
    findings: tuple[Finding, ...]
    #: ``{"python": ..., "version": ...}`` of the Airflow that loaded the files; None: not loaded
    airflow: Mapping[str, str] | None
    #: why the files were not loaded with Airflow (None when they were)
    not_loaded: str | None = None
    parse_seconds: Mapping[str, float] = field(default_factory=dict)
    against: str | None = None

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "ok": self.ok,
            "files": list(self.files),
            "airflow": dict(self.airflow) if self.airflow else None,
            "not_loaded": self.not_loaded,
            "parse_seconds": dict(sorted(self.parse_seconds.items())),
            "against": self.against,
            "findings": [f.to_dict() for f in self.findings],
        }


# --------------------------------------------------------------------------- static model


@dataclass
class _Value:
    value: Any
    line: int


@dataclass
class _Task:
    task_id: _Value
    keywords: dict[str, _Value]
    #: ``image=`` and ``namespace=`` anywhere in the task's call: a pod operator's own
    #: keywords, or the ``k8s.V1Container``/``V1ObjectMeta`` of an executor's pod_override
    pod_values: dict[str, list[_Value]]


@dataclass
class _Dag:
    line: int
    keywords: dict[str, _Value]
    tasks: list[_Task]
    assets: list[_Value]  # Asset('...') literals anywhere in the file
    schedule_assets: int


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _read_model(tree: ast.AST) -> list[_Dag]:
    """The DAG calls of a file, their task calls and the values policies look at."""
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    dags = []
    for call in calls:
        if _call_name(call) != "DAG":
            continue
        keywords = {
            k.arg: _Value(_literal(k.value), k.value.lineno) for k in call.keywords if k.arg
        }
        schedule = next((k.value for k in call.keywords if k.arg == "schedule"), None)
        schedule_assets = 0
        if schedule is not None:
            schedule_assets = sum(
                1
                for n in ast.walk(schedule)
                if isinstance(n, ast.Call) and _call_name(n) in ("Asset", "Dataset")
            )
        dags.append(_Dag(call.lineno, keywords, [], [], schedule_assets))
    if not dags:
        return []
    dag = dags[0]  # a generated file holds one DAG; tasks and assets are credited to it
    for call in calls:
        name = _call_name(call)
        if name in ("Asset", "Dataset") and call.args:
            dag.assets.append(_Value(_literal(call.args[0]), call.lineno))
        task_id = next((k for k in call.keywords if k.arg == "task_id"), None)
        if task_id is None:
            continue
        keywords = {
            k.arg: _Value(_literal(k.value), k.value.lineno) for k in call.keywords if k.arg
        }
        pod_values: dict[str, list[_Value]] = {"image": [], "namespace": []}
        for inner in ast.walk(call):
            for k in inner.keywords if isinstance(inner, ast.Call) else ():
                if k.arg in pod_values:
                    pod_values[k.arg].append(_Value(_literal(k.value), k.value.lineno))
        task_value = _Value(_literal(task_id.value), task_id.value.lineno)
        dag.tasks.append(_Task(task_value, keywords, pod_values))
    return dags


# --------------------------------------------------------------------------- checks


def _static(
    name: str, source: str, findings: list[Finding], dag_ids: dict[str, tuple[str, int]]
) -> _Dag | None:
    try:
        tree = ast.parse(source, filename=name)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None) or 1
        findings.append(Finding(name, line, "syntax-error", f"{exc.__class__.__name__}: {exc}"))
        return None
    dags = _read_model(tree)
    if not dags:
        findings.append(Finding(name, 1, "no-dag", "the file defines no DAG(...)"))
        return None
    dag = dags[0]
    dag_id = dag.keywords.get("dag_id")
    if dag_id is None or not isinstance(dag_id.value, str):
        findings.append(Finding(name, dag.line, "dag-id", "dag_id is not a literal string"))
        return dag
    problem = airflow_rules.key_problem("DAG id", dag_id.value)
    if problem:
        findings.append(Finding(name, dag_id.line, "airflow-rule", problem))
    first = dag_ids.get(dag_id.value)
    if first is not None:
        findings.append(
            Finding(
                name,
                dag_id.line,
                "duplicate-dag-id",
                f"DAG id {dag_id.value!r} is also defined in {first[0]} line {first[1]}; "
                "Airflow keeps one of them",
            )
        )
    else:
        dag_ids[dag_id.value] = (name, dag_id.line)
    tags = dag.keywords.get("tags")
    if tags is not None and isinstance(tags.value, list):
        for tag in tags.value:
            problem = airflow_rules.tag_problem(str(tag))
            if problem:
                findings.append(Finding(name, tags.line, "airflow-rule", problem))
    schedule = dag.keywords.get("schedule")
    if schedule is not None and isinstance(schedule.value, str):
        runs = dag.keywords.get("max_active_runs")
        problem = airflow_rules.schedule_problem(schedule.value, runs.value if runs else None)
        if problem:
            findings.append(Finding(name, schedule.line, "airflow-rule", problem))
    for task in dag.tasks:
        if isinstance(task.task_id.value, str):
            problem = airflow_rules.key_problem("task id", task.task_id.value)
            if problem:
                findings.append(Finding(name, task.task_id.line, "airflow-rule", problem))
    for asset in dag.assets:
        if isinstance(asset.value, str) and len(asset.value) > airflow_rules.MAX_ASSET_LENGTH:
            findings.append(
                Finding(
                    name,
                    asset.line,
                    "airflow-rule",
                    f"asset URI is {len(asset.value)} characters; Airflow allows at most "
                    f"{airflow_rules.MAX_ASSET_LENGTH}",
                )
            )
    return dag


def _policy(name: str, dag: _Dag, policy: CheckConfig, team: str | None) -> list[Finding]:
    found: list[Finding] = []

    def add(line: int, rule: str, message: str) -> None:
        found.append(Finding(name, line, f"policy.{rule}", message))

    dag_id = dag.keywords.get("dag_id")
    default_args = dag.keywords.get("default_args")
    args = default_args.value if default_args and isinstance(default_args.value, dict) else {}
    args_line = default_args.line if default_args else dag.line
    if policy.require_owner:
        owner = args.get("owner")
        if not isinstance(owner, str) or owner.strip() in ("", AIRFLOW_DEFAULT_OWNER):
            add(
                args_line,
                "owner",
                f"the DAG's owner is {owner or AIRFLOW_DEFAULT_OWNER!r}; "
                "name the owning team (meta.dagfactory / groups.<name>.owner)",
            )
    tags = dag.keywords.get("tags")
    have = set(tags.value) if tags and isinstance(tags.value, list) else set()
    for tag in policy.required_tags:
        if tag not in have:
            add(tags.line if tags else dag.line, "tags", f"the DAG lacks the required tag {tag!r}")
    named = dag_id.value if dag_id and isinstance(dag_id.value, str) else None
    if (
        policy.team_prefix
        and team
        and dag_id is not None
        and named is not None
        and not named.startswith(f"{team}__")
    ):
        add(
            dag_id.line,
            "team-prefix",
            f"DAG id {named!r} does not start with the team's prefix {team + '__'!r}",
        )
    if policy.max_tasks is not None and len(dag.tasks) > policy.max_tasks:
        add(
            dag.line,
            "max-tasks",
            f"the DAG has {len(dag.tasks)} tasks; the policy allows {policy.max_tasks}",
        )
    if policy.max_schedule_assets is not None and dag.schedule_assets > policy.max_schedule_assets:
        schedule = dag.keywords.get("schedule")
        add(
            schedule.line if schedule else dag.line,
            "max-schedule-assets",
            f"the DAG is scheduled on {dag.schedule_assets} assets; the policy allows "
            f"{policy.max_schedule_assets}",
        )
    patterns = {
        key: re.compile(getattr(policy, plural))
        for key, plural in (
            ("queue", "queues"),
            ("executor", "executors"),
            ("namespace", "namespaces"),
            ("image", "images"),
        )
        if getattr(policy, plural) is not None
    }
    default_retries = args.get("retries", 0)
    for task in dag.tasks:
        task_name = task.task_id.value
        for key, pattern in patterns.items():
            values: Sequence[_Value | None] = task.pod_values.get(key) or [task.keywords.get(key)]
            for value in values:
                if value is None or not isinstance(value.value, str):
                    continue
                if not pattern.fullmatch(value.value):
                    add(
                        value.line,
                        key + "s",
                        f"task {task_name!r}: {key} {value.value!r} does "
                        f"not match the allowed pattern {pattern.pattern!r}",
                    )
        if policy.min_retries is not None:
            retries = task.keywords.get("retries")
            count = retries.value if retries else default_retries
            if not isinstance(count, int) or count < policy.min_retries:
                add(
                    retries.line if retries else task.task_id.line,
                    "retries",
                    f"task {task_name!r} retries {count!r} times; the policy asks for at least "
                    f"{policy.min_retries}",
                )
    return found


# --------------------------------------------------------------------------- load with Airflow

#: Run by the Airflow interpreter (which may not have dagfactory installed): import every file
#: with DagBag, one after another, timing each; write what it found as JSON to argv[2]. The
#: parse time is a second load of the file: the DAG processor's parent has the libraries
#: imported already, so the first load's one-off imports are not the file's cost.
_LOADER = r"""
import json, re, sys, time, traceback
files, out = json.loads(sys.argv[1]), sys.argv[2]
import airflow
from airflow.dag_processing.dagbag import DagBag
import airflow.sdk  # what every generated file imports, as the DAG processor has it
try:
    import airflow.providers.standard.operators.bash
except ImportError:
    pass
results = []
for path in files:
    bag = DagBag(dag_folder=path, safe_mode=False, load_op_links=False)
    # timed: a second load, as the DAG processor's steady state, with the libraries imported
    start = time.perf_counter()
    DagBag(dag_folder=path, safe_mode=False, load_op_links=False)
    seconds = time.perf_counter() - start
    errors = []
    for text in bag.import_errors.values():
        lines = [l for l in str(text).strip().splitlines() if l.strip()]
        where = re.findall(r'File "([^"]*)", line (\d+)', str(text))
        line = next((int(n) for f, n in reversed(where) if f == path or path.endswith(f)), None)
        errors.append({"message": lines[-1] if lines else "import error", "line": line})
    results.append({"path": path, "seconds": seconds, "dag_ids": sorted(bag.dags), "errors": errors})
with open(out, "w") as fh:
    json.dump({"version": airflow.__version__, "python": sys.executable, "files": results}, fh)
"""


def find_airflow_python(given: str | None = None) -> tuple[str | None, str]:
    """The interpreter that loads the files, and why there is none.

    ``given`` (``--airflow-python``) wins; else the current interpreter when Airflow is
    importable in it. The generator's own process never imports Airflow: importability is
    asked of the import system (``find_spec``), or of the given interpreter.
    """
    if given:
        asks = (
            "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('airflow') else 3)"
        )
        try:
            probe = subprocess.run([given, "-c", asks], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"cannot run {given}: {exc}", key="airflow_python") from exc
        if probe.returncode == 0:
            return given, ""
        return None, f"Airflow is not importable by {given}"
    import importlib.util

    if importlib.util.find_spec("airflow") is not None:
        return sys.executable, ""
    return None, (
        f"Airflow is not importable by {sys.executable}; pass --airflow-python PATH to load "
        "the files as Airflow would"
    )


def _load(
    python: str, folder: Path, names: Sequence[str], executors: Sequence[str]
) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    # the executors the config lists are the ones Airflow has: a task naming another is found
    if executors:
        env["AIRFLOW__CORE__EXECUTOR"] = ",".join(executors)
    with tempfile.TemporaryDirectory(prefix="dagfactory-check-") as tmp:
        env.setdefault("AIRFLOW_HOME", str(Path(tmp, "airflow-home")))
        out = Path(tmp, "load.json")
        paths = [str(folder / name) for name in names]
        try:
            proc = subprocess.run(
                [python, "-c", _LOADER, json.dumps(paths), str(out)],
                capture_output=True,
                text=True,
                env=env,
                timeout=LOAD_TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired as exc:
            raise ConfigError(
                f"loading the files with Airflow took over {LOAD_TIMEOUT_SECONDS} s"
            ) from exc
        if proc.returncode != 0 or not out.is_file():
            tail = one_line(
                (proc.stderr or proc.stdout).strip().splitlines()[-1:][0]
                if (proc.stderr or proc.stdout).strip()
                else "no output"
            )
            raise ConfigError(f"the Airflow loader failed ({python}): {tail}")
        data = json.loads(out.read_text())
    by_path = {Path(r["path"]).name: r for r in data["files"]}
    return {"version": data["version"], "python": data["python"], "files": by_path}


def _load_findings(
    loaded: Mapping[str, Any],
    models: Mapping[str, _Dag | None],
    budget: float,
    findings: list[Finding],
) -> dict[str, float]:
    seconds: dict[str, float] = {}
    unparsable = {f.path for f in findings if f.rule == "syntax-error"}  # reported already
    for name, result in sorted(loaded["files"].items()):
        if name in unparsable:
            continue
        seconds[name] = round(result["seconds"], 4)
        model = models.get(name)
        fallback = model.line if model else 1
        for error in result["errors"]:
            findings.append(
                Finding(name, error["line"] or fallback, "import-error", one_line(error["message"]))
            )
        if budget and result["seconds"] > budget:
            findings.append(
                Finding(
                    name,
                    1,
                    "parse-time",
                    f"Airflow took {result['seconds']:.2f} s to load "
                    f"the file; the budget is {budget:g} s (check.parse_budget_seconds)",
                )
            )
    return seconds


# --------------------------------------------------------------------------- bucket


def _bucket(
    url: str,
    team: str | None,
    project: str | None,
    endpoint_url: str | None,
    models: Mapping[str, _Dag | None],
) -> list[Finding]:
    """Read-only: one listing of the URL's base prefix and the other projects' state objects."""
    from dagfactory.publish import STATE_NAME, open_publisher, parse_target

    if not team or not project:
        raise ConfigError(
            "--against needs the team and project: check a build folder, or "
            "pass --team and --project",
            key="against",
        )
    target = parse_target(url, team, project)
    publisher = open_publisher(target, endpoint_url=endpoint_url)
    listing = publisher.list(target.base)
    ours = target.prefix
    owned: frozenset[str] | None = None
    if target.state_key in listing:
        owned = _state_files(publisher.get(target.state_key))
    others: dict[str, list[str]] = {}  # dag_id -> keys under other prefixes
    for key in sorted(listing):
        if key.startswith(ours) or not key.endswith(".py"):
            continue
        others.setdefault(key.rsplit("/", 1)[-1][:-3], []).append(key)
    owners: dict[str, str] = {}  # key -> "team/project" its state says owns it
    for prefix in sorted({k.rsplit("/", 1)[0] + "/" for keys in others.values() for k in keys}):
        state_key = prefix + STATE_NAME
        if state_key in listing:
            for file_name in _state_files(publisher.get(state_key)) or ():
                owners[prefix + file_name] = prefix[len(target.base) :].rstrip("/")
    found = []
    for name, model in sorted(models.items()):
        dag_id = model.keywords.get("dag_id") if model else None
        if dag_id is None or not isinstance(dag_id.value, str):
            continue
        for key in others.get(dag_id.value, ()):
            whose = (
                f"owned by {owners[key]} (its state object)"
                if key in owners
                else "not listed by any state object"
            )
            found.append(
                Finding(
                    name,
                    dag_id.line,
                    "bucket.collision",
                    f"DAG id {dag_id.value!r} already exists at {key}, {whose}",
                )
            )
    for key in sorted(listing):
        if not key.startswith(ours) or key == target.state_key:
            continue
        file_name = key[len(ours) :]
        if owned is None or file_name not in owned:
            state = "no state object yet" if owned is None else "our state object does not list it"
            found.append(
                Finding(
                    key, 1, "bucket.not-owned", f"{key} is in our prefix but not ours ({state})"
                )
            )
    return found


def _state_files(data: bytes | None) -> frozenset[str] | None:
    try:
        doc = json.loads(data or b"")
    except ValueError:
        return None
    files = doc.get("files") if isinstance(doc, dict) else None
    return frozenset(f for f in files if isinstance(f, str)) if isinstance(files, list) else None


# --------------------------------------------------------------------------- entry


def load_policy(path: str | Path, config: Config) -> Config:
    """``config`` with its ``check:`` section replaced by a policy file's keys."""
    import dataclasses

    from dagfactory.config import _read_yaml, load_config

    try:
        data = _read_yaml(Path(path))
    except ConfigError as exc:
        exc.path = str(path)
        raise
    if data is not None and not isinstance(data, dict):
        raise ConfigError("a policy file holds a mapping of check keys", path=str(path))
    try:
        check = load_config(None, {f"check.{k}": v for k, v in (data or {}).items()}).check
    except ConfigError as exc:
        exc.path = str(path)
        raise
    return dataclasses.replace(config, check=check)


def _build_identity(folder: Path) -> tuple[str | None, str | None]:
    from dagfactory.buildfolder import BUILD_MARKER

    try:
        meta = json.loads((folder / BUILD_MARKER).read_bytes())
    except (OSError, ValueError):
        return None, None
    if not isinstance(meta, dict):
        return None, None
    team, project = meta.get("team"), meta.get("project")
    return (team if isinstance(team, str) else None, project if isinstance(project, str) else None)


def check_build(
    folder: str | Path,
    config: Config | None = None,
    *,
    against: str | None = None,
    endpoint_url: str | None = None,
    airflow_python: str | None = None,
    load: bool = True,
    team: str | None = None,
    project: str | None = None,
) -> CheckReport:
    """Check every ``*.py`` file of ``folder``; ConfigError when the input itself is wrong."""
    config = config or Config()
    out = Path(folder)
    if not out.is_dir():
        raise ConfigError("not a folder", path=str(out))
    names = sorted(p.name for p in out.glob("*.py") if p.is_file())
    if not names:
        raise ConfigError("no DAG files (*.py) to check", path=str(out))
    built_team, built_project = _build_identity(out)
    team = team or built_team or config.team
    project = project or built_project or config.project
    findings: list[Finding] = []
    models: dict[str, _Dag | None] = {}
    dag_ids: dict[str, tuple[str, int]] = {}
    for name in names:
        try:
            source = (out / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            findings.append(Finding(name, 1, "unreadable", one_line(str(exc))))
            models[name] = None
            continue
        models[name] = model = _static(name, source, findings, dag_ids)
        if model is not None:
            findings.extend(_policy(name, model, config.check, team))
    airflow_info, not_loaded, seconds = None, None, {}
    if load:
        python, not_loaded = find_airflow_python(airflow_python)
        if python is not None:
            loaded = _load(python, out, names, config.routing.executors)
            airflow_info = {"python": loaded["python"], "version": loaded["version"]}
            seconds = _load_findings(loaded, models, config.check.parse_budget_seconds, findings)
            not_loaded = None
    else:
        not_loaded = "the load check was turned off (--no-load)"
    if against:
        findings.extend(_bucket(against, team, project, endpoint_url, models))
    unique = sorted(set(findings), key=lambda f: (f.path, f.line, f.rule, f.message))
    return CheckReport(
        folder=str(out),
        files=tuple(names),
        findings=tuple(unique),
        airflow=airflow_info,
        not_loaded=not_loaded,
        parse_seconds=seconds,
        against=against,
    )


# --------------------------------------------------------------------------- output


def _shown_path(report: CheckReport, finding: Finding) -> str:
    if finding.rule.startswith("bucket.not-owned"):
        return finding.path  # an object key, not a local file
    return str(Path(report.folder, finding.path))


def format_text(report: CheckReport) -> str:
    lines = [
        f"{_shown_path(report, f)}:{f.line}: {f.rule}: {one_line(f.message)}"
        for f in report.findings
    ]
    if report.airflow:
        slowest = max(report.parse_seconds.items(), key=lambda kv: kv[1], default=None)
        detail = f"; slowest {slowest[0]} {slowest[1]:.3f} s" if slowest else ""
        lines.append(
            f"loaded {len(report.files)} files with Airflow {report.airflow['version']}{detail}"
        )
    else:
        lines.append(f"static checks only: {report.not_loaded}")
    count = len(report.findings)
    verdict = "ok" if report.ok else f"{count} problem{'s' if count != 1 else ''}"
    lines.append(f"{verdict}: {len(report.files)} files checked in {report.folder}")
    return "\n".join(lines)


def _escape_data(text: str) -> str:
    """GitHub's workflow-command escaping of a message (``%``, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """... and of a property value, which also escapes ``:`` and ``,``."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(report: CheckReport) -> str:
    """One ``::error file=...,line=...::message`` workflow command per finding."""
    lines = [
        f"::error file={_escape_property(_shown_path(report, f))},line={f.line},"
        f"title={_escape_property(f.rule)}::{_escape_data(f.message)}"
        for f in report.findings
    ]
    if not report.airflow:
        lines.append(f"::warning::{_escape_data('static checks only: ' + str(report.not_loaded))}")
    return "\n".join(lines)


def checked_build(
    manifest_path: str | Path,
    out_dir: str | Path,
    config: Config,
    *,
    run_results: Sequence[str | Path] = (),
    template_dir: str | None = None,
    **check_options: Any,
) -> tuple[Any, CheckReport]:
    """``dagfactory build --check``: check the files aside first; only a clean set reaches
    ``out_dir`` (and so a push). Returns the build result (``out_dir`` None if refused).

    The files checked are the files written: ``pipeline.write`` swaps this very result in,
    so the check never has to know how a build folder is swapped in.
    """
    import dataclasses

    from dagfactory.pipeline import generate, write

    result = generate(manifest_path, config, run_results=run_results, template_dir=template_dir)
    with tempfile.TemporaryDirectory(prefix="dagfactory-build-check-") as tmp:
        for file in result.files:
            Path(tmp, file.name).write_text(file.text, encoding="utf-8")
        report = check_build(tmp, config, team=result.team, project=result.project, **check_options)
    report = dataclasses.replace(report, folder=str(out_dir))
    if not report.ok:
        return result, report
    return write(result, out_dir), report
