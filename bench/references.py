"""The two references the generated DAG files are measured against.

* :func:`write_handwritten`: what a careful person would write by hand for the same build: one
  file per generated DAG with the same DAG ids, task ids, dbt commands, in-DAG edges (one
  ``set_upstream([...])`` per task, the cheapest form for Airflow to parse, as the generated
  files use)
  and cross-DAG edges (an ``Asset`` outlet on the producing task, ``schedule=[Asset(...)]`` on
  the consuming DAG), and nothing else: no docs, no default_args, no inlets, no retries. It is
  written from the ``dagfactory build --format json`` summary, never from dagfactory's code, so
  it is the floor Airflow sets for these tasks and edges.
* :func:`write_schedule_none_twin`: each generated file with its DAG's ``schedule=`` set to
  ``None`` and nothing else changed: the same tasks, edges, docs and operators with no asset
  schedule to hash, so file / twin is exactly what the schedule costs Airflow's parse (Airflow
  3.3 hashes the DAG, schedule included, on every dependency call). Made with ``ast`` from
  whatever shape the generator emits, so it follows the generator as it changes.
* :func:`write_cosmos`: one astronomer-cosmos ``DbtDag`` over the same manifest, at the best
  parse settings cosmos has (``LoadMode.DBT_MANIFEST``; ``TestBehavior.BUILD``, one ``dbt
  build`` task per node like dagfactory; its orjson parser on and telemetry off are set in the
  environment by ``bench/run.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

_HEADER = """\
import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Asset

"""


def _dbt_command(task: dict[str, Any], project_dir: str) -> str:
    command = "test" if task["resource_type"] == "test" else "build"
    return (
        f"dbt {command} --select {task['selector']} --project-dir {project_dir} "
        f"--profiles-dir {project_dir} --indirect-selection cautious"
    )


def _handwritten_file(dag: dict[str, Any], project_dir: str) -> str:
    if dag.get("trigger", "assets") in ("assets", "asset_or_time") and dag["schedule_assets"]:
        schedule = "[" + ", ".join(f"Asset({uri!r})" for uri in dag["schedule_assets"]) + "]"
    else:
        schedule = repr(dag["schedule"])
    lines = [
        _HEADER,
        "with DAG(",
        f"    dag_id={dag['dag_id']!r},",
        f"    schedule={schedule},",
        "    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),",
        "    catchup=False,",
        "):",
    ]
    var = {task["task_id"]: f"t{i}" for i, task in enumerate(dag["tasks"])}
    for task in dag["tasks"]:
        outlets = ""
        if task["outlets"]:
            outlets = ", outlets=[" + ", ".join(f"Asset({u!r})" for u in task["outlets"]) + "]"
        lines.append(
            f"    {var[task['task_id']]} = BashOperator(task_id={task['task_id']!r}, "
            f"bash_command={_dbt_command(task, project_dir)!r}{outlets})"
        )
    for task in dag["tasks"]:
        if task["upstream"]:
            parents = ", ".join(var[up] for up in task["upstream"])
            lines.append(f"    {var[task['task_id']]}.set_upstream([{parents}])")
    return "\n".join(lines) + "\n"


def write_handwritten(summary: dict[str, Any], out: Path, project_dir: str) -> dict[str, int]:
    """Write the hand-written-style reference for a build summary; return its counts."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.py"):
        old.unlink()
    tasks = edges = 0
    for dag in summary["dags"]:
        (out / dag["file"]).write_text(_handwritten_file(dag, project_dir), encoding="utf-8")
        tasks += len(dag["tasks"])
        edges += sum(len(t["upstream"]) for t in dag["tasks"])
    return {"files": len(summary["dags"]), "tasks": tasks, "in_dag_edges": edges}


def _is_dag_call(node: ast.Call) -> bool:
    """``DAG(...)`` or ``<module>.DAG(...)``: the constructor, however it was imported."""
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "DAG") or (
        isinstance(func, ast.Attribute) and func.attr == "DAG"
    )


class _ScheduleNone(ast.NodeTransformer):
    """Sets ``schedule=None`` on every ``DAG(...)`` call (adds it where absent)."""

    def __init__(self) -> None:
        self.dag_calls = 0

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if _is_dag_call(node):
            self.dag_calls += 1
            for keyword in node.keywords:
                if keyword.arg == "schedule":
                    keyword.value = ast.Constant(None)
                    break
            else:
                node.keywords.append(ast.keyword(arg="schedule", value=ast.Constant(None)))
        return node


def schedule_none_source(source: str) -> str:
    """``source`` with its DAG's ``schedule=`` replaced by ``None``; ValueError if no DAG call."""
    transformer = _ScheduleNone()
    tree = transformer.visit(ast.parse(source))
    if not transformer.dag_calls:
        raise ValueError("no DAG(...) call found")
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def write_schedule_none_twin(src: Path, out: Path) -> dict[str, int]:
    """Write the ``schedule=None`` twin of every ``*.py`` in ``src`` to ``out`` (same names)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.py"):
        old.unlink()
    files = 0
    for path in sorted(src.glob("*.py")):
        twin = schedule_none_source(path.read_text(encoding="utf-8"))
        (out / path.name).write_text(twin, encoding="utf-8")
        files += 1
    return {"files": files}


_COSMOS = """\
# An Airflow DAG (DagBag's safe mode skips files that never say "airflow" and "dag").
import datetime
import os

from cosmos import DbtDag, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode, TestBehavior

HERE = os.path.dirname(os.path.abspath(__file__))

dag = DbtDag(
    dag_id={dag_id!r},
    schedule="@daily",
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    project_config=ProjectConfig(manifest_path={manifest!r}, project_name={project!r}),
    profile_config=ProfileConfig(
        profile_name={project!r},
        target_name="dev",
        profiles_yml_filepath=os.path.join(HERE, "cosmos_profiles", "profiles.yml"),
    ),
    execution_config=ExecutionConfig(dbt_executable_path={dbt!r}, dbt_project_path={project_dir!r}),
    render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.BUILD),
    operator_args={{"install_deps": False}},
)
"""

_PROFILES = """\
{project}:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: /tmp/dagfactory-bench-cosmos.duckdb
"""


def write_cosmos(out: Path, manifest: Path, project: str, dbt: str) -> str:
    """Write one cosmos DAG file over ``manifest``; return its DAG id."""
    out.mkdir(parents=True, exist_ok=True)
    profiles = out / "cosmos_profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "profiles.yml").write_text(_PROFILES.format(project=project), encoding="utf-8")
    dag_id = f"cosmos_{project}"
    text = _COSMOS.format(
        dag_id=dag_id,
        manifest=str(manifest.resolve()),
        project=project,
        dbt=dbt,
        project_dir=str(manifest.resolve().parent),
    )
    (out / "cosmos_dag.py").write_text(text, encoding="utf-8")
    return dag_id
