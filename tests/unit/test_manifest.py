"""Loading manifest.json: what is read, how odd shapes are normalised, how bad input fails."""

from __future__ import annotations

import pytest
from tests_paths import CORPUS

from dagfactory.errors import ManifestError, UnsupportedSchemaError
from dagfactory.manifest import load_manifest, load_run_results


def test_reads_the_sample_project(shop_manifest):
    manifest = load_manifest(shop_manifest)
    assert manifest.schema_version == 12
    assert manifest.project_name == "shop"
    assert sorted(manifest.groups) == ["finance", "marketing", "sales"]
    assert manifest.groups["sales"].owner


@pytest.mark.parametrize(
    ("unique_id", "present"),
    [
        ("model.shop.fct_orders", True),
        ("model.shop.int_orders_enriched", True),  # ephemeral: kept here, dropped by graph
        ("seed.shop.raw_orders", True),
        ("snapshot.shop.customers_snapshot", True),
        ("model.shop.mkt_legacy_campaigns", False),  # disabled
        ("analysis.shop.revenue_by_month", False),  # analyses are not run by dbt build
        ("source.shop.web.ad_spend", False),  # sources are inputs
    ],
    ids=lambda v: str(v),
)
def test_which_nodes_are_kept(shop_manifest, unique_id, present):
    assert (unique_id in load_manifest(shop_manifest).nodes) is present


def test_versioned_models_are_distinct_nodes(shop_manifest):
    nodes = load_manifest(shop_manifest).nodes
    assert nodes["model.shop.dim_customers.v1"].version == "1"
    assert nodes["model.shop.dim_customers.v2"].version == "2"


def test_unit_tests_are_read_from_their_own_section(shop_manifest, shop_raw):
    nodes = load_manifest(shop_manifest).nodes
    assert set(shop_raw["unit_tests"]) <= set(nodes)


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        pytest.param(
            lambda raw: raw["nodes"]["model.shop.fct_orders"].update(tags="nightly"),
            lambda m: m.nodes["model.shop.fct_orders"].tags == ("nightly",),
            id="a tag given as a string",
        ),
        pytest.param(
            lambda raw: raw["nodes"]["seed.shop.raw_orders"].pop("depends_on"),
            lambda m: m.nodes["seed.shop.raw_orders"].depends_on == (),
            id="a seed without depends_on",
        ),
        pytest.param(
            lambda raw: [
                n.pop(k, None)
                for n in raw["nodes"].values()
                for k in ("group", "version", "access")
            ],
            lambda m: m.nodes["model.shop.fct_orders"].group == "sales",  # still in config
            id="no group, version or access keys (dbt < 1.5)",
        ),
        pytest.param(
            lambda raw: raw["metadata"].pop("project_name"),
            lambda m: m.project_name == "shop",  # found from metadata.project_id = md5(name)
            id="no project_name (dbt < 1.6)",
        ),
        pytest.param(
            lambda raw: raw.pop("groups"),
            lambda m: m.groups == {},
            id="no groups section",
        ),
    ],
)
def test_odd_shapes_are_normalised(edited_manifest, edit, check):
    assert check(load_manifest(edited_manifest(edit)))


def test_a_missing_file_names_the_file(tmp_path):
    with pytest.raises(ManifestError, match=r"nope\.json.*manifest not found"):
        load_manifest(tmp_path / "nope.json")


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text('{"metadata": ')
    with pytest.raises(ManifestError, match=r"manifest\.json.*not valid JSON"):
        load_manifest(path)


@pytest.mark.parametrize(
    ("version", "message"),
    [(3, r"schema v3 .* too old.*v4 to v12"), (1, r"schema v1 .* too old"), (13, r"v13 .* newer")],
)
def test_unsupported_schema_versions_say_what_to_do(edited_manifest, version, message):
    url = f"https://schemas.getdbt.com/dbt/manifest/v{version}.json"
    path = edited_manifest(lambda raw: raw["metadata"].update(dbt_schema_version=url))
    with pytest.raises(UnsupportedSchemaError, match=message) as info:
        load_manifest(path)
    assert info.value.exit_code == 2


def test_a_node_without_a_name_is_named_in_the_error(edited_manifest):
    path = edited_manifest(lambda raw: raw["nodes"]["model.shop.fct_orders"].pop("name"))
    with pytest.raises(ManifestError, match=r"node model\.shop\.fct_orders.*'name'"):
        load_manifest(path)


@pytest.mark.skipif(not (CORPUS / "FlipsideCrypto__ethereum-models").is_dir(), reason="no corpus")
def test_reads_a_dbt_1_0_manifest():
    manifest = load_manifest(CORPUS / "FlipsideCrypto__ethereum-models" / "manifest.json")
    assert manifest.schema_version == 4
    assert manifest.project_name == "ethereum_models"


def test_run_results_give_robust_statistics(tmp_path):
    import orjson

    paths = []
    for i, seconds in enumerate([10.0, 12.0, 11.0, 900.0]):
        path = tmp_path / f"run_results_{i}.json"
        results = [
            {"unique_id": "model.shop.fct_orders", "status": "success", "execution_time": seconds},
            {"unique_id": "model.shop.broken", "status": "error", "execution_time": 5000.0},
        ]
        path.write_bytes(orjson.dumps({"results": results}))
        paths.append(path)
    times = load_run_results(paths)
    assert times.median("model.shop.fct_orders") == 11.5
    assert times.p95("model.shop.fct_orders") == 900.0
    assert times.median("model.shop.broken") is None  # errored runs say nothing about duration


def test_a_process_about_to_end_parks_the_raw_json_instead_of_freeing_it(
    shop_manifest, monkeypatch
):
    from dagfactory import manifest as stage

    freed = load_manifest(shop_manifest)
    monkeypatch.setattr(stage, "_kept_until_exit", [])
    parked = load_manifest(shop_manifest)
    assert parked == freed  # the same nodes either way
    (raw,) = stage._kept_until_exit
    assert set(parked.nodes) <= {*raw["nodes"], *raw["unit_tests"]}


def test_every_field_of_a_loaded_node_is_set_and_frozen(shop_manifest):
    import dataclasses

    for node in load_manifest(shop_manifest).nodes.values():
        values = {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}
        assert node == type(node)(**values)
        with pytest.raises(dataclasses.FrozenInstanceError):
            node.name = "changed"  # type: ignore[misc]
