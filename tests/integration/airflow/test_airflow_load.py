"""Generated files load in real Airflow 3 and hold exactly the dbt graph.

The expected graph is computed from the raw manifest by ``helpers.expected_graph``, written
independently of dagfactory; the actual graph is read back from what Airflow parsed: task
dependencies inside each DAG, and cross-DAG edges as a task's inlet assets matched to the
task in another DAG that lists the same asset as an outlet.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import airflow_graph, asset_uris, expected_graph, load_dagbag

from dagfactory.cli import cli

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def shop_build(tmp_path_factory, shop_manifest):
    out = tmp_path_factory.mktemp("shop") / "dags"
    result = CliRunner().invoke(
        cli,
        [
            "build",
            "--manifest",
            str(shop_manifest),
            "--out",
            str(out),
            "--format",
            "json",
            "--runner",
            "celery",
        ],
    )
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


@pytest.fixture(scope="module")
def shop_dagbag(shop_build):
    out, _ = shop_build
    return load_dagbag(out)


def test_every_generated_file_loads_without_import_errors(shop_build, shop_dagbag):
    out, summary = shop_build
    assert shop_dagbag.import_errors == {}
    assert sorted(shop_dagbag.dags) == sorted(d["dag_id"] for d in summary["dags"])
    assert sorted(p.name for p in out.glob("*.py")) == sorted(d["file"] for d in summary["dags"])


def _actual_graph(dagbag, summary) -> tuple[set[str], set[tuple[str, str]]]:
    node_of = {
        (dag["dag_id"], task["task_id"]): task["unique_ids"][0]
        for dag in summary["dags"]
        for task in dag["tasks"]
    }
    return airflow_graph(dagbag, node_of)


def test_tasks_and_edges_equal_the_manifest_graph(shop_build, shop_dagbag, shop_raw):
    _, summary = shop_build
    expected_tasks, expected_edges = expected_graph(shop_raw)
    actual_tasks, actual_edges = _actual_graph(shop_dagbag, summary)
    assert actual_tasks == expected_tasks
    assert actual_edges == expected_edges


def test_a_dag_is_scheduled_on_exactly_the_assets_its_tasks_read(shop_dagbag):
    for dag in shop_dagbag.dags.values():
        inlets = set().union(*(asset_uris(t.inlets) for t in dag.tasks))
        condition = getattr(dag.timetable, "asset_condition", None)
        scheduled = asset_uris(condition) if condition is not None else set()
        assert scheduled == inlets, dag.dag_id


def test_every_node_runs_in_exactly_one_task(shop_build, shop_raw):
    _, summary = shop_build
    ran = [uid for dag in summary["dags"] for task in dag["tasks"] for uid in task["unique_ids"]]
    runnable = {
        uid
        for uid, n in [*shop_raw["nodes"].items(), *shop_raw["unit_tests"].items()]
        if n["resource_type"] in ("seed", "snapshot", "test", "unit_test")
        or (n["resource_type"] == "model" and n["config"]["materialized"] != "ephemeral")
    }
    assert any(uid.startswith("unit_test.") for uid in ran)
    assert len(ran) == len(set(ran))
    assert set(ran) == runnable


def test_each_task_runs_dbt_on_its_own_selector(shop_build, shop_dagbag):
    _, summary = shop_build
    for dag in summary["dags"]:
        for task in dag["tasks"]:
            operator = shop_dagbag.dags[dag["dag_id"]].get_task(task["task_id"])
            command = getattr(operator, "bash_command", None) or " ".join(operator.arguments)
            verb = "build" if "test" not in task["resource_type"] else "test"
            assert f" {verb} --select {task['selector']} " in f" {command} "
            assert "--indirect-selection cautious" in command


def test_a_truncated_file_registers_no_dag(shop_build, tmp_path):
    out, summary = shop_build
    source = (out / summary["dags"][0]["file"]).read_text()
    lines = source.splitlines(keepends=True)
    (tmp_path / "truncated.py").write_text("".join(lines[:-1]))  # the call on the last line
    (tmp_path / "empty.py").write_text("")
    dagbag = load_dagbag(tmp_path)
    assert dagbag.dags == {}
    assert dagbag.import_errors == {}
