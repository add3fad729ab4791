"""Files generated with ``airflow_version: "2"`` load in Apache Airflow 2.10.

Airflow 2 cannot share a virtualenv with the Airflow 3 the other tests use, so the session
builds ``.venv-airflow2`` with ``scripts/airflow2-venv.sh`` (about 30 s the first time, a
no-op after) and parses the generated folders there with ``DagBag`` in a subprocess, which
reports what it parsed as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import expected_graph
from tests_paths import REPO

from dagfactory._airflow_api import SYMBOLS, VERSIONS, localize, locate
from dagfactory._pysrc import Call, literal
from dagfactory.config import load_config
from dagfactory.pipeline import build, generate

VENV = Path(os.environ.get("DAGFACTORY_AIRFLOW2_VENV", REPO / ".venv-airflow2"))

#: runs inside the Airflow 2 virtualenv: parse each folder, print what Airflow holds
PROBE = textwrap.dedent(
    """
    import json, sys
    import airflow
    from airflow.models.dagbag import DagBag

    def uris(objects):
        found, stack = [], list(objects or [])
        while stack:
            item = stack.pop()
            if hasattr(item, "objects"):
                stack.extend(item.objects)
            elif hasattr(item, "uri"):
                found.append(item.uri)
        return sorted(found)

    report = {"version": airflow.__version__, "folders": {}}
    for folder in sys.argv[1:]:
        bag = DagBag(folder, include_examples=False)
        dags = {}
        for dag in bag.dags.values():
            timetable = dag.timetable
            condition = getattr(timetable, "dataset_condition", None)
            inner = getattr(timetable, "timetable", None)
            tasks = {}
            for task in dag.tasks:
                delta = getattr(task, "execution_delta", None)
                tasks[task.task_id] = {
                    "type": type(task).__name__,
                    "module": type(task).__module__,
                    "upstream": sorted(task.upstream_task_ids),
                    "inlets": uris(task.inlets),
                    "outlets": uris(task.outlets),
                    "external_dag_id": getattr(task, "external_dag_id", None),
                    "external_task_id": getattr(task, "external_task_id", None),
                    "execution_delta": delta.total_seconds() if delta is not None else None,
                    "deferrable": getattr(task, "deferrable", None),
                }
            dags[dag.dag_id] = {
                "timetable": type(timetable).__name__,
                "cron": getattr(inner or timetable, "_expression", None),
                "inner_timetable": type(inner).__name__ if inner is not None else None,
                "datasets": uris([condition]) if condition is not None else [],
                "tasks": tasks,
            }
        report["folders"][folder] = {"import_errors": bag.import_errors, "dags": dags}
    print(json.dumps(report))
    """
)

#: (id, config overrides, force celery)
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("assets", {"cross_dag": "assets"}, True),
    ("asset_or_time", {"cross_dag": "asset_or_time", "groups.sales.schedule": "0 4 * * *"}, True),
    (
        "sensors",
        {
            "cross_dag": "sensors",
            "groups.staging.schedule": "0 2 * * *",
            "groups.sales.schedule": "30 4 * * *",
        },
        True,
    ),
    ("kubernetes pods", {"routing.kubernetes.image": "dbt:1.11"}, False),
    (
        "kubernetes executor",
        {"routing.kubernetes.image": "dbt:1.11", "routing.kubernetes.mode": "executor"},
        False,
    ),
]


def _config(overrides: dict[str, Any], celery: bool):
    forced = {"routing.force": "celery"} if celery else {}
    return load_config(None, {"airflow_version": "2", **forced, **overrides})


@pytest.fixture(scope="session")
def airflow2_python() -> Path:
    """The interpreter of a virtualenv with Apache Airflow 2.10, created on first use."""
    script = REPO / "scripts" / "airflow2-venv.sh"
    done = subprocess.run(
        ["bash", str(script), str(VENV)], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        pytest.fail(f"{script.name} failed:\n{done.stdout}\n{done.stderr}")
    return VENV / "bin" / "python"


@pytest.fixture(scope="module")
def parsed(airflow2_python, tmp_path_factory, shop_manifest):
    """Build the shop once per case and parse every folder in one Airflow 2 process."""
    builds, folders = {}, []
    for case, overrides, celery in CASES:
        out = tmp_path_factory.mktemp("airflow2") / "dags"
        builds[case] = build(shop_manifest, out, _config(overrides, celery))
        folders.append(str(out))
    home = tmp_path_factory.mktemp("airflow2-home")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # the kubernetes executor mode names its executor on each task; Airflow checks it
        AIRFLOW__CORE__EXECUTOR="LocalExecutor,KubernetesExecutor",
    )
    done = subprocess.run(
        [str(airflow2_python), "-c", PROBE, *folders],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["version"], {
        case: (builds[case], report["folders"][folder])
        for (case, _, _), folder in zip(CASES, folders)
    }


@pytest.mark.slow
def test_the_venv_holds_airflow_2_10(parsed):
    version, _ = parsed
    assert version.startswith("2.10.")


@pytest.mark.slow
@pytest.mark.parametrize("case", [case for case, _, _ in CASES])
def test_files_for_airflow_2_load_with_no_import_errors(parsed, case):
    _, cases = parsed
    result, bag = cases[case]
    assert bag["import_errors"] == {}
    assert sorted(bag["dags"]) == sorted(dag.dag_id for dag in result.dags)
    for dag in result.dags:
        assert sorted(bag["dags"][dag.dag_id]["tasks"]) == sorted(
            [t.task_id for t in dag.tasks] + [s.task_id for s in dag.sensors]
        )


@pytest.mark.slow
def test_assets_become_datasets_that_schedule_the_dags_reading_them(parsed):
    _, cases = parsed
    result, bag = cases["assets"]
    for spec in result.dags:
        dag = bag["dags"][spec.dag_id]
        reads = sorted({uri for task in dag["tasks"].values() for uri in task["inlets"]})
        if spec.upstream_dags:
            assert dag["timetable"] == "DatasetTriggeredTimetable", spec.dag_id
            assert dag["datasets"] == reads
        else:
            assert dag["timetable"] == "CronDataIntervalTimetable", spec.dag_id
            assert reads == []


@pytest.mark.slow
def test_in_airflow_2_tasks_and_edges_equal_the_manifest_graph(parsed, shop_raw):
    _, cases = parsed
    result, bag = cases["assets"]
    node_of = {(d.dag_id, t.task_id): t.unique_ids[0] for d in result.dags for t in d.tasks}
    producer = {
        uri: node_of[(dag_id, task_id)]
        for dag_id, dag in bag["dags"].items()
        for task_id, task in dag["tasks"].items()
        for uri in task["outlets"]
    }
    tasks, edges = set(), set()
    for dag_id, dag in bag["dags"].items():
        for task_id, task in dag["tasks"].items():
            uid = node_of[(dag_id, task_id)]
            tasks.add(uid)
            edges |= {(node_of[(dag_id, up)], uid) for up in task["upstream"]}
            edges |= {(producer[uri], uid) for uri in task["inlets"]}
    assert (tasks, edges) == expected_graph(shop_raw)


@pytest.mark.slow
def test_asset_or_time_becomes_dataset_or_time_schedule(parsed):
    _, cases = parsed
    _, bag = cases["asset_or_time"]
    sales = bag["dags"]["shop__sales"]
    assert sales["timetable"] == "DatasetOrTimeSchedule"
    assert sales["inner_timetable"] == "CronTriggerTimetable"
    assert sales["cron"] == "0 4 * * *"
    assert sales["datasets"] == sorted(
        {uri for task in sales["tasks"].values() for uri in task["inlets"]}
    )


@pytest.mark.slow
def test_sensors_are_airflow_2_external_task_sensors_with_the_derived_delta(parsed):
    _, cases = parsed
    _, bag = cases["sensors"]
    sales = bag["dags"]["shop__sales"]
    assert sales["timetable"] == "CronDataIntervalTimetable"
    assert sales["cron"] == "30 4 * * *"
    sensors = {tid: t for tid, t in sales["tasks"].items() if t["type"] == "ExternalTaskSensor"}
    assert sensors
    for task_id, sensor in sensors.items():
        assert sensor["module"] == "airflow.sensors.external_task"
        assert sensor["external_dag_id"] == "shop__staging"
        assert task_id == f"wait__shop__staging__{sensor['external_task_id']}"
        assert sensor["execution_delta"] == 2.5 * 3600  # 04:30 waits for 02:00
        assert sensor["deferrable"] is True
    readers = [t for t in sales["tasks"].values() if t["inlets"]]
    assert all(set(t["upstream"]) & set(sensors) for t in readers)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "operator"),
    [("kubernetes pods", "KubernetesPodOperator"), ("kubernetes executor", "BashOperator")],
)
def test_kubernetes_routes_load_in_airflow_2(parsed, case, operator):
    _, cases = parsed
    result, bag = cases[case]
    routed = [
        (d.dag_id, t.task_id)
        for d in result.dags
        for t in d.tasks
        if t.route.runner == "kubernetes"
    ]
    assert routed
    for dag_id, task_id in routed:
        assert bag["dags"][dag_id]["tasks"][task_id]["type"] == operator


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        (
            "2",
            ["from airflow.datasets import Dataset", "from airflow.models.dag import DAG"],
            ["airflow.sdk"],
        ),
        (
            "3",
            ["from airflow.sdk import Asset, DAG"],
            ["airflow.datasets"],
        ),
    ],
)
def test_each_target_imports_only_its_own_airflow_names(shop_manifest, version, present, absent):
    config = load_config(None, {"airflow_version": version, "routing.force": "celery"})
    text = "\n".join(f.text for f in generate(shop_manifest, config).files)
    for line in present:
        assert line in text
    for name in absent:
        assert name not in text


# --- the name table ----------------------------------------------------------------------------


def test_every_airflow_name_has_a_place_in_each_version():
    assert all(set(places) == set(VERSIONS) for places in SYMBOLS.values())


@pytest.mark.parametrize(
    ("value", "version", "source", "imported"),
    [
        (Call("Asset", ("x-dbt://p/m",)), "3", "Asset('x-dbt://p/m')", {"Asset"}),
        (Call("Asset", ("x-dbt://p/m",)), "2", "Dataset('x-dbt://p/m')", {"Asset"}),
        (
            Call("AssetOrTimeSchedule", (), (("timetable", None), ("assets", []))),
            "2",
            "DatasetOrTimeSchedule(timetable=None, datasets=[])",
            {"AssetOrTimeSchedule"},
        ),
        (
            {"pod_override": [Call("k8s.V1Pod")]},
            "2",
            "{'pod_override': [k8s.V1Pod()]}",
            set(),
        ),
        (
            Call("datetime.timedelta", (), (("seconds", 1),)),
            "2",
            "datetime.timedelta(seconds=1)",
            set(),
        ),
    ],
    ids=["asset in 3", "dataset in 2", "renamed keyword", "nested, not in table", "stdlib"],
)
def test_localize_renames_table_names_and_keywords_for_the_target(value, version, source, imported):
    used: set[str] = set()
    assert literal(localize(value, version, used)) == source
    assert used == imported


def test_locate_keeps_a_name_outside_the_table_where_the_renderer_put_it():
    assert locate("Secret", "2", default_module="airflow.providers.cncf.kubernetes.secret") == (
        "airflow.providers.cncf.kubernetes.secret",
        "Secret",
    )
    with pytest.raises(KeyError, match="not in the Airflow name table"):
        locate("Secret", "2")
