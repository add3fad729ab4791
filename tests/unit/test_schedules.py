"""Schedules: where a DAG's schedule comes from, and how two cron schedules line up.

A group's schedule is named by ``meta.dagfactory.schedule`` on its models and/or by
``groups.<name>.schedule`` in the config; every source that names one must agree, else the
build fails listing them. Without any, ``dag_defaults.schedule`` applies.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import CliRunner

from dagfactory._cron import ScheduleError, check_schedule, execution_delta_seconds
from dagfactory.cli import cli
from dagfactory.config import load_config
from dagfactory.errors import ConfigError, GraphError, ManifestError
from dagfactory.pipeline import generate

HOUR, DAY = 3600, 86400


def _config(**overrides: Any):
    return load_config(None, {"routing.force": "celery", **overrides})


def _schedules(manifest, **overrides: Any) -> dict[str, str | None]:
    result = generate(manifest, _config(**overrides))
    return {dag.group: dag.schedule for dag in result.dags}


def _set_meta_schedule(raw: dict[str, Any], schedules: dict[str, Any]) -> None:
    for unique_id, schedule in schedules.items():
        raw["nodes"][unique_id].setdefault("meta", {}).setdefault("dagfactory", {})
        raw["nodes"][unique_id]["meta"]["dagfactory"]["schedule"] = schedule


# --- where the schedule comes from ----------------------------------------------------------


def test_without_any_setting_every_dag_gets_the_default_schedule(shop_manifest):
    schedules = _schedules(shop_manifest, **{"dag_defaults.schedule": "0 5 * * *"})
    assert set(schedules.values()) == {"0 5 * * *"}


def test_a_group_entry_in_the_config_sets_that_groups_schedule(shop_manifest):
    schedules = _schedules(shop_manifest, **{"groups.sales.schedule": "0 3 * * *"})
    assert schedules["sales"] == "0 3 * * *"
    assert {g: s for g, s in schedules.items() if g != "sales"} == {
        g: "@daily" for g in schedules if g != "sales"
    }


def test_meta_schedule_on_a_model_sets_its_groups_schedule(edited_manifest):
    path = edited_manifest(
        lambda raw: _set_meta_schedule(raw, {"model.shop.fct_revenue": "0 6 * * *"})
    )
    schedules = _schedules(path)
    assert schedules["finance"] == "0 6 * * *"
    assert schedules["sales"] == "@daily"


def test_models_of_one_group_that_agree_give_that_schedule(edited_manifest):
    path = edited_manifest(
        lambda raw: _set_meta_schedule(
            raw,
            {"model.shop.fct_revenue": "@hourly", "model.shop.fin_marketing_roi": "@hourly"},
        )
    )
    assert _schedules(path, **{"groups.finance.schedule": "@hourly"})["finance"] == "@hourly"


def test_models_of_one_group_asking_for_different_schedules_are_an_error_listing_them(
    edited_manifest,
):
    path = edited_manifest(
        lambda raw: _set_meta_schedule(
            raw,
            {
                "model.shop.fct_revenue": "0 6 * * *",
                "model.shop.fin_marketing_roi": "@hourly",
                "model.shop.finance_customer_ltv": "@hourly",
            },
        )
    )
    with pytest.raises(GraphError, match="group 'finance'") as info:
        generate(path, _config())
    message = str(info.value)
    assert "ask for different schedules" in message
    assert "'0 6 * * *': model.shop.fct_revenue" in message
    assert "'@hourly': model.shop.fin_marketing_roi, model.shop.finance_customer_ltv" in message


def test_the_same_cron_spaced_differently_is_one_schedule(edited_manifest):
    path = edited_manifest(
        lambda raw: _set_meta_schedule(raw, {"model.shop.fct_orders": "0  3 * * *"})
    )
    assert _schedules(path, **{"groups.sales.schedule": "0 3 * * * "})["sales"] == "0 3 * * *"


def test_a_config_entry_that_contradicts_a_models_meta_is_an_error_naming_both(edited_manifest):
    path = edited_manifest(
        lambda raw: _set_meta_schedule(raw, {"model.shop.fct_orders": "@hourly"})
    )
    with pytest.raises(GraphError, match="different schedules") as info:
        generate(path, _config(**{"groups.sales.schedule": "0 3 * * *"}))
    assert "'0 3 * * *': config groups.sales.schedule" in str(info.value)
    assert "'@hourly': model.shop.fct_orders" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            {"groups.sales.schedule": "every day"},
            ConfigError,
            r"key 'groups.sales.schedule'.*not a cron schedule",
        ),
        (
            {"dag_defaults.schedule": "@dayly"},
            ConfigError,
            r"key 'dag_defaults.schedule'.*unknown schedule preset '@dayly'",
        ),
        (
            {"groups.salse.schedule": "@daily"},
            ConfigError,
            r"key 'groups.salse'.*no group named 'salse'.*did you mean 'sales'",
        ),
    ],
    ids=["not cron", "unknown preset", "unknown group"],
)
def test_bad_schedule_settings_are_errors_that_name_the_key(
    shop_manifest, overrides, error, message
):
    with pytest.raises(error, match=message):
        generate(shop_manifest, _config(**overrides))


def test_a_meta_schedule_that_is_not_a_string_names_the_model(edited_manifest):
    path = edited_manifest(lambda raw: _set_meta_schedule(raw, {"model.shop.fct_orders": 5}))
    with pytest.raises(ManifestError, match=r"node model\.shop\.fct_orders.*expected a string"):
        generate(path, _config())


def test_summaries_carry_each_dags_schedule(shop_manifest, tmp_path):
    args = ["build", "--manifest", str(shop_manifest), "--runner", "celery"]
    config = tmp_path / "dagfactory.yml"
    config.write_text("dag_defaults:\n  schedule: '0 2 * * *'\ncross_dag: asset_or_time\n")
    args += ["--config", str(config)]
    text = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a")])
    assert text.exit_code == 0, text.output
    assert re.search(r"shop__seeds\s+\d+\s+0\s+0 2 \* \* \*", text.output)
    assert re.search(r"shop__sales\s+\d+\s+\d+\s+assets \(\d+\) or 0 2 \* \* \*", text.output)
    assert "cross_dag: asset_or_time" in text.output

    import json

    summary = json.loads(
        CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "b"), "--format", "json"]).stdout
    )
    dags = {dag["group"]: dag for dag in summary["dags"]}
    assert dags["seeds"]["schedule"] == "0 2 * * *"
    assert dags["seeds"]["trigger"] == "schedule"
    assert dags["sales"]["trigger"] == "asset_or_time"
    assert dags["sales"]["schedule_assets"]
    assert dags["sales"]["sensors"] == []


# --- lining two cron schedules up (cross_dag: sensors) -----------------------------------------


@pytest.mark.parametrize(
    ("upstream", "downstream", "seconds"),
    [
        ("@daily", "@daily", 0),
        ("@daily", "0 0 * * *", 0),
        ("*/15 * * * *", "*/15 * * * *", 0),
        ("0 1 * * *", "0 3 * * *", 2 * HOUR),
        ("0 3 * * *", "0 1 * * *", 22 * HOUR),
        ("15 * * * *", "45 * * * *", 30 * 60),
        ("45 * * * *", "15 * * * *", 30 * 60),
        ("0 0 * * 1", "0 6 * * 3", 2 * DAY + 6 * HOUR),
        ("0 0 * * fri", "0 0 * * mon", 3 * DAY),
        ("@weekly", "0 0 * * 7", 0),
        ("0 0 1 * *", "30 6 2 * *", DAY + 6 * HOUR + 30 * 60),
        ("0 0 1 1 *", "0 0 3 1 *", 2 * DAY),
    ],
    ids=[
        "same preset",
        "preset and its cron",
        "same irregular cron",
        "daily, upstream earlier",
        "daily, upstream later: previous day",
        "hourly",
        "hourly, wraps to previous hour",
        "weekly",
        "weekly by day name, wraps",
        "sunday is 0 and 7",
        "monthly",
        "yearly, same month",
    ],
)
def test_the_sensor_waits_for_the_latest_upstream_run_at_or_before_its_own(
    upstream, downstream, seconds
):
    assert execution_delta_seconds(upstream, downstream) == seconds


@pytest.mark.parametrize(
    ("upstream", "downstream", "message"),
    [
        ("@hourly", "@daily", r"once every hour.*once every day.*same period"),
        ("@daily", "@weekly", r"same period"),
        ("0 0 * * 1-5", "0 1 * * *", r"not once per hour, day, week, month or year"),
        ("0 0 5 * *", "0 0 1 * *", r"runs before upstream.*not a fixed time away"),
        ("0 0 1 1 *", "0 0 1 2 *", r"same period"),
        ("@daily", None, r"downstream DAG has no schedule"),
        (None, "@daily", r"upstream DAG has no schedule"),
        ("@once", "@daily", r"no time of day"),
    ],
    ids=[
        "hourly vs daily",
        "daily vs weekly",
        "weekdays only",
        "monthly, downstream earlier",
        "yearly, other month",
        "downstream manual",
        "upstream manual",
        "upstream once",
    ],
)
def test_schedules_that_cannot_be_lined_up_say_why(upstream, downstream, message):
    with pytest.raises(ScheduleError, match=message):
        execution_delta_seconds(upstream, downstream)


@pytest.mark.parametrize(
    "schedule",
    ["@daily", "@once", "@continuous", "0 3 * * *", "*/5 1-3 * * mon-fri", " 0  3 * * * "],
)
def test_airflow_schedules_are_accepted(schedule):
    assert check_schedule(schedule) == " ".join(schedule.split())


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("daily", "not a cron schedule"),
        ("0 3 * *", "expected five fields"),
        ("0 3 * * * *", "expected five fields"),
        ("@nightly", "unknown schedule preset"),
        ("0 3 * * *; rm -rf /", "not a cron schedule"),
    ],
)
def test_other_schedules_are_rejected(schedule, message):
    with pytest.raises(ScheduleError, match=message):
        check_schedule(schedule)


# --- merged groups (group_cycles: merge) --------------------------------------------------------


def _cyclic(raw: dict[str, Any]) -> None:
    """stg_orders (a) -> int_customer_orders (b) -> dim_customers v1 (a): groups a <-> b."""
    for unique_id, team in [
        ("model.shop.stg_orders", "a"),
        ("model.shop.int_customer_orders", "b"),
        ("model.shop.dim_customers.v1", "a"),
    ]:
        raw["nodes"][unique_id]["meta"]["cycle_team"] = team


MERGE = {"group_by": "meta:cycle_team", "group_cycles": "merge"}


@pytest.mark.parametrize(
    ("groups", "schedule"),
    [
        ({}, "@daily"),
        ({"groups.a.schedule": "0 3 * * *"}, "0 3 * * *"),
        ({"groups.a.schedule": "0 3 * * *", "groups.b.schedule": "0 3 * * *"}, "0 3 * * *"),
        ({"groups.a__b.schedule": "@hourly", "groups.a.schedule": "0 3 * * *"}, "@hourly"),
    ],
    ids=["default", "one part named", "parts agree", "merged name wins over parts"],
)
def test_a_merged_dag_takes_the_schedule_its_parts_name(edited_manifest, groups, schedule):
    schedules = _schedules(edited_manifest(_cyclic), **MERGE, **groups)
    assert schedules["a__b"] == schedule


def test_merged_parts_that_name_different_schedules_are_an_error_listing_both(edited_manifest):
    with pytest.raises(GraphError, match="group 'a__b'") as info:
        generate(
            edited_manifest(_cyclic),
            _config(**MERGE, **{"groups.a.schedule": "@daily", "groups.b.schedule": "@hourly"}),
        )
    assert "'@daily': config groups.a.schedule" in str(info.value)
    assert "'@hourly': config groups.b.schedule" in str(info.value)
