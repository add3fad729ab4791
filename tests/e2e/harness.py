"""End-to-end harness: generated DAGs run by real Airflow end where ``dbt build`` ends.

Given a dbt project and its ``manifest.json``, :func:`run_e2e`:

1. copies the project to a work folder (dbt writes next to ``profiles.yml``; the checkout
   stays clean and parallel sessions cannot collide);
2. runs a plain ``dbt build`` into ``reference.duckdb`` (the expected end state);
3. runs ``dagfactory build --runner celery --format json`` with a config whose ``dbt.env``
   points the dbt process at ``airflow.duckdb`` and gives every task instance its own
   ``DBT_TARGET_PATH`` (an Airflow template, so each task try leaves its own
   ``run_results.json``);
4. runs every generated DAG with Airflow's own ``dag.test()`` (what ``airflow dags test``
   calls), in the topological order of the summary's ``upstream_dags``, in one subprocess
   with a temporary ``AIRFLOW_HOME`` and SQLite (see ``airflow_runner.py``);
5. optionally reruns some DAGs for the same logical date (idempotency), and runs a failure
   case (a dbt var makes one model's test fail) against a copy of the database;
6. returns an :class:`E2EReport` with the task instances Airflow recorded, each task's dbt
   results, and the content of both DuckDB files, for the tests to assert on.

No server is started and no port is opened: ``dag.test()`` runs tasks in-process.

Run it by hand (prints a short report, keeps the work folder)::

    .venv/bin/python tests/e2e/harness.py sample_manifests/shop --work /tmp/shop-e2e
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import graphlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RUNNER = Path(__file__).with_name("airflow_runner.py")
LOGICAL_DATE = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
#: the pool every generated task is put in (created in the temporary Airflow before the runs)
POOL = "dbt_e2e"
#: resource types a ``dbt build`` executes (exposures and analyses are not executed)
EXECUTED = ("model", "seed", "snapshot", "test", "unit_test")
TEST_TYPES = ("test", "unit_test")
#: Airflow template for each task try's own dbt target folder, below the runs folder
TASK_DIR_TEMPLATE = "{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}/{{ ti.try_number }}"
#: dbt runs of a task: a generous bound so a hung dbt fails the harness instead of CI
AIRFLOW_TIMEOUT_SECONDS = 1800
DBT_TIMEOUT_SECONDS = 600


class HarnessError(RuntimeError):
    """A step of the harness itself failed (not a behaviour under test)."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TaskRun:
    """One task instance as Airflow recorded it, with the dbt results of each try."""

    dag_id: str
    task_id: str
    state: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    try_number: int
    max_tries: int
    pool: str
    pool_slots: int
    #: try number -> {unique_id: dbt status} from that try's run_results.json
    tries: Mapping[int, Mapping[str, str]]
    #: try number -> the ``--vars`` dbt received (run_results.json ``args.vars``)
    vars: Mapping[int, Mapping[str, Any]]
    #: try number -> what dbt's log says it parsed: "none" (it ran on its slice), "partial"
    #: (it read the shared parse state) or "full"
    parsed: Mapping[int, str] = field(default_factory=dict)

    @property
    def results(self) -> Mapping[str, str]:
        """The dbt results of the last try."""
        return self.tries[max(self.tries)] if self.tries else {}


@dataclass(frozen=True)
class DagRunReport:
    dag_id: str
    run_id: str | None
    state: str
    error: str | None
    tasks: Mapping[str, TaskRun]
    #: (task_id, asset uri) for every asset event this run emitted
    asset_events: tuple[tuple[str, str], ...]
    #: the parsed DAG: {"schedule_assets": [...], "tasks": {task_id: {upstream, outlets, ...}}}
    shape: Mapping[str, Any]


@dataclass(frozen=True)
class DbState:
    """Every relation of a DuckDB file: ``schema.name`` -> rows (sorted) and column names."""

    rows: Mapping[str, tuple[tuple[Any, ...], ...]]
    columns: Mapping[str, tuple[str, ...]]

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in sorted(self.rows.items())}

    def without(self, prefix: str = "dbt_") -> dict[str, list[tuple[Any, ...]]]:
        """Rows without dbt's bookkeeping columns (``dbt_valid_from`` etc. are clock times)."""
        out = {}
        for name, rows in self.rows.items():
            keep = [i for i, c in enumerate(self.columns[name]) if not c.startswith(prefix)]
            out[name] = sorted((tuple(row[i] for i in keep) for row in rows), key=_row_key)
        return out


@dataclass(frozen=True)
class Edge:
    """``child`` reads ``parent`` (after looking through ephemeral models)."""

    parent: str
    child: str
    via_ephemeral: bool


@dataclass(frozen=True)
class FailureCase:
    """A run where ``model``'s own test fails because of ``vars``.

    The model gets ``meta.dagfactory.retries`` (and a zero retry delay) in a copy of the
    manifest, so the run also shows per-model task settings reaching Airflow.
    ``group_by`` lets the failing model share a DAG with a model that reads it.
    ``timeout_model`` (in the same DAG) gets ``meta.dagfactory.execution_timeout_seconds``
    far below what starting dbt takes, so Airflow must stop its task.
    """

    model: str
    vars: Mapping[str, Any]
    group_by: str | None = None
    retries: int = 1
    timeout_model: str | None = None
    timeout_seconds: float = 0.5


@dataclass(frozen=True)
class FailureReport:
    case: FailureCase
    summary: Mapping[str, Any]
    run: DagRunReport
    failing_task: str
    #: tasks of that DAG downstream of the failing task
    downstream: tuple[str, ...]
    #: tasks of that DAG marked success without running (not on the failing path)
    marked_success: tuple[str, ...]
    #: the task of ``case.timeout_model``, if any
    timeout_task: str | None
    #: what the Airflow runner printed (task logs included)
    log: str


@dataclass
class E2EReport:
    work: Path
    logical_date: dt.datetime
    summary: Mapping[str, Any]
    order: list[str]
    reference_results: Mapping[str, str]
    reference_db: DbState
    runs: list[DagRunReport]
    db: DbState
    edges: list[Edge]
    rerun_dags: list[str] = field(default_factory=list)
    reruns: list[DagRunReport] = field(default_factory=list)
    db_after_rerun: DbState | None = None
    failure: FailureReport | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def task(self, unique_id: str) -> TaskRun:
        """The task that executed ``unique_id`` in the main pass (by dbt's own results)."""
        found = [t for r in self.runs for t in r.tasks.values() if unique_id in t.results]
        if len(found) != 1:
            raise KeyError(f"{unique_id} was executed by {len(found)} tasks")
        return found[0]


# --------------------------------------------------------------------------- helpers


def _row_key(row: Iterable[Any]) -> tuple[tuple[bool, str], ...]:
    return tuple((value is None, str(value)) for value in row)


def _venv_bin(name: str) -> str:
    """An executable next to this Python (the project's virtualenv), else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise HarnessError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without Airflow or dbt settings that could leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DBT_", "_AIRFLOW"))}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["DBT_VERSION_CHECK"] = "false"
    env.update(extra or {})
    return env


def _run(argv: Sequence[str], *, env: Mapping[str, str], log: Path, timeout: float) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.run(
            list(argv), env=dict(env), stdout=out, stderr=subprocess.STDOUT, timeout=timeout
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise HarnessError(f"{' '.join(argv[:3])} ... exited {proc.returncode}:\n{tail}")


def copy_project(src: Path, dst: Path) -> Path:
    """Copy a dbt project without its build output (target/, logs/, DuckDB files)."""
    shutil.copytree(
        src,
        dst,
        ignore=shutil.ignore_patterns("target", "logs", ".user.yml", "*.duckdb", "*.duckdb.wal"),
    )
    return dst


def read_run_results(path: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """``{unique_id: status}`` of executed nodes and the ``--vars`` of one run_results.json."""
    data = json.loads(path.read_text(encoding="utf-8"))
    results = {
        r["unique_id"]: r["status"]
        for r in data["results"]
        if r["unique_id"].split(".", 1)[0] in EXECUTED
    }
    return results, dict(data.get("args", {}).get("vars") or {})


def dbt_build_reference(project: Path, work: Path, duckdb: Path) -> subprocess.Popen:
    """Start a plain ``dbt build`` of the whole project into ``duckdb``."""
    target = work / "reference"
    log = work / "logs" / "reference.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [_venv_bin("dbt"), "build", "--project-dir", str(project), "--profiles-dir"]
    argv += [str(project), "--target-path", str(target), "--log-path", str(target)]
    return subprocess.Popen(
        argv,
        env=_clean_env({"DBT_DUCKDB_PATH": str(duckdb)}),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def warm_partial_parse(project: Path, target: Path, duckdb: Path, vars: Mapping[str, Any]) -> Path:
    """``dbt parse`` once, so every task can start from its ``partial_parse.msgpack``.

    dbt reuses a saved parse only when the vars, the profile and the project path are the
    ones it was saved with, so this runs with exactly what the tasks will pass (absolute
    ``--project-dir``, the same DuckDB path, the vars as rendered for the logical date).
    Saves a full parse (seconds) in every task; dbt reads, never writes, this file when
    it is named by ``DBT_PARTIAL_PARSE_FILE_PATH``.
    """
    argv = [_venv_bin("dbt"), "parse", "--project-dir", str(project), "--profiles-dir"]
    argv += [str(project), "--target-path", str(target), "--log-path", str(target)]
    if vars:
        argv += ["--vars", json.dumps(dict(vars), sort_keys=True)]
    _run(
        argv,
        env=_clean_env({"DBT_DUCKDB_PATH": str(duckdb)}),
        log=target / "parse.log",
        timeout=DBT_TIMEOUT_SECONDS,
    )
    return target / "partial_parse.msgpack"


def write_slices(manifest: Path, project: Path, duckdb: Path, vars: Mapping[str, Any]) -> Path:
    """``dagfactory dbt-slices`` after the parse, as the worker image build would run it (in
    the parse's environment: the profile reads ``DBT_DUCKDB_PATH``), where the generated
    commands look for it (``<project>/target/dagfactory_slices``)."""
    out = project / "target" / "dagfactory_slices"
    argv = [sys.executable, "-m", "dagfactory", "dbt-slices", str(manifest), "--out", str(out)]
    argv += ["--project-dir", str(project), "--python", sys.executable]
    argv += ["--vars", json.dumps(dict(vars), sort_keys=True)]
    env = _clean_env({"DBT_DUCKDB_PATH": str(duckdb)})
    _run(argv, env=env, log=manifest.parent / "slices.log", timeout=300)
    return out


def write_config(
    path: Path,
    *,
    project: Path,
    duckdb: Path,
    runs_dir: Path,
    vars: Mapping[str, Any],
    partial_parse: Path | None = None,
    task_defaults: Mapping[str, Any] | None = None,
) -> Path:
    """The dagfactory.yml of a harness run: real dbt, own DuckDB file, a target per try."""
    env = {
        "DBT_DUCKDB_PATH": str(duckdb),
        "DBT_TARGET_PATH": f"{runs_dir}/{TASK_DIR_TEMPLATE}",
        "DBT_LOG_PATH": f"{runs_dir}/{TASK_DIR_TEMPLATE}",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    config = {
        "dbt": {
            "project_dir": str(project),
            "profiles_dir": str(project),
            "executable": _venv_bin("dbt"),
            "vars": dict(vars),
            "env": env,
            # The generated command line as shipped (fast test edges, the shared parse
            # state), except that each try keeps its run_results.json where the harness
            # reads it: in the DBT_TARGET_PATH above, not in a temporary folder.
            "write_json": True,
            "target_base": "",
            "parse_state": str(partial_parse) if partial_parse is not None else "",
        },
        "task_defaults": dict(task_defaults or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
    return path


def dagfactory_build(
    manifest: Path, out: Path, config: Path, *, group_by: str | None = None
) -> dict[str, Any]:
    """``dagfactory build --runner celery --format json`` through the real CLI."""
    argv = [sys.executable, "-m", "dagfactory", "build", "--manifest", str(manifest)]
    argv += ["--out", str(out), "--config", str(config), "--runner", "celery", "--format", "json"]
    if group_by:
        argv += ["--group-by", group_by]
    proc = subprocess.run(argv, capture_output=True, text=True, env=_clean_env(), timeout=300)
    if proc.returncode != 0:
        raise HarnessError(f"dagfactory build failed ({proc.returncode}): {proc.stderr}")
    return json.loads(proc.stdout)


def dag_order(summary: Mapping[str, Any]) -> list[str]:
    """DAG ids so that every DAG comes after the DAGs it waits for (ties by name)."""
    sorter = graphlib.TopologicalSorter(
        {dag["dag_id"]: dag["upstream_dags"] for dag in summary["dags"]}
    )
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order += ready
        sorter.done(*ready)
    return order


def dependency_edges(manifest_path: Path) -> list[Edge]:
    """Every "reads from" edge between executed nodes, read from manifest.json directly.

    Independent of dagfactory's own graph code on purpose: ephemeral models are looked
    through here too, sources are inputs.
    """
    raw = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    nodes: dict[str, Mapping[str, Any]] = {**raw["nodes"], **raw.get("unit_tests", {})}

    def is_ephemeral(uid: str) -> bool:
        node = nodes.get(uid) or {}
        return (node.get("config") or {}).get("materialized") == "ephemeral"

    edges = set()
    for uid, node in nodes.items():
        if uid.split(".", 1)[0] not in EXECUTED or is_ephemeral(uid):
            continue
        stack = [(p, False) for p in (node.get("depends_on") or {}).get("nodes", [])]
        seen: set[str] = set()
        while stack:
            parent, via = stack.pop()
            if parent in seen or parent not in nodes:
                continue  # sources, disabled nodes
            seen.add(parent)
            if is_ephemeral(parent):
                deps = (nodes[parent].get("depends_on") or {}).get("nodes", [])
                stack += [(p, True) for p in deps]
            elif parent.split(".", 1)[0] in EXECUTED:
                edges.add(Edge(parent, uid, via))
    return sorted(edges, key=lambda e: (e.parent, e.child))


def duckdb_state(path: Path) -> DbState:
    """Read every table and view of a DuckDB file (read-only)."""
    import duckdb

    rows: dict[str, tuple[tuple[Any, ...], ...]] = {}
    columns: dict[str, tuple[str, ...]] = {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        relations = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() "
            "and table_schema not in ('information_schema', 'pg_catalog') "
            "order by 1, 2"
        ).fetchall()
        for schema, name in relations:
            cursor = con.execute(f'select * from "{schema}"."{name}"')
            key = f"{schema}.{name}"
            columns[key] = tuple(d[0] for d in cursor.description)
            rows[key] = tuple(sorted(cursor.fetchall(), key=_row_key))
    finally:
        con.close()
    return DbState(rows, columns)


# --------------------------------------------------------------------------- Airflow


class AirflowHome:
    """A temporary ``AIRFLOW_HOME`` with SQLite; migrated once, then copied per scenario."""

    def __init__(self, path: Path, dags_folder: Path) -> None:
        self.path = path
        self.dags_folder = dags_folder
        path.mkdir(parents=True, exist_ok=True)

    @property
    def db(self) -> Path:
        return self.path / "airflow.db"

    def env(self) -> dict[str, str]:
        return _clean_env(
            {
                "AIRFLOW_HOME": str(self.path),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db}",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.path / "logs"),
            }
        )

    def keep_pristine(self) -> None:
        """Keep a copy of the freshly migrated DB (no process has it open now) for clones."""
        for suffix in ("", "-wal"):
            if Path(f"{self.db}{suffix}").exists():
                shutil.copy2(f"{self.db}{suffix}", self.path / f"pristine.db{suffix}")

    def clone(self, path: Path, dags_folder: Path) -> AirflowHome:
        """A new home whose metadata DB starts as the migrated, still empty one."""
        home = AirflowHome(path, dags_folder)
        for suffix in ("", "-wal"):
            if (self.path / f"pristine.db{suffix}").exists():
                shutil.copy2(self.path / f"pristine.db{suffix}", f"{home.db}{suffix}")
        return home

    def start(self, plan: Mapping[str, Any], name: str) -> _AirflowJob:
        plan_path = self.path / f"{name}.plan.json"
        plan_path.write_text(json.dumps(plan, indent=2, default=str), encoding="utf-8")
        result = self.path / f"{name}.result.json"
        log = self.path / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, str(RUNNER), str(plan_path), str(result)],
            env=self.env(),
            cwd=self.path,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        return _AirflowJob(proc, result, log)


@dataclass
class _AirflowJob:
    proc: subprocess.Popen
    result: Path
    log: Path

    def wait(self) -> list[dict[str, Any]]:
        try:
            code = self.proc.wait(timeout=AIRFLOW_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise HarnessError(f"Airflow runner timed out; see {self.log}") from None
        if code != 0 or not self.result.exists():
            tail = self.log.read_text(errors="replace")[-4000:]
            raise HarnessError(f"Airflow runner exited {code}; see {self.log}:\n{tail}")
        return json.loads(self.result.read_text(encoding="utf-8"))["runs"]


def _parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _parsed(log: Path) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    if "Starting full parse" in text or "Unable to do partial parsing" in text:
        return "full"
    return "partial" if "Partial parsing enabled" in text else "none"


def _collect(raw_runs: list[dict[str, Any]], runs_dir: Path) -> list[DagRunReport]:
    """Airflow's task instances joined with the run_results.json each try left behind."""
    reports = []
    for raw in raw_runs:
        tasks = {}
        for ti in raw["task_instances"]:
            tries: dict[int, Mapping[str, str]] = {}
            vars_: dict[int, Mapping[str, Any]] = {}
            task_dir = runs_dir / raw["dag_id"] / str(raw["run_id"]) / ti["task_id"]
            parsed: dict[int, str] = {}
            for results_file in sorted(task_dir.glob("*/run_results.json")):
                number = int(results_file.parent.name)
                tries[number], vars_[number] = read_run_results(results_file)
                parsed[number] = _parsed(results_file.parent / "dbt.log")
            tasks[ti["task_id"]] = TaskRun(
                dag_id=raw["dag_id"],
                task_id=ti["task_id"],
                state=ti["state"],
                start=_parse_time(ti["start_date"]),
                end=_parse_time(ti["end_date"]),
                try_number=ti["try_number"],
                max_tries=ti["max_tries"],
                pool=ti["pool"],
                pool_slots=ti["pool_slots"],
                tries=tries,
                vars=vars_,
                parsed=parsed,
            )
        reports.append(
            DagRunReport(
                dag_id=raw["dag_id"],
                run_id=raw["run_id"],
                state=raw["state"],
                error=raw["error"],
                tasks=tasks,
                asset_events=tuple((e["task_id"], e["uri"]) for e in raw["asset_events"]),
                shape=raw["dag"],
            )
        )
    return reports


def _descendants(dag: Mapping[str, Any], task_id: str) -> set[str]:
    children: dict[str, set[str]] = {}
    for task in dag["tasks"]:
        for up in task["upstream"]:
            children.setdefault(up, set()).add(task["task_id"])
    found: set[str] = set()
    stack = [task_id]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _patched_manifest(src: Path, dst: Path, settings: Mapping[str, Mapping[str, Any]]) -> Path:
    """A copy of the manifest with ``meta.dagfactory`` settings on some nodes (as dbt writes
    them: on the node and in its config)."""
    raw = json.loads(src.read_text(encoding="utf-8"))
    for unique_id, own in settings.items():
        node = raw["nodes"][unique_id]
        config = node.setdefault("config", {})
        for meta in (node.setdefault("meta", {}), config.setdefault("meta", {})):
            meta["dagfactory"] = {**(meta.get("dagfactory") or {}), **own}
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(raw), encoding="utf-8")
    return dst


def _render_vars(vars: Mapping[str, Any], logical_date: dt.datetime) -> dict[str, Any]:
    """The vars as a task renders them (only ``{{ ds }}`` is supported here)."""
    ds = logical_date.date().isoformat()
    return {
        k: re.sub(r"\{\{\s*ds\s*\}\}", ds, v) if isinstance(v, str) else copy.deepcopy(v)
        for k, v in vars.items()
    }


# --------------------------------------------------------------------------- entry point


def default_rerun_dags(summary: Mapping[str, Any], manifest: Path) -> list[str]:
    """DAGs holding state that a non-idempotent rerun would change: snapshots, incrementals."""
    raw = json.loads(manifest.read_text(encoding="utf-8"))
    stateful = {
        uid
        for uid, node in raw["nodes"].items()
        if node["resource_type"] == "snapshot"
        or (node.get("config") or {}).get("materialized") == "incremental"
    }
    return sorted(
        dag["dag_id"]
        for dag in summary["dags"]
        if any(set(t["unique_ids"]) & stateful for t in dag["tasks"])
    )


def run_e2e(
    project_dir: str | Path,
    work: str | Path,
    *,
    manifest: str | Path | None = None,
    vars: Mapping[str, Any] | None = None,
    task_defaults: Mapping[str, Any] | None = None,
    logical_date: dt.datetime = LOGICAL_DATE,
    rerun_dags: Sequence[str] | None = None,
    failure: FailureCase | None = None,
) -> E2EReport:
    """Run the whole comparison; see the module docstring. ``work`` must be empty or new."""
    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started - sum(timings.values()), 1)

    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    source = Path(project_dir).resolve()
    manifest_path = Path(manifest).resolve() if manifest else source / "manifest.json"
    project = copy_project(source, work / "project")
    vars = dict(vars or {})
    task_defaults = {"pool": POOL, **dict(task_defaults or {})}

    # Reference dbt build, partial-parse warm-up and Airflow's DB migration run side by side.
    airflow_db = work / "airflow.duckdb"
    reference_db = work / "reference.duckdb"
    reference = dbt_build_reference(project, work, reference_db)
    home = AirflowHome(work / "airflow-home", work / "dags")
    migrate = home.start({"migrate": True, "pools": {POOL: 8}, "runs": []}, "migrate")
    partial_parse = warm_partial_parse(
        project, work / "parse", airflow_db, _render_vars(vars, logical_date)
    )
    write_slices(
        work / "parse" / "manifest.json", project, airflow_db, _render_vars(vars, logical_date)
    )
    if reference.wait(timeout=DBT_TIMEOUT_SECONDS) != 0:
        raise HarnessError(f"dbt build of the reference failed; see {work / 'logs'}")
    migrate.wait()
    home.keep_pristine()
    lap("reference_build+migrate+parse")

    runs_dir = work / "runs"
    config = write_config(
        work / "dagfactory.yml",
        project=project,
        duckdb=airflow_db,
        runs_dir=runs_dir,
        vars=vars,
        partial_parse=partial_parse,
        task_defaults=task_defaults,
    )
    summary = dagfactory_build(manifest_path, home.dags_folder, config)
    order = dag_order(summary)
    plan = {"logical_date": logical_date.isoformat(), "runs": [{"dag_id": d} for d in order]}
    runs = _collect(home.start(plan, "main").wait(), runs_dir)
    lap("airflow_main")

    reference_results, _ = read_run_results(work / "reference" / "run_results.json")
    report = E2EReport(
        work=work,
        logical_date=logical_date,
        summary=summary,
        order=order,
        reference_results=reference_results,
        reference_db=duckdb_state(reference_db),
        runs=runs,
        db=duckdb_state(airflow_db),
        edges=dependency_edges(manifest_path),
        timings=timings,
    )

    # The rerun (same home, same DB file) and the failure case (copies) run side by side.
    jobs = []
    if rerun_dags is None:
        rerun_dags = default_rerun_dags(summary, manifest_path)
    if rerun_dags:
        report.rerun_dags = list(rerun_dags)
        plan = {
            "logical_date": logical_date.isoformat(),
            "runs": [{"dag_id": d} for d in rerun_dags],
        }
        jobs.append(("rerun", home.start(plan, "rerun")))
    if failure is not None:
        jobs.append(
            ("failure", _start_failure(failure, report, home, manifest_path, vars, task_defaults))
        )
    for name, job in jobs:
        if name == "rerun":
            report.reruns = _collect(job.wait(), runs_dir)
            report.db_after_rerun = duckdb_state(airflow_db)
        else:
            report.failure = job.finish()
    if jobs:
        lap("rerun+failure")
    return report


@dataclass
class _FailureJob:
    case: FailureCase
    summary: Mapping[str, Any]
    job: _AirflowJob
    runs_dir: Path
    failing_task: str
    downstream: tuple[str, ...]
    marked_success: tuple[str, ...]
    timeout_task: str | None

    def finish(self) -> FailureReport:
        (run,) = _collect(self.job.wait(), self.runs_dir)
        return FailureReport(
            case=self.case,
            summary=self.summary,
            run=run,
            failing_task=self.failing_task,
            downstream=self.downstream,
            marked_success=self.marked_success,
            timeout_task=self.timeout_task,
            log=self.job.log.read_text(encoding="utf-8", errors="replace"),
        )


def _task_of(summary: Mapping[str, Any], unique_id: str) -> tuple[Mapping[str, Any], str]:
    """The DAG and the task id of the generated task that runs ``unique_id``."""
    found = [
        (dag, task["task_id"])
        for dag in summary["dags"]
        for task in dag["tasks"]
        if unique_id in task["unique_ids"]
    ]
    if len(found) != 1:
        raise HarnessError(f"{len(found)} generated tasks run {unique_id}, expected 1")
    return found[0]


def _start_failure(
    case: FailureCase,
    report: E2EReport,
    main_home: AirflowHome,
    manifest: Path,
    vars: Mapping[str, Any],
    task_defaults: Mapping[str, Any],
) -> _FailureJob:
    """Build with the failing vars and run the failing model's DAG on a copy of the DB.

    Tasks of that DAG that are neither the failing task nor downstream of it are marked
    success (``dag.test(mark_success_pattern=...)``, as ``airflow dags test
    --mark-success-pattern``): their tables already exist in the copied database, and
    running them again would only cost time.
    """
    work = report.work / "failure"
    duckdb = work / "failure.duckdb"
    work.mkdir(parents=True)
    shutil.copy2(report.work / "airflow.duckdb", duckdb)
    settings = {case.model: {"retries": case.retries, "retry_delay_seconds": 0}}
    if case.timeout_model:
        settings[case.timeout_model] = {"execution_timeout_seconds": case.timeout_seconds}
    patched = _patched_manifest(manifest, work / "manifest.json", settings)
    runs_dir = work / "runs"
    config = write_config(
        work / "dagfactory.yml",
        project=report.work / "project",
        duckdb=duckdb,
        runs_dir=runs_dir,
        vars={**vars, **case.vars},
        task_defaults=task_defaults,
    )
    home = main_home.clone(work / "airflow-home", work / "dags")
    summary = dagfactory_build(patched, home.dags_folder, config, group_by=case.group_by)
    dag, failing = _task_of(summary, case.model)
    downstream = _descendants(dag, failing)
    running = {failing, *downstream}
    timeout_task = None
    if case.timeout_model:
        timeout_dag, timeout_task = _task_of(summary, case.timeout_model)
        if timeout_dag["dag_id"] != dag["dag_id"]:
            raise HarnessError(f"{case.timeout_model} is not in {dag['dag_id']}")
        running |= {timeout_task, *_descendants(dag, timeout_task)}
    others = sorted({t["task_id"] for t in dag["tasks"]} - running)
    pattern = "|".join(re.escape(t) for t in others) or None
    plan = {
        "logical_date": report.logical_date.isoformat(),
        "runs": [{"dag_id": dag["dag_id"], "mark_success_pattern": pattern}],
    }
    return _FailureJob(
        case,
        summary,
        home.start(plan, "failure"),
        runs_dir,
        failing,
        tuple(sorted(downstream)),
        tuple(others),
        timeout_task,
    )


def _cli_value(text: str) -> Any:
    """``3`` -> 3, ``true`` -> True; an Airflow template (``{{ ds }}``) stays text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", help="dbt project folder (with manifest.json or --manifest)")
    parser.add_argument("--manifest", help="manifest.json (default: PROJECT/manifest.json)")
    parser.add_argument("--work", required=True, help="empty or new folder for everything")
    parser.add_argument(
        "--var", action="append", default=[], help="dbt var KEY=VALUE (YAML or a template)"
    )
    args = parser.parse_args(argv)
    vars = {k: _cli_value(v) for k, _, v in (item.partition("=") for item in args.var)}
    report = run_e2e(args.project, args.work, manifest=args.manifest, vars=vars, rerun_dags=[])
    tests = {
        uid
        for r in report.runs
        for t in r.tasks.values()
        for uid, s in t.results.items()
        if uid.split(".", 1)[0] in TEST_TYPES and s == "pass"
    }
    ref_tests = {
        uid
        for uid, s in report.reference_results.items()
        if uid.split(".", 1)[0] in TEST_TYPES and s == "pass"
    }
    print(f"DAG order: {' -> '.join(report.order)}")
    for run in report.runs:
        states = sorted({t.state or "none" for t in run.tasks.values()})
        print(f"  {run.dag_id}: {run.state} ({len(run.tasks)} tasks: {', '.join(states)})")
    same_counts = report.db.counts() == report.reference_db.counts()
    print(
        f"relations: {len(report.db.rows)} (reference {len(report.reference_db.rows)}), "
        f"row counts equal: {same_counts}"
    )
    print(f"tests passed: {len(tests)} (reference {len(ref_tests)})")
    print(f"timings (s): {report.timings}")
    ok = same_counts and tests == ref_tests and all(r.state == "success" for r in report.runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
