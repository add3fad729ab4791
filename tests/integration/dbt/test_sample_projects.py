"""The sample dbt projects and the synthetic manifest generator under sample_manifests/.

The first tests read the committed manifests only and pin the dbt features other
tests rely on (so a careless regen cannot silently drop the ephemeral chain or the
source-only test). The ``dbt`` tests run real dbt: the committed manifests must match
what dbt parses from the project sources today, ``dbt build`` must pass from any
working directory, and ``--vars '{fail_test: true}'`` must fail exactly one test.
The synth tests check the generator's promises: same seed, same bytes; real node
shapes; consistent maps; an acyclic group graph.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import dbt_executable
from tests_paths import HOSTILE, SAMPLES, SHOP

SHOP_P = "model.shop."


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def shop() -> dict[str, Any]:
    return _load(SHOP / "manifest.json")


@pytest.fixture(scope="module")
def hostile() -> dict[str, Any]:
    return _load(HOSTILE / "manifest.json")


def _group_edges(manifest: dict[str, Any]) -> set[tuple[str, str]]:
    nodes = manifest["nodes"]
    edges = set()
    for node in nodes.values():
        if node["resource_type"] != "model" or not node.get("group"):
            continue
        for parent in node["depends_on"]["nodes"]:
            pg = nodes.get(parent, {}).get("group")
            if pg and pg != node["group"]:
                edges.add((pg, node["group"]))
    return edges


def _acyclic(edges: set[tuple[str, str]]) -> bool:
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    indeg = dict.fromkeys(graph, 0)
    for targets in graph.values():
        for t in targets:
            indeg[t] += 1
    ready = [n for n, d in indeg.items() if d == 0]
    seen = 0
    while ready:
        n = ready.pop()
        seen += 1
        for t in graph[n]:
            indeg[t] -= 1
            if indeg[t] == 0:
                ready.append(t)
    return seen == len(graph)


# --------------------------------------------------------------------------- shop
def test_shop_manifest_is_real_dbt_1_11_output(shop):
    meta = shop["metadata"]
    assert meta["dbt_schema_version"] == "https://schemas.getdbt.com/dbt/manifest/v12.json"
    assert meta["dbt_version"].startswith("1.11.")
    assert meta["project_name"] == "shop"
    assert meta["adapter_type"] == "duckdb"
    # regen.sh parses with relative dirs: no machine path may leak into the file.
    text = (SHOP / "manifest.json").read_text(encoding="utf-8")
    assert "/work/" not in text and "/tmp/" not in text and "/home/" not in text


def test_shop_groups_have_owners_and_staging_has_none(shop):
    groups = {g["name"]: g["owner"] for g in shop["groups"].values()}
    assert {"sales", "finance", "marketing"} <= set(groups)
    assert all(o.get("name") and o.get("email") for o in groups.values())
    staging = [n for n in shop["nodes"].values() if n["fqn"][1:2] == ["staging"]]
    assert staging and all(n["group"] is None for n in staging if n["resource_type"] == "model")
    assert _acyclic(_group_edges(shop))
    assert ("sales", "finance") in _group_edges(shop)
    assert ("marketing", "finance") in _group_edges(shop)


def test_shop_ephemeral_chain_passes_through_two_ephemerals(shop):
    nodes = shop["nodes"]
    a, b = nodes[SHOP_P + "int_orders_enriched"], nodes[SHOP_P + "int_order_amounts"]
    assert a["config"]["materialized"] == b["config"]["materialized"] == "ephemeral"
    assert SHOP_P + "stg_orders" in a["depends_on"]["nodes"]
    assert b["depends_on"]["nodes"] == [SHOP_P + "int_orders_enriched"]
    assert nodes[SHOP_P + "fct_orders"]["depends_on"]["nodes"] == [SHOP_P + "int_order_amounts"]


def test_shop_versions_are_separate_nodes_and_refs_can_pin_one(shop):
    nodes = shop["nodes"]
    v1, v2 = nodes[SHOP_P + "dim_customers.v1"], nodes[SHOP_P + "dim_customers.v2"]
    assert (v1["version"], v2["version"]) == (1, 2)
    assert v1["latest_version"] == v2["latest_version"] == 2
    assert (
        v1["fqn"][-1] == "v1"
        and v1["name"] == "dim_customers"
        and v1["alias"] == "dim_customers_v1"
    )
    assert (
        SHOP_P + "dim_customers.v1" in nodes[SHOP_P + "finance_customer_ltv"]["depends_on"]["nodes"]
    )
    # An unpinned ref resolves to the latest version.
    assert (
        SHOP_P + "dim_customers.v2"
        in nodes[SHOP_P + "mkt_customer_segments"]["depends_on"]["nodes"]
    )


def test_shop_tests_cover_every_parent_shape(shop):
    nodes = shop["nodes"]
    tests = {k: n for k, n in nodes.items() if n["resource_type"] == "test"}
    parents = {k: n["depends_on"]["nodes"] for k, n in tests.items()}
    # A test whose only parent is a source.
    assert [k for k, p in parents.items() if p == ["source.shop.web.ad_spend"]]
    # A relationships test across groups (two parents, different groups).
    cross = [
        k
        for k, p in parents.items()
        if len(p) == 2 and len({nodes[x].get("group") for x in p if x in nodes}) == 2
    ]
    assert any((tests[k].get("test_metadata") or {}).get("name") == "relationships" for k in cross)
    # A relationships test from a model to a seed.
    assert any(len(p) == 2 and any(x.startswith("seed.") for x in p) for p in parents.values())
    # Singular tests: no test_metadata, no hash suffix.
    singular = tests["test.shop.assert_revenue_matches_orders"]
    assert "test_metadata" not in singular and "attached_node" not in singular
    assert sorted(singular["depends_on"]["nodes"]) == [
        SHOP_P + "fct_orders",
        SHOP_P + "fct_revenue",
    ]
    failing = tests["test.shop.assert_channel_spend_is_positive"]
    assert "var('fail_test'" in failing["raw_code"]
    kinds = Counter(n["test_metadata"]["name"] for n in tests.values() if n.get("test_metadata"))
    assert {"unique", "not_null", "accepted_values", "relationships"} <= set(kinds)


def test_shop_seeds_snapshot_source_disabled_and_meta(shop):
    nodes = shop["nodes"]
    kinds = Counter(n["resource_type"] for n in nodes.values())
    assert kinds["seed"] == 3 and kinds["snapshot"] == 1 and 12 <= kinds["model"] <= 20
    snap = "snapshot.shop.customers_snapshot"
    assert nodes[SHOP_P + "fin_customer_audit"]["depends_on"]["nodes"] == [snap]
    source = shop["sources"]["source.shop.web.ad_spend"]
    assert source["meta"]["external_location"].startswith("read_csv('./data/ad_spend.csv'")
    assert not any(k.endswith("ad_spend") for k in nodes if k.startswith("seed."))
    assert list(shop["disabled"]) == [SHOP_P + "mkt_legacy_campaigns"]
    assert SHOP_P + "mkt_legacy_campaigns" not in nodes
    revenue = nodes[SHOP_P + "fct_revenue"]
    assert revenue["meta"]["dagfactory"] == {"runner": "kubernetes"}
    assert "heavy" in revenue["tags"]
    assert '"' in revenue["description"] and "'" in revenue["description"]
    assert "\n" in revenue["description"].strip()
    assert "nightly" in nodes[SHOP_P + "fct_orders"]["tags"]
    assert sum("team" in n["meta"] or "domain" in n["meta"] for n in nodes.values()) >= 4


# ------------------------------------------------------------------------ hostile
def test_hostile_manifest_keeps_the_hostile_text_literal(hostile):
    nodes = hostile["nodes"]
    quotes = nodes["model.hostile.quotes"]
    desc = quotes["description"]
    for needle in ("'''", '"""', "\\", "{{ var('x') }}", "{% if true %}", "__import__('os')"):
        assert needle in desc
    assert "{% raw %}" not in json.dumps(quotes["meta"])
    assert quotes["meta"]["jinja"] == "{{ env_var('HOME') }} {% set x = 1 %}"
    assert "\x00" in quotes["meta"]["weird 'key\""]
    assert "{{ tag }}" in quotes["tags"]
    assert "{{ col }}" in quotes["columns"]["id"]["description"]
    owners = {g["name"]: g["owner"]["name"] for g in hostile["groups"].values()}
    assert '"""' in owners["data-platform"] and "{{ owner }}" in owners["data-platform"]
    assert "model.hostile.dashed-model" in nodes
    assert nodes["model.hostile.spaced model"]["path"] == "dash-folder/spaced model.sql"
    assert quotes["original_file_path"] == "models/odd folder/quotes.sql"


# -------------------------------------------------------------------------- synth
def _synth():
    spec = importlib.util.spec_from_file_location("synth", SAMPLES / "synth.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def synth():
    return _synth()


@pytest.fixture(scope="module")
def synth_1k(synth):
    s = synth.Synth(1000, seed=3)
    manifest = s.build()
    return json.loads(synth.dumps(manifest)), json.loads(synth.dumps(s.run_results(manifest)))


def test_synth_is_deterministic_per_seed(synth):
    a = synth.dumps(synth.build_manifest(300, seed=7))
    b = synth.dumps(synth.build_manifest(300, seed=7))
    c = synth.dumps(synth.build_manifest(300, seed=8))
    assert a == b
    assert a != c
    plain = json.dumps(json.loads(a), separators=(",", ":"), ensure_ascii=False).encode()
    assert plain == a  # the json fallback writes the same bytes as orjson


def test_synth_nodes_have_the_keys_dbt_writes(synth_1k, shop):
    manifest, _ = synth_1k

    def shape(n):
        return (n["resource_type"], bool(n.get("test_metadata")))

    real = {}
    for n in shop["nodes"].values():
        real.setdefault(shape(n), set(n))
    for uid, n in manifest["nodes"].items():
        assert set(n) == real[shape(n)], uid
    for n in manifest["sources"].values():
        assert set(n) == set(shop["sources"]["source.shop.web.ad_spend"])
    assert set(manifest) == set(shop)
    assert manifest["metadata"]["project_id"] == "3d401e8a794a88b7666f73faf9c99014"  # md5("synth")


def test_synth_graph_is_consistent_and_layered(synth_1k):
    manifest, _ = synth_1k
    nodes, sources = manifest["nodes"], manifest["sources"]
    known = set(nodes) | set(sources) | set(manifest["exposures"])
    models = {k: n for k, n in nodes.items() if n["resource_type"] == "model"}
    assert len(models) == 1000
    for uid, parents in manifest["parent_map"].items():
        node = nodes.get(uid) or sources.get(uid) or manifest["exposures"][uid]
        assert sorted(node.get("depends_on", {}).get("nodes", [])) == parents
        assert all(p in known and uid in manifest["child_map"][p] for p in parents)
    assert _acyclic(_group_edges(manifest))
    assert {g["name"] for g in manifest["groups"].values()} == set(manifest["group_map"])
    staging = [n for n in models.values() if n["fqn"][1] == "staging"]
    assert 90 <= len(staging) <= 110 and all(n["group"] is None for n in staging)
    assert all(n["sources"] for n in staging)
    grouped = [n for n in models.values() if n["group"]]
    assert all(n["fqn"][1] == n["group"] == n["config"]["group"] for n in grouped)
    fan_in = Counter(len(n["depends_on"]["nodes"]) for n in grouped)
    assert set(fan_in) <= {1, 2, 3, 4, 5}
    ephemeral = sum(n["config"]["materialized"] == "ephemeral" for n in models.values())
    assert 10 <= ephemeral <= 60
    assert any(n["version"] == 2 for n in models.values())
    tests = [n for n in nodes.values() if n["resource_type"] == "test"]
    assert 1.7 <= len(tests) / len(models) <= 2.6
    assert sum(len(t["depends_on"]["nodes"]) == 2 for t in tests) >= 20
    assert any(t["depends_on"]["nodes"][0].startswith("source.") for t in tests)
    assert 5 <= len(manifest["disabled"]) <= 20
    assert all(d[0]["config"]["enabled"] is False for d in manifest["disabled"].values())
    assert not set(manifest["disabled"]) & set(nodes)


def test_synth_run_results_have_a_long_tail(synth_1k):
    manifest, rr = synth_1k
    assert rr["metadata"]["dbt_schema_version"].endswith("/run-results/v6.json")
    times = {r["unique_id"]: r["execution_time"] for r in rr["results"]}
    model_times = [t for uid, t in times.items() if uid.startswith("model.")]
    ephemeral = sum(
        n["config"]["materialized"] == "ephemeral"
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
    )
    assert len(model_times) == 1000 - ephemeral
    assert 2 <= sum(t > 900 for t in model_times) <= 30
    assert sorted(model_times)[len(model_times) // 2] < 60


def test_synth_cli_writes_both_files(tmp_path):
    out, rr = tmp_path / "m.json", tmp_path / "rr.json"
    subprocess.run(
        [
            sys.executable,
            str(SAMPLES / "synth.py"),
            *("--models", "200", "--groups", "3"),
            *("--out", str(out), "--run-results", str(rr)),
        ],
        check=True,
        capture_output=True,
    )
    manifest = _load(out)
    assert len(manifest["groups"]) == 3
    assert _load(rr)["results"]


# ---------------------------------------------------------------------- real dbt


def _run_dbt(args: list[str], cwd: Path, tmp: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {
        k: v for k, v in os.environ.items() if k not in ("SHOP_DATA_DIR", "DBT_PROFILES_DIR")
    }
    environ.update(
        DBT_DUCKDB_PATH=str(tmp / "db.duckdb"), DBT_SEND_ANONYMOUS_USAGE_STATS="false", **env
    )
    return subprocess.run(
        [
            dbt_executable(),
            *args,
            "--target-path",
            str(tmp / "target"),
            "--log-path",
            str(tmp / "logs"),
        ],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _essence(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a dbt patch release may not change: ids, edges, groups, configs we read."""
    out = {}
    for coll in ("nodes", "sources", "exposures"):
        for uid, n in manifest[coll].items():
            out[uid] = (
                n.get("fqn"),
                n.get("depends_on", {}).get("nodes"),
                n.get("group"),
                n.get("config", {}).get("materialized"),
                n.get("tags"),
                n.get("meta"),
                n.get("description"),
                n.get("original_file_path"),
            )
    out["groups"] = manifest["groups"]
    out["disabled"] = sorted(manifest["disabled"])
    return out


@pytest.mark.dbt
@pytest.mark.slow
@pytest.mark.parametrize("project", [SHOP, HOSTILE], ids=["shop", "hostile"])
def test_committed_manifest_matches_a_fresh_parse(project, tmp_path):
    done = _run_dbt(
        ["parse", "--project-dir", ".", "--profiles-dir", ".", "--no-partial-parse"],
        project,
        tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    fresh = _load(tmp_path / "target" / "manifest.json")
    committed = _load(project / "manifest.json")
    assert _essence(fresh) == _essence(committed), "run sample_manifests/regen.sh"


@pytest.mark.dbt
@pytest.mark.slow
def test_shop_builds_from_another_directory_and_fails_on_the_var(tmp_path):
    flags = ["--project-dir", str(SHOP), "--profiles-dir", str(SHOP)]
    ok = _run_dbt(["build", *flags], tmp_path, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    statuses = Counter(
        r["status"] for r in _load(tmp_path / "target" / "run_results.json")["results"]
    )
    assert set(statuses) <= {"success", "pass", "no-op"}, statuses
    failed = _run_dbt(
        [
            "build",
            *flags,
            "--select",
            "assert_channel_spend_is_positive",
            "--vars",
            "{fail_test: true}",
        ],
        tmp_path,
        tmp_path,
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    results = _load(tmp_path / "target" / "run_results.json")["results"]
    assert [(r["unique_id"], r["status"]) for r in results] == [
        ("test.shop.assert_channel_spend_is_positive", "fail")
    ]


@pytest.mark.dbt
@pytest.mark.slow
def test_hostile_builds(tmp_path):
    done = _run_dbt(
        ["build", "--project-dir", str(HOSTILE), "--profiles-dir", str(HOSTILE)], tmp_path, tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
