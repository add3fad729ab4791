"""Naming: dbt groups and nodes become Airflow DAG ids and task ids, collisions are errors."""

from __future__ import annotations

import pytest

from dagfactory import GraphError, generate, load_config
from dagfactory.specs import asset_uri, sanitize_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fct_orders", "fct_orders"),
        ("dashed-model", "dashed_model"),
        ("spaced model", "spaced_model"),
        ('O\'Brien "x"', "O_Brien_x"),
        ("__init__", "init"),
        ("ünïcode", "n_code"),
        ("!!!", "_"),
    ],
)
def test_ids_keep_letters_digits_and_underscores(text, expected):
    assert sanitize_id(text) == expected


def test_asset_uris_do_not_depend_on_a_provider_and_quote_odd_characters():
    uri = asset_uri("core", "shop", "model.shop.fct_orders")
    assert uri == "x-dbt://core/shop/model.shop.fct_orders"
    spaced = asset_uri("core", "shop", "model.shop.spaced model")
    assert spaced == "x-dbt://core/shop/model.shop.spaced%20model"


def _config(**overrides):
    return load_config(None, {"team": "shop_team", "routing.force": "celery", **overrides})


def test_dag_ids_are_team_then_group_and_task_ids_carry_versions(shop_manifest):
    result = generate(shop_manifest, _config())
    sales = next(d for d in result.dags if d.group == "sales")
    assert sales.dag_id == "shop_team__sales"
    assert sales.file_name == "shop_team__sales.py"
    assert {"dim_customers_v1", "dim_customers_v2", "fct_orders"} <= {
        t.task_id for t in sales.tasks
    }


def test_two_nodes_with_one_task_id_in_a_dag_are_an_error(edited_manifest):
    def clash(raw):
        raw["nodes"]["model.shop.sales_by_country"]["name"] = "fct-orders"

    with pytest.raises(GraphError, match=r"task id 'fct_orders' would be used by both"):
        generate(edited_manifest(clash), _config())


def test_two_groups_with_one_dag_id_are_an_error(edited_manifest):
    def clash(raw):
        for uid in ("model.shop.mkt_channel_spend", "model.shop.mkt_customer_segments"):
            raw["nodes"][uid]["group"] = "sales-"

    with pytest.raises(
        GraphError, match=r"groups 'sales' and 'sales-' both become DAG id 'shop_team__sales'"
    ):
        generate(edited_manifest(clash), _config())
