"""Cross-DAG rules the build checks before any file exists: schedules that cannot be lined up,
names that would clash, and group cycles (error by default, or merged). Airflow parses the
results in tests/integration/airflow/test_cross_dag.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from click.testing import CliRunner

from dagfactory.cli import cli
from dagfactory.config import load_config
from dagfactory.errors import GraphError, GroupCycleError
from dagfactory.pipeline import generate


def _config(**overrides: Any):
    return load_config(None, {"routing.force": "celery", "dbt.executable": "true", **overrides})


def _cyclic(raw: dict[str, Any]) -> None:
    """stg_orders (a) -> int_customer_orders (b) -> dim_customers v1 (a): groups a <-> b."""
    for unique_id, team in [
        ("model.shop.stg_orders", "a"),
        ("model.shop.int_customer_orders", "b"),
        ("model.shop.dim_customers.v1", "a"),
    ]:
        raw["nodes"][unique_id]["meta"]["cycle_team"] = team


def test_asset_or_time_with_a_non_cron_schedule_is_an_error(shop_manifest):
    with pytest.raises(GraphError, match=r"group 'sales'.*asset_or_time needs a cron.*'@once'"):
        generate(
            shop_manifest,
            _config(cross_dag="asset_or_time", **{"groups.sales.schedule": "@once"}),
        )


def test_sensors_between_schedules_of_different_periods_are_a_clear_error(shop_manifest):
    config = _config(
        cross_dag="sensors",
        **{"groups.sales.schedule": "@hourly"},  # the others keep @daily
    )
    with pytest.raises(GraphError) as info:
        generate(shop_manifest, config)
    message = str(info.value)
    assert re.search(r"cannot line up DAG 'shop__(finance|marketing)'", message)
    assert "upstream DAG 'shop__sales'" in message
    assert "once every hour" in message and "once every day" in message
    assert "cross_dag: assets" in message  # what to do instead


def test_a_model_named_like_a_sensor_task_is_an_error_not_a_silent_clash(edited_manifest):
    def rename(raw):
        raw["nodes"]["model.shop.fct_orders"]["name"] = "wait__shop__staging__stg_orders"

    with pytest.raises(GraphError, match=r"sensor task id 'wait__shop__staging__stg_orders'"):
        generate(edited_manifest(rename), _config(cross_dag="sensors"))


def test_groups_in_a_cycle_are_an_error_showing_the_cycle_by_default(edited_manifest):
    with pytest.raises(GroupCycleError, match=r"a -> b -> a|b -> a -> b") as info:
        generate(edited_manifest(_cyclic), _config(group_by="meta:cycle_team"))
    assert "model.shop.int_customer_orders" in str(info.value)
    assert "group_cycles: merge" in str(info.value)


def test_the_summary_says_which_groups_were_merged(edited_manifest, tmp_path):
    manifest = edited_manifest(_cyclic)
    config = tmp_path / "dagfactory.yml"
    config.write_text("group_by: meta:cycle_team\ngroup_cycles: merge\n")
    args = ["build", "--manifest", str(manifest), "--config", str(config), "--runner", "celery"]
    text = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a")])
    assert text.exit_code == 0, text.output
    assert "merged groups a, b into shop__a__b" in text.output
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "b"), "--format", "json"])
    dags = {d["dag_id"]: d for d in json.loads(result.stdout)["dags"]}
    assert dags["shop__a__b"]["merged_groups"] == ["a", "b"]
    assert all(d["merged_groups"] == [] for k, d in dags.items() if k != "shop__a__b")
