"""A running Airflow 3 starts downstream DAGs from the assets of the upstream ones.

The test starts a real Airflow (``airflow api-server`` for the task execution API,
``airflow scheduler`` with the LocalExecutor and ``airflow dag-processor``) on SQLite in a
temporary ``AIRFLOW_HOME``, every socket on 127.0.0.1 and a free port, over the sample
project's generated DAGs. Tasks run ``true`` instead of dbt (dbt is not the point here), and
root DAGs have no schedule, so the only way a downstream DAG can run is through the assets
its upstream tasks produce. It triggers the root DAG once and waits, with a deadline, until
every DAG downstream of it has run to success with run type ``asset_triggered``.

A second test does the same for ``cross_dag: sensors`` (with a triggerer for the deferrable
sensors): a run is let through only when the upstream run its ``execution_delta`` points at
has succeeded. The processes are stopped by process group at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagfactory.config import load_config
from dagfactory.pipeline import build

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

DEADLINE_SECONDS = 240
AIRFLOW = Path(sys.executable).with_name("airflow")
ROOT = "shop__seeds"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _airflow_env(home: Path, dags: Path, api_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="8",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(api_port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(16),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
    )
    return env


class _Airflow:
    """The Airflow processes of one test; each in its own session, so a group kill ends all."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}

    def cli(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [str(AIRFLOW), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, name: str, *args: str) -> None:
        log = (self.home / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [str(AIRFLOW), *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.home,
            start_new_session=True,
        )
        log.close()

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(f"airflow {name} exited with {process.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.home / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        end = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # children that outlived their leader (task runners) are in the same groups
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def query(self, sql: str, *params: object) -> list[tuple]:
        uri = f"file:{self.home / 'airflow.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
            return db.execute(sql, params).fetchall()


def _wait(what: str, condition, airflow: _Airflow, deadline: float, every: float = 1.0):
    while True:
        airflow.check_alive()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n}\n{airflow.tail(n)}" for n in airflow.processes)
            pytest.fail(f"timed out waiting for {what}\n{logs}")
        time.sleep(every)


def _build_shop(folder: Path, manifest: Path, config_text: str):
    config_file = folder / "dagfactory.yml"
    config_file.write_text(config_text)
    config = load_config(config_file, {"routing.force": "celery"})
    return build(manifest, folder / "dags", config)


@contextlib.contextmanager
def _running_airflow(folder: Path, dags: Path, *, triggerer: bool = False) -> Iterator[_Airflow]:
    home = folder / "airflow-home"
    home.mkdir()
    api_port = _free_port()
    running = _Airflow(home, _airflow_env(home, dags, api_port))
    started = time.monotonic()
    running.cli("db", "migrate", timeout=300)
    print(f"db migrate: {time.monotonic() - started:.1f} s")
    try:
        running.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(api_port))
        running.start("scheduler", "scheduler", "--skip-serve-logs")
        running.start("dag-processor", "dag-processor")
        if triggerer:  # deferrable sensors wait in the triggerer
            running.start("triggerer", "triggerer", "--skip-serve-logs")
        yield running
    finally:
        running.stop()


def _wait_until_parsed(airflow: _Airflow, dag_ids: set[str], deadline: float) -> None:
    def parsed() -> bool:
        try:
            rows = airflow.query("SELECT dag_id FROM serialized_dag")
        except sqlite3.OperationalError:
            return False
        return {dag_id for (dag_id,) in rows} >= dag_ids

    _wait("the DAG processor to serialize every DAG", parsed, airflow, deadline)
    airflow.cli("dags", "unpause", "--treat-dag-id-as-regex", "--yes", "^shop__")
    assert airflow.query("SELECT dag_id FROM dag WHERE is_paused") == []


@pytest.fixture
def shop_dags(tmp_path, shop_manifest) -> tuple[Path, object]:
    result = _build_shop(
        tmp_path,
        shop_manifest,
        "dbt:\n"
        "  executable: 'true'\n"  # every task succeeds at once
        "dag_defaults:\n"
        "  schedule: null\n",  # roots run only when triggered
    )
    return tmp_path / "dags", result


@pytest.fixture
def airflow(tmp_path, shop_dags) -> Iterator[_Airflow]:
    dags, _ = shop_dags
    with _running_airflow(tmp_path, dags) as running:
        yield running


def _downstream_of(result, root: str) -> set[str]:
    readers: dict[str, set[str]] = {}
    for dag in result.dags:
        for upstream in dag.upstream_dags:
            readers.setdefault(upstream, set()).add(dag.dag_id)
    found, todo = set(), [root]
    while todo:
        for reader in readers.get(todo.pop(), ()):
            if reader not in found:
                found.add(reader)
                todo.append(reader)
    return found


def test_triggering_the_root_dag_runs_every_downstream_dag_through_assets(airflow, shop_dags):
    _, result = shop_dags
    deadline = time.monotonic() + DEADLINE_SECONDS
    expected = {dag.dag_id for dag in result.dags}
    downstream = _downstream_of(result, ROOT)
    assert {"shop__staging", "shop__sales", "shop__marketing", "shop__finance"} <= downstream

    started = time.monotonic()
    _wait_until_parsed(airflow, expected, deadline)
    print(f"serialized and unpaused after {time.monotonic() - started:.1f} s")
    airflow.cli("dags", "trigger", ROOT)

    def runs() -> dict[str, set[tuple[str, str]]]:
        found: dict[str, set[tuple[str, str]]] = {}
        for dag_id, run_type, state in airflow.query("SELECT dag_id, run_type, state FROM dag_run"):
            found.setdefault(dag_id, set()).add((run_type, state))
        return found

    def all_downstream_succeeded():
        found = runs()
        done = {
            dag_id
            for dag_id in downstream
            if ("asset_triggered", "success") in found.get(dag_id, ())
        }
        return found if done == downstream else None

    found = _wait(
        "every downstream DAG to run from assets", all_downstream_succeeded, airflow, deadline, 2
    )
    print(f"all downstream DAGs succeeded after {time.monotonic() - started:.1f} s")
    assert found[ROOT] == {("manual", "success")}
    for dag_id in downstream:
        # started by assets only: nobody triggered them and they have no time schedule
        assert {run_type for run_type, _ in found[dag_id]} == {"asset_triggered"}, dag_id
    not_downstream = expected - downstream - {ROOT}
    assert all(dag_id not in found for dag_id in not_downstream)
    failed = airflow.query("SELECT dag_id, task_id FROM task_instance WHERE state != 'success'")
    assert failed == []


SENSOR_CONFIG = """\
cross_dag: sensors
dbt:
  executable: 'true'
dag_defaults:
  max_active_runs: null  # runs of different days side by side
task_defaults:
  # A deferred sensor whose trigger fires within a second or two can be resumed before the
  # scheduler has seen its first process exit; Airflow then fails it ("state changed
  # externally"). A retry, as in production, runs the check again.
  retries: 2
  retry_delay_seconds: 1
groups:
  seeds: {schedule: '0 1 * * *'}
  staging: {schedule: '0 2 * * *'}
  sales: {schedule: '30 4 * * *'}
"""


def test_sensors_let_a_run_through_once_the_upstream_run_its_delta_points_at_succeeded(
    tmp_path, shop_manifest
):
    """sales (04:30) waits for staging (02:00) of the same day, staging for seeds (01:00).

    The runs are triggered by hand with logical dates, upstream first; a sales run for a day
    whose staging never ran must still be waiting when the others are done. (The scheduler
    also starts today's runs of these DAGs on its own; they do not matter here.)
    """
    result = _build_shop(tmp_path, shop_manifest, SENSOR_CONFIG)
    day, other_day = "2026-01-05", "2026-01-06"
    runs = [
        ("shop__seeds", f"{day}T01:00:00+00:00"),
        ("shop__staging", f"{day}T02:00:00+00:00"),
        ("shop__sales", f"{day}T04:30:00+00:00"),
    ]
    with _running_airflow(tmp_path, tmp_path / "dags", triggerer=True) as airflow:
        deadline = time.monotonic() + DEADLINE_SECONDS
        _wait_until_parsed(airflow, {dag.dag_id for dag in result.dags}, deadline)
        airflow.cli(
            "dags", "trigger", "shop__sales", "--logical-date", f"{other_day}T04:30:00+00:00"
        )
        for dag_id, logical_date in runs:
            airflow.cli("dags", "trigger", dag_id, "--logical-date", logical_date)

        def states() -> dict[tuple[str, str], str]:
            rows = airflow.query("SELECT dag_id, logical_date, state FROM dag_run")
            return {(dag_id, date[:10]): state for dag_id, date, state in rows}

        def done():
            found = states()
            failed = [d for d, _ in runs if found.get((d, day)) == "failed"]
            if failed:
                pytest.fail(f"runs failed: {failed}: {_task_states(airflow, failed[0], day)}")
            return found if all(found.get((d, day)) == "success" for d, _ in runs) else None

        _wait("the three runs of one day to succeed", done, airflow, deadline, 2)
        sensors = {
            s.task_id for dag in result.dags if dag.dag_id == "shop__sales" for s in dag.sensors
        }
        assert sensors
        assert {
            t: st for t, st in _task_states(airflow, "shop__sales", day).items() if t in sensors
        } == {t: "success" for t in sensors}

        def still_waiting():
            found = _task_states(airflow, "shop__sales", other_day)
            return {t: st for t, st in found.items() if t in sensors} == {
                t: "deferred" for t in sensors
            }

        _wait("the other day's sensors to wait in the triggerer", still_waiting, airflow, deadline)
        assert states()[("shop__sales", other_day)] == "running"


def _task_states(airflow: _Airflow, dag_id: str, day: str) -> dict[str, str]:
    rows = airflow.query(
        "SELECT ti.task_id, ti.state FROM task_instance ti JOIN dag_run dr "
        "ON ti.dag_id = dr.dag_id AND ti.run_id = dr.run_id "
        "WHERE dr.dag_id = ? AND substr(dr.logical_date, 1, 10) = ?",
        dag_id,
        day,
    )
    return dict(rows)
