"""Cross-DAG policies and group cycles, as real Airflow 3 parses them (DagBag).

- ``cross_dag: assets`` (default): a DAG with upstream groups runs on the assets it reads.
- ``cross_dag: asset_or_time``: on those assets, or at the group's cron at the latest.
- ``cross_dag: sensors``: on the group's own cron, with one deferrable ExternalTaskSensor per
  upstream task, placed before the tasks that read it, its ``execution_delta`` derived from
  the two crons; schedules that cannot be lined up are a build error.
- ``group_cycles: merge``: groups that depend on each other in a circle become one DAG.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from helpers import airflow_graph, asset_uris, expected_graph, load_dagbag
from tests_paths import CORPUS

from dagfactory.config import load_config
from dagfactory.errors import GroupCycleError
from dagfactory.pipeline import build, generate

pytestmark = pytest.mark.airflow


def _config(**overrides: Any):
    return load_config(None, {"routing.force": "celery", "dbt.executable": "true", **overrides})


def _build(manifest: Path, out: Path, **overrides: Any):
    result = build(manifest, out, _config(**overrides))
    dagbag = load_dagbag(out)
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dags) == sorted(d.dag_id for d in result.dags)
    return result, dagbag


def _reads(dag) -> set[str]:
    return set().union(*(asset_uris(task.inlets) for task in dag.tasks))


# --- assets and asset_or_time ------------------------------------------------------------------


@pytest.fixture(scope="module")
def asset_or_time(tmp_path_factory, shop_manifest):
    out = tmp_path_factory.mktemp("asset_or_time") / "dags"
    return _build(
        shop_manifest,
        out,
        cross_dag="asset_or_time",
        **{"groups.sales.schedule": "0 4 * * *"},
    )


def test_asset_or_time_runs_on_the_assets_read_or_at_the_groups_cron(asset_or_time):
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    _, dagbag = asset_or_time
    sales = dagbag.dags["shop__sales"]
    assert isinstance(sales.timetable, AssetOrTimeSchedule)
    assert isinstance(sales.timetable.timetable, CronTriggerTimetable)
    assert sales.timetable.timetable.expression == "0 4 * * *"
    assert asset_uris(sales.timetable.asset_condition) == _reads(sales)
    assert _reads(sales)


def test_asset_or_time_leaves_dags_without_upstream_on_their_cron(asset_or_time):
    from airflow.sdk import CronTriggerTimetable

    result, dagbag = asset_or_time
    roots = [dag.dag_id for dag in result.dags if not dag.upstream_dags]
    assert roots
    for dag_id in roots:
        assert type(dagbag.dags[dag_id].timetable) is CronTriggerTimetable, dag_id


def test_assets_is_the_default_and_drops_the_cron_of_dags_with_upstream(tmp_path, shop_manifest):
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable

    result, dagbag = _build(
        shop_manifest, tmp_path / "dags", **{"groups.sales.schedule": "@hourly"}
    )
    sales = dagbag.dags["shop__sales"]
    assert isinstance(sales.timetable, AssetTriggeredTimetable)
    assert asset_uris(sales.timetable.asset_condition) == _reads(sales)
    summary = {d.dag_id: d.to_dict() for d in result.dags}["shop__sales"]
    assert summary["cross_dag"] == "assets"
    assert summary["trigger"] == "assets"
    assert set(summary["schedule_assets"]) == _reads(sales)


# --- sensors ----------------------------------------------------------------------------------

SENSOR_SCHEDULES = {
    "groups.seeds.schedule": "0 1 * * *",
    "groups.staging.schedule": "0 2 * * *",
    "groups.sales.schedule": "30 4 * * *",
    "groups.marketing.schedule": "0 1 * * *",
    "groups.finance.schedule": "0 6 * * *",
}


@pytest.fixture(scope="module")
def sensors(tmp_path_factory, shop_manifest):
    out = tmp_path_factory.mktemp("sensors") / "dags"
    return _build(shop_manifest, out, cross_dag="sensors", **SENSOR_SCHEDULES)


def _producers(dagbag) -> dict[str, tuple[str, str]]:
    """asset URI -> (dag_id, task_id) of the task that lists it as an outlet."""
    return {
        uri: (dag.dag_id, task.task_id)
        for dag in dagbag.dags.values()
        for task in dag.tasks
        for uri in asset_uris(task.outlets)
    }


def _cron_time(schedule: str) -> dt.timedelta:
    minute, hour = schedule.split()[:2]
    return dt.timedelta(hours=int(hour), minutes=int(minute))


@pytest.mark.parametrize(
    ("dag_id", "upstream_dag_id", "delta"),
    [
        ("shop__staging", "shop__seeds", dt.timedelta(hours=1)),
        ("shop__sales", "shop__staging", dt.timedelta(hours=2, minutes=30)),
        ("shop__marketing", "shop__sales", dt.timedelta(hours=20, minutes=30)),
        ("shop__marketing", "shop__staging", dt.timedelta(hours=23)),
        ("shop__finance", "shop__marketing", dt.timedelta(hours=5)),
    ],
    ids=[
        "staging 02:00 waits for seeds 01:00",
        "sales 04:30 waits for staging 02:00",
        "marketing 01:00 waits for yesterday's sales 04:30",
        "marketing 01:00 waits for yesterday's staging 02:00",
        "finance 06:00 waits for marketing 01:00",
    ],
)
def test_each_sensor_waits_for_the_upstream_task_with_the_delta_of_the_two_crons(
    sensors, dag_id, upstream_dag_id, delta
):
    from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

    _, dagbag = sensors
    dag = dagbag.dags[dag_id]
    waits = [
        t
        for t in dag.tasks
        if isinstance(t, ExternalTaskSensor) and t.external_dag_id == upstream_dag_id
    ]
    assert waits
    for sensor in waits:
        assert sensor.execution_delta == delta
        assert sensor.deferrable is True
        upstream = dagbag.dags[upstream_dag_id]
        assert sensor.external_task_id in upstream.task_ids
        # the same distance, from the crons Airflow parsed
        own = _cron_time(dag.timetable.expression)
        theirs = _cron_time(upstream.timetable.expression)
        assert (own - theirs) % dt.timedelta(days=1) == delta


def test_every_task_that_reads_another_dag_waits_for_its_producer_first(sensors):
    from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

    _, dagbag = sensors
    producers = _producers(dagbag)
    checked = 0
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            for uri in asset_uris(task.inlets):
                producer = producers[uri]
                waits = [
                    dag.get_task(up)
                    for up in task.upstream_task_ids
                    if isinstance(dag.get_task(up), ExternalTaskSensor)
                ]
                assert producer in {(s.external_dag_id, s.external_task_id) for s in waits}, (
                    dag.dag_id,
                    task.task_id,
                    uri,
                )
                checked += 1
    assert checked > 5


def test_with_sensors_every_dag_keeps_its_own_cron_schedule(sensors):
    from airflow.sdk import CronTriggerTimetable

    _, dagbag = sensors
    for key, schedule in SENSOR_SCHEDULES.items():
        dag = dagbag.dags[f"shop__{key.split('.')[1]}"]
        assert type(dag.timetable) is CronTriggerTimetable
        assert dag.timetable.expression == schedule


def test_sensor_task_ids_name_the_dag_and_task_they_wait_for(sensors):
    from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

    _, dagbag = sensors
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if isinstance(task, ExternalTaskSensor):
                assert task.task_id == f"wait__{task.external_dag_id}__{task.external_task_id}"


def test_the_summary_lists_each_dags_sensors(sensors):
    result, dagbag = sensors
    for spec in result.dags:
        listed = {(s["external_dag_id"], s["external_task_id"]) for s in spec.to_dict()["sensors"]}
        parsed = {
            (t.external_dag_id, t.external_task_id)
            for t in dagbag.dags[spec.dag_id].tasks
            if t.task_type == "ExternalTaskSensor"
        }
        assert listed == parsed
        assert spec.to_dict()["schedule_assets"] == []


# --- group cycles -----------------------------------------------------------------------------


def _cyclic(raw: dict[str, Any]) -> None:
    """stg_orders (a) -> int_customer_orders (b) -> dim_customers v1 (a): groups a <-> b."""
    for unique_id, team in [
        ("model.shop.stg_orders", "a"),
        ("model.shop.int_customer_orders", "b"),
        ("model.shop.dim_customers.v1", "a"),
    ]:
        raw["nodes"][unique_id]["meta"]["cycle_team"] = team


def _actual_graph(dagbag, result) -> tuple[set[str], set[tuple[str, str]]]:
    """The dbt graph as Airflow holds it: task upstreams plus inlet -> producing task."""
    node_of = {
        (dag.dag_id, task.task_id): task.unique_ids[0] for dag in result.dags for task in dag.tasks
    }
    return airflow_graph(dagbag, node_of)


def test_merge_runs_the_groups_of_a_cycle_as_one_dag_that_keeps_every_edge(
    edited_manifest, shop_raw, tmp_path
):
    manifest = edited_manifest(_cyclic)
    result, dagbag = _build(
        manifest, tmp_path / "dags", group_by="meta:cycle_team", group_cycles="merge"
    )
    merged = dagbag.dags["shop__a__b"]
    assert {"stg_orders", "int_customer_orders", "dim_customers_v1"} <= set(merged.task_ids)
    assert not {"shop__a", "shop__b"} & set(dagbag.dags)
    assert "int_customer_orders" in merged.get_task("dim_customers_v1").upstream_task_ids
    assert "stg_orders" in merged.get_task("int_customer_orders").upstream_task_ids
    assert _actual_graph(dagbag, result) == expected_graph(shop_raw)


ETHEREUM = CORPUS / "FlipsideCrypto__ethereum-models" / "manifest.json"


@pytest.mark.slow
@pytest.mark.skipif(not ETHEREUM.is_file(), reason="shared corpus not present")
def test_merge_on_a_real_project_whose_folders_form_a_cycle(tmp_path):
    import orjson

    with pytest.raises(GroupCycleError, match="silver"):
        generate(ETHEREUM, _config())
    result, dagbag = _build(ETHEREUM, tmp_path / "dags", group_cycles="merge")
    merged = [dag for dag in result.dags if dag.merged_groups]
    assert merged and {"gold", "silver"} <= set(merged[0].merged_groups)
    assert _actual_graph(dagbag, result) == expected_graph(orjson.loads(ETHEREUM.read_bytes()))
