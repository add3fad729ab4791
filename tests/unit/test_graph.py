"""From dbt nodes to units of work: one unit per future Airflow task."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagfactory.errors import GraphError
from dagfactory.graph import build_graph, cycle_of, strongly_connected, topological_order
from dagfactory.manifest import load_manifest


@pytest.fixture(scope="module")
def graph(shop_manifest):
    return build_graph(load_manifest(shop_manifest))


def test_ephemeral_models_are_not_tasks_and_pass_their_edges_through(graph):
    assert "model.shop.int_orders_enriched" not in graph.units
    assert "model.shop.int_order_amounts" not in graph.units
    # stg -> int_orders_enriched (ephemeral) -> int_order_amounts (ephemeral) -> fct_orders
    assert graph.upstream("model.shop.fct_orders") == [
        "model.shop.stg_customers",
        "model.shop.stg_orders",
    ]


def test_disabled_nodes_and_sources_are_not_tasks(graph):
    assert "model.shop.mkt_legacy_campaigns" not in graph.units
    assert not [uid for uid in graph.units if uid.startswith("source.")]
    assert graph.upstream("model.shop.stg_ad_spend") == []  # reads only a source


def test_a_test_with_one_parent_runs_inside_its_parents_task(graph):
    unit = graph.units["model.shop.fct_orders"]
    assert unit.command == "build"
    assert "test.shop.unique_fct_orders_order_id.523ddb6ce5" in unit.members
    assert "test.shop.unique_fct_orders_order_id.523ddb6ce5" not in graph.units


@pytest.mark.parametrize(
    ("test_id", "parents"),
    [
        (
            "test.shop.relationships_fct_revenue_order_id__order_id__ref_fct_orders_.1a56c77a77",
            ["model.shop.fct_orders", "model.shop.fct_revenue"],
        ),
        (
            "test.shop.assert_revenue_matches_orders",
            ["model.shop.fct_orders", "model.shop.fct_revenue"],
        ),
        (
            "test.shop.relationships_stg_customers_country_code__code__ref_country_codes_.8de8b269e8",
            ["model.shop.stg_customers", "seed.shop.country_codes"],
        ),
        ("test.shop.source_not_null_web_ad_spend_spend_date.9ea10727f2", []),  # a source test
    ],
    ids=["relationships", "singular over two models", "model to seed", "source only"],
)
def test_a_test_with_other_parents_is_its_own_task_after_all_of_them(graph, test_id, parents):
    unit = graph.units[test_id]
    assert unit.command == "test"
    assert unit.members == (test_id,)
    assert graph.upstream(test_id) == parents


def test_versioned_models_are_distinct_tasks_with_exact_selectors(graph):
    assert (
        graph.units["model.shop.dim_customers.v1"].selector
        == "fqn:shop.marts.sales.dim_customers.v1"
    )
    assert (
        graph.units["model.shop.dim_customers.v2"].selector
        == "fqn:shop.marts.sales.dim_customers.v2"
    )


def test_a_cycle_between_models_is_a_clear_error(edited_manifest):
    def make_cycle(raw):
        raw["nodes"]["model.shop.stg_orders"]["depends_on"]["nodes"] = ["model.shop.fct_orders"]

    with pytest.raises(GraphError, match=r"the dbt graph has a cycle: .*fct_orders.*stg_orders"):
        build_graph(load_manifest(edited_manifest(make_cycle)))


_NAMES = st.sampled_from([f"n{i}" for i in range(12)])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_NAMES, _NAMES), max_size=40), st.sets(_NAMES, max_size=12))
def test_orders_and_cycles_are_networkx_s_on_any_small_graph(edges, lonely):
    """The hot path sorts with plain dicts; networkx (imported only for cycles) is the oracle."""
    reference = nx.DiGraph()
    reference.add_nodes_from(sorted(lonely))
    reference.add_edges_from(sorted(edges))
    nodes = set(reference.nodes)
    if nx.is_directed_acyclic_graph(reference):
        assert topological_order(nodes, edges) == list(
            nx.lexicographical_topological_sort(reference)
        )
        assert cycle_of(edges) is None
        assert sorted(map(sorted, strongly_connected(nodes, edges))) == [[n] for n in sorted(nodes)]
    else:
        cycle = cycle_of(edges)
        assert cycle and all(reference.has_edge(up, down) for up, down in cycle)
        assert [down for _, down in cycle] == [up for up, _ in cycle[1:]] + [cycle[0][0]]
        found = sorted(map(sorted, strongly_connected(nodes, edges)))
        assert found == sorted(map(sorted, nx.strongly_connected_components(reference)))


def test_a_graph_keeps_its_unit_edges_sorted_both_ways(graph):
    edges = graph.edges()
    assert edges == sorted(edges)
    for up, down in edges:
        assert down in graph.downstream(up) and up in graph.upstream(down)
    order = graph.topological_order()
    assert sorted(order) == sorted(graph.units)
    assert all(order.index(up) < order.index(down) for up, down in edges)
