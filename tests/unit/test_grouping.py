"""Grouping nodes into DAGs: strategies, fallbacks, owners and group cycles."""

from __future__ import annotations

import pytest

from dagfactory import load_config
from dagfactory.errors import ConfigError, GroupCycleError
from dagfactory.graph import build_graph
from dagfactory.grouping import group_units, resolve_strategy
from dagfactory.manifest import load_manifest


def _groups(manifest_path, **overrides):
    manifest = load_manifest(manifest_path)
    return group_units(build_graph(manifest), manifest, load_config(None, overrides))


@pytest.fixture(scope="module")
def by_default(shop_manifest):
    return _groups(shop_manifest)


@pytest.mark.parametrize(
    ("unique_id", "group"),
    [
        ("model.shop.fct_orders", "sales"),  # dbt group
        ("model.shop.fct_revenue", "finance"),
        ("model.shop.mkt_channel_spend", "marketing"),
        ("model.shop.stg_orders", "staging"),  # no dbt group: falls back to its folder
        ("seed.shop.raw_orders", "staging"),  # a seed joins its only consumers' group
        ("seed.shop.raw_customers", "seeds"),  # read by two groups: a seeds DAG
        ("snapshot.shop.customers_snapshot", "finance"),  # read only by finance
        (  # a test over two groups runs in the downstream one
            "test.shop.relationships_fct_revenue_order_id__order_id__ref_fct_orders_.1a56c77a77",
            "finance",
        ),
        (
            "test.shop.source_not_null_web_ad_spend_spend_date.9ea10727f2",
            "staging",
        ),  # its YAML's folder
    ],
    ids=lambda v: v.split(".")[-2] if v.count(".") > 1 else v,
)
def test_default_grouping_uses_dbt_groups_then_folders(by_default, unique_id, group):
    assert by_default.strategy == "group"
    assert by_default.group_of[unique_id] == group


@pytest.mark.parametrize(
    ("group_by", "unique_id", "group"),
    [
        ("folder", "model.shop.fct_orders", "marts"),
        ("folder:2", "model.shop.fct_orders", "marts_sales"),
        ("folder:2", "model.shop.stg_orders", "staging"),
        ("meta:team", "model.shop.fct_orders", "sales-analytics"),
        ("meta:team", "model.shop.fin_marketing_roi", "marts"),  # no such meta: folder
        ("tag:night", "model.shop.fct_orders", "ly"),
    ],
    ids=lambda v: str(v),
)
def test_strategies_map_a_node_to_a_group_key(shop_manifest, group_by, unique_id, group):
    manifest = load_manifest(shop_manifest)
    strategy = resolve_strategy(group_by, manifest)
    fallback = resolve_strategy("folder", manifest)
    node = manifest.nodes[unique_id]
    assert (strategy(node) or fallback(node)) == group


@pytest.mark.parametrize(
    ("group_by", "message"),
    [
        (
            "owner",
            r"unknown grouping strategy 'owner'; valid: group, folder, folder:N, tag:<prefix>, meta:<key>",
        ),
        ("folder:x", r"folder depth must be a positive integer"),
        ("meta", r"needs a key: meta:<key>"),
        ("tag", r"needs a prefix: tag:<prefix>"),
    ],
)
def test_bad_strategies_are_config_errors(shop_manifest, group_by, message):
    with pytest.raises(ConfigError, match=message):
        _groups(shop_manifest, group_by=group_by)


def test_owner_comes_from_the_dbt_group_unless_config_says_otherwise(shop_manifest, shop_raw):
    dbt_owner = shop_raw["groups"]["group.shop.sales"]["owner"]["name"]
    assert _groups(shop_manifest).groups["sales"].owner == dbt_owner
    overridden = _groups(shop_manifest, **{"groups": {"sales": {"owner": "revenue-team"}}})
    assert overridden.groups["sales"].owner == "revenue-team"
    assert overridden.groups["staging"].owner == "airflow"  # dag_defaults.owner


def _finance_reads_sales_and_sales_reads_finance(raw):
    # int_customer_orders (sales) moves to finance: finance -> sales via dim_customers.v1,
    # while sales -> finance already holds via fct_orders -> fct_revenue.
    raw["nodes"]["model.shop.int_customer_orders"]["config"]["group"] = "finance"
    raw["nodes"]["model.shop.int_customer_orders"]["group"] = "finance"


def test_a_cycle_of_groups_prints_the_path_and_the_model_edges_that_close_it(edited_manifest):
    path = edited_manifest(_finance_reads_sales_and_sales_reads_finance)
    with pytest.raises(GroupCycleError) as info:
        _groups(path)
    message = str(info.value)
    assert "groups depend on each other in a cycle: finance -> sales -> finance" in message
    assert (
        "finance -> sales: model.shop.int_customer_orders -> model.shop.dim_customers.v" in message
    )
    assert "sales -> finance: model.shop." in message
    assert "group_cycles: merge" in message


def test_merging_a_cycle_makes_one_group_of_it(edited_manifest):
    grouping = _groups(
        edited_manifest(_finance_reads_sales_and_sales_reads_finance), group_cycles="merge"
    )
    # marketing reads sales and finance reads marketing, so all three are on the cycle
    merged = "finance__marketing__sales"
    assert grouping.merged == {merged: ("finance", "marketing", "sales")}
    assert grouping.group_of["model.shop.fct_orders"] == merged
    assert grouping.group_of["model.shop.fct_revenue"] == merged
    assert grouping.group_of["model.shop.stg_orders"] == "staging"  # not on the cycle
    assert not {"finance", "marketing", "sales"} & set(grouping.groups)
