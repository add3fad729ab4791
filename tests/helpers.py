"""Helpers shared by tests: real Airflow parsing and an independent reading of the manifest."""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def load_dagbag(folder: Path):
    """Parse a folder of DAG files with real Airflow (DagBag), as the DAG processor does."""
    pytest.importorskip("airflow")
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def asset_uris(objects: Any) -> set[str]:
    """URIs of the assets in a schedule condition, or in a list of inlets/outlets."""
    found: set[str] = set()
    stack = list(objects if isinstance(objects, (list, tuple)) else [objects])
    while stack:
        item = stack.pop()
        if hasattr(item, "objects"):  # AssetAll / AssetAny
            stack.extend(item.objects)
        elif hasattr(item, "uri"):
            found.add(item.uri)
    return found


def airflow_graph(
    dagbag, node_of: dict[tuple[str, str], str]
) -> tuple[set[str], set[tuple[str, str]]]:
    """The dbt graph as Airflow holds it, in unique_ids (``node_of``: (dag_id, task_id) -> id).

    Edges are task upstreams inside a DAG, plus, across DAGs, a task's inlet asset matched to
    the task that lists it as an outlet. Tasks missing from ``node_of`` (sensors) are skipped.
    """
    producer: dict[str, str] = {}
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            for uri in asset_uris(task.outlets):
                assert uri not in producer, f"two tasks produce {uri}"
                producer[uri] = node_of[(dag.dag_id, task.task_id)]
    tasks, edges = set(), set()
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            uid = node_of.get((dag.dag_id, task.task_id))
            if uid is None:
                continue
            tasks.add(uid)
            edges |= {
                (node_of[(dag.dag_id, up)], uid)
                for up in task.upstream_task_ids
                if (dag.dag_id, up) in node_of
            }
            edges |= {(producer[uri], uid) for uri in asset_uris(task.inlets)}
    return tasks, edges


def expected_graph(raw: dict[str, Any]) -> tuple[set[str], set[tuple[str, str]]]:
    """The task graph dbt implies, computed straight from the raw manifest JSON.

    Written independently of dagfactory.graph on purpose: tasks are enabled models that are
    not ephemeral, seeds and snapshots, plus every test whose parents are not exactly one
    such node; edges look through ephemeral models.
    """
    nodes = {
        uid: n
        for uid, n in [*raw["nodes"].items(), *raw.get("unit_tests", {}).items()]
        if n["resource_type"] in ("model", "seed", "snapshot", "test", "unit_test")
        and n.get("config", {}).get("enabled", True)
    }

    def ephemeral(uid: str) -> bool:
        n = nodes.get(uid)
        return (
            bool(n) and n["resource_type"] == "model" and n["config"]["materialized"] == "ephemeral"
        )

    def runnable(uid: str) -> bool:
        return uid in nodes and "test" not in nodes[uid]["resource_type"] and not ephemeral(uid)

    def parents(uid: str) -> set[str]:
        out: set[str] = set()
        for p in nodes[uid].get("depends_on", {}).get("nodes", []) or []:
            if ephemeral(p):
                out |= parents(p)
            elif runnable(p):
                out.add(p)
        return out

    tasks = {uid for uid in nodes if runnable(uid)}
    for uid, n in nodes.items():
        if "test" in n["resource_type"]:
            deps = set(n.get("depends_on", {}).get("nodes", []) or [])
            if not (len(deps) == 1 and runnable(next(iter(deps)))):
                tasks.add(uid)
    edges = {(p, uid) for uid in tasks for p in parents(uid)}
    return tasks, edges


def serialized_dags(folder: Path) -> dict[str, Any]:
    """Each DAG of a folder as Airflow stores it (``DagSerialization.to_dict``), its paths
    made relative to the folder so two folders of the same files compare equal."""
    pytest.importorskip("airflow")
    import json

    from airflow.serialization.serialized_objects import DagSerialization

    dagbag = load_dagbag(folder)
    assert dagbag.import_errors == {}
    prefix = str(folder.resolve()) + "/"
    return {
        dag_id: json.loads(json.dumps(DagSerialization.to_dict(dag)).replace(prefix, ""))
        for dag_id, dag in dagbag.dags.items()
    }


class _PlainListSchedule(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "_AssetList":
            return node.args[0]
        return node


def plain_list_twin(folder: Path, twin: Path) -> Path:
    """Copy a build folder with every ``_AssetList([...])`` schedule written as the plain
    list ``[...]``: the file shape dagfactory emitted before, and the one Airflow documents."""
    twin.mkdir(parents=True)
    for path in sorted(folder.glob("*.py")):
        tree = _PlainListSchedule().visit(ast.parse(path.read_text(encoding="utf-8")))
        (twin / path.name).write_text(ast.unparse(tree), encoding="utf-8")
    return twin


def bash_commands(files) -> dict[str, str]:
    """task_id -> ``bash_command`` of generated files, evaluated the way Python evaluates the
    file (module constants joined with the task's own part), without importing Airflow."""
    commands = {}
    for file in files:
        tree = ast.parse(file.text)
        namespace: dict[str, Any] = {}
        for node in tree.body:  # the module constants the commands are joined from
            if isinstance(node, ast.Assign):
                exec(compile(ast.Module([node], []), file.name, "exec"), namespace)
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            kwargs = {kw.arg: kw.value for kw in call.keywords}
            if "bash_command" in kwargs:
                source = ast.Expression(kwargs["bash_command"])
                commands[ast.literal_eval(kwargs["task_id"])] = eval(
                    compile(source, file.name, "eval"), namespace
                )
    return commands


def dbt_executable() -> str:
    """The dbt beside this Python (the repo's .venv), else the one on PATH; skip without."""
    import shutil
    import sys

    local = Path(sys.executable).with_name("dbt")
    found = str(local) if local.exists() else shutil.which("dbt")
    if not found:
        pytest.skip("dbt is not installed")
    return found


def load_synth_project():
    """``sample_manifests/synth_project.py`` as a module (it is a script, not a package)."""
    import importlib.util
    import sys

    from tests_paths import SAMPLES

    spec = importlib.util.spec_from_file_location("synth_project", SAMPLES / "synth_project.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("synth_project", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


#: the three models `change_three_models` touches (the preview and diff tests)
MOVED_MODEL = "model.shop.sales_by_country"  # group sales -> marketing
REROUTED_MODEL = "model.shop.mkt_customer_segments"  # celery -> kubernetes (meta)
REMOVED_MODEL = "model.shop.finance_customer_ltv"  # with the two tests whose only parent it is


def change_three_models(raw: dict[str, Any]) -> None:
    """Edit the shop sample's raw manifest: one model moved to another group, one re-routed
    to Kubernetes, one removed, as a dbt pull request might."""
    nodes = raw["nodes"]
    for where in (nodes[MOVED_MODEL], nodes[MOVED_MODEL]["config"]):
        where["group"] = "marketing"
    for where in (nodes[REROUTED_MODEL], nodes[REROUTED_MODEL]["config"]):
        where["meta"] = {**where["meta"], "dagfactory": {"runner": "kubernetes"}}
    gone = {REMOVED_MODEL, *raw["child_map"][REMOVED_MODEL]}
    for uid in gone:
        del nodes[uid]
        raw["parent_map"].pop(uid, None)
        raw["child_map"].pop(uid, None)
    for children in raw["child_map"].values():
        children[:] = [c for c in children if c not in gone]


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """``dagfactory.cli.main(argv)`` in-process, as the console script runs it: the exit code
    and stderr. main() pauses the GC for its own short process; pytest's is given it back."""
    import gc

    from dagfactory.cli import main

    gc_was_enabled = gc.isenabled()
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()
    return code, capsys.readouterr().err


def stop_dbt_servers(wait: float = 10) -> list[int]:
    """SIGTERM every dbt server (``run.py --server``) this test run started, and wait up to
    ``wait`` seconds for them to leave; their pids.

    Their sockets and ``.pid`` files are under ``$XDG_RUNTIME_DIR``, which conftest.py
    points at a folder of the run's own."""
    pids = []
    for pid_file in Path(os.environ["XDG_RUNTIME_DIR"]).glob("dagfactory-dbt-*/*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            pids.append(pid)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(process_alive(pid) for pid in pids):
        time.sleep(0.1)
    return pids


def dbt_server_sockets() -> list[Path]:
    """The sockets of the dbt servers (``run.py --server``) that listen in this test run."""
    return sorted(Path(os.environ["XDG_RUNTIME_DIR"]).glob("dagfactory-dbt-*/*.sock"))


def wait_until(check: Callable[[], object], seconds: float = 120) -> bool:
    """Whether ``check()`` came true within ``seconds`` (polled every 0.2 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
