"""Run generated DAGs with Airflow's own ``dag.test()``, one after another, in one process.

Started by :mod:`harness` as a subprocess whose environment already names a temporary
``AIRFLOW_HOME`` (SQLite) and ``AIRFLOW__CORE__DAGS_FOLDER``, so Airflow reads its config
from there and nothing touches a real installation. It does what ``airflow dags test`` does
(``get_bagged_dag`` + ``dag.test()``), once per DAG of the plan, without paying Airflow's
start-up for every DAG. ``dag.test()`` runs each task in-process through Airflow's task
runner and in-process Execution API: no scheduler, no executor, no server, no open port.

    python airflow_runner.py PLAN.json RESULT.json

PLAN: ``{"migrate": bool, "pools": {name: slots}, "logical_date": ISO,
"runs": [{"dag_id": ..., "mark_success_pattern": regex-or-null}]}``. RESULT: per run, the DAG
run's state and every task instance as recorded in the metadata DB, the asset events the run
emitted, and the shape of the parsed DAG (edges, outlets, asset schedule, task settings).
Task instances are read right after each run, because ``dag.test()`` deletes an earlier run
of the same logical date when a DAG is run again.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import traceback
from pathlib import Path
from typing import Any


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _state(value: Any) -> str | None:
    """Airflow states are str enums in some places and plain strings in others."""
    return None if value is None else str(getattr(value, "value", value))


def _seconds(value: dt.timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _airflow_cli(*argv: str) -> None:
    """Run an ``airflow`` CLI command in this process (same code path as the binary)."""
    from airflow.cli import cli_parser

    args = cli_parser.get_parser().parse_args(list(argv))
    args.func(args)


def _dag_shape(dag: Any) -> dict[str, Any]:
    condition = getattr(dag.timetable, "asset_condition", None)
    schedule_assets = sorted(a.uri for a in getattr(condition, "objects", ()) or ())
    tasks = {}
    for task in dag.tasks:
        tasks[task.task_id] = {
            "upstream": sorted(task.upstream_task_ids),
            "outlets": sorted(getattr(o, "uri", str(o)) for o in task.outlets),
            "retries": task.retries,
            "retry_delay": _seconds(task.retry_delay),
            "execution_timeout": _seconds(task.execution_timeout),
            "pool": task.pool,
            "pool_slots": task.pool_slots,
        }
    return {"schedule_assets": schedule_assets, "tasks": tasks}


def _run_one(dag_id: str, logical_date: dt.datetime, pattern: str | None) -> dict[str, Any]:
    from airflow.models.asset import AssetEvent
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.cli import get_bagged_dag
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag = get_bagged_dag(bundle_names=None, dag_id=dag_id)
    error = None
    try:
        dagrun = dag.test(logical_date=logical_date, mark_success_pattern=pattern)
        run_id, state = dagrun.run_id, _state(dagrun.state)
    except Exception:  # reported, not raised: the harness asserts on it
        error = traceback.format_exc()
        run_id, state = None, "error"
    task_instances, events = [], []
    if run_id is not None:
        with create_session() as session:
            for ti in session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
                )
            ):
                task_instances.append(
                    {
                        "task_id": ti.task_id,
                        "state": _state(ti.state),
                        "start_date": _iso(ti.start_date),
                        "end_date": _iso(ti.end_date),
                        "try_number": ti.try_number,
                        "max_tries": ti.max_tries,
                        "pool": ti.pool,
                        "pool_slots": ti.pool_slots,
                    }
                )
            for event in session.scalars(
                select(AssetEvent).where(
                    AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id
                )
            ):
                events.append({"uri": event.asset.uri, "task_id": event.source_task_id})
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "state": state,
        "error": error,
        "task_instances": sorted(task_instances, key=lambda t: t["task_id"]),
        "asset_events": sorted(events, key=lambda e: (e["task_id"], e["uri"])),
        "dag": _dag_shape(dag),
    }


def main(plan_path: str, result_path: str) -> int:
    plan = json.loads(Path(plan_path).read_text(encoding="utf-8"))
    if plan.get("migrate"):
        _airflow_cli("db", "migrate")
    for name, slots in sorted(plan.get("pools", {}).items()):
        _airflow_cli("pools", "set", name, str(slots), "dagfactory e2e")
    runs = []
    for run in plan.get("runs", []):
        logical_date = dt.datetime.fromisoformat(plan["logical_date"])
        runs.append(_run_one(run["dag_id"], logical_date, run.get("mark_success_pattern")))
        # Written after every run, so a crash still leaves what happened so far.
        Path(result_path).write_text(json.dumps({"runs": runs}, indent=2), encoding="utf-8")
    Path(result_path).write_text(json.dumps({"runs": runs}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
