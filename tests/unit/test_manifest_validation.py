"""Manifest nodes are checked where they are loaded: a malformed field is one line, exit 2.

Each row changes one field of one node of the shop sample's real manifest and runs
``dagfactory build`` in-process; the error must name the manifest file, the node and the
field, on one line, and nothing may be written.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import run_cli

from dagfactory.manifest import MAX_META_DEPTH

MODEL = "model.shop.fct_revenue"
TEST = "test.shop.assert_revenue_matches_orders"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"retries": 1}
    for _ in range(depth):
        value = {"x": value}
    return value


def _set(node_id: str, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        target = raw["nodes"][node_id]
        *parents, last = field.split(".")
        for part in parents:
            target = target[part]
        target[last] = value

    return edit


def _drop(node_id: str, field: str) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw["nodes"][node_id].pop(field)


def _rekey(raw: dict[str, Any]) -> None:
    raw["nodes"]["model.shop.other"] = raw["nodes"].pop(MODEL)


#: (edit, node named in the error, field named, words of the message)
CASES = {
    "parent-missing": (
        _set(MODEL, "depends_on.nodes", ["model.shop.fct_orders", "model.shop.nowhere"]),
        MODEL, "depends_on.nodes", "'model.shop.nowhere', which the manifest does not define",
    ),
    "depends-on-a-list": (
        _set(MODEL, "depends_on", ["model.shop.fct_orders"]),
        MODEL, "depends_on", "must be an object, got a list",
    ),
    "depends-on-itself": (
        _set(MODEL, "depends_on.nodes", ["model.shop.fct_orders", MODEL]),
        MODEL, "depends_on.nodes", "the node depends on itself",
    ),
    "parents-not-a-list": (
        _set(MODEL, "depends_on.nodes", "model.shop.fct_orders"),
        MODEL, "depends_on.nodes", "must be a list of node ids, got a string",
    ),
    "fqn-an-object": (_set(MODEL, "fqn", {"a": 1}), MODEL, "fqn", "got an object"),
    "fqn-a-number": (_set(MODEL, "fqn", 5), MODEL, "fqn", "must be a list of strings, got a number"),
    "name-null": (_set(MODEL, "name", None), MODEL, "name", "must be a non-empty string, got null"),
    "name-empty": (_set(MODEL, "name", ""), MODEL, "name", "got an empty string"),
    "tags-a-number": (_set(MODEL, "tags", 5), MODEL, "tags", "must be a list of strings, got a number"),
    "config-tags-a-list-of-numbers": (
        _set(MODEL, "config.tags", [1, 2]), MODEL, "config.tags", "got a list",
    ),
    "no-unique-id": (_drop(MODEL, "unique_id"), MODEL, "unique_id", "has no unique_id"),
    "key-differs-from-unique-id": (
        _rekey, "model.shop.other", "unique_id", "has a different unique_id",
    ),
    "meta-nested-255-levels": (
        _set(MODEL, "meta", {"dagfactory": _nested(255)}),
        MODEL, "meta", f"nested more than {MAX_META_DEPTH} levels deep",
    ),
    "meta-a-list": (_set(MODEL, "meta", [1]), MODEL, "meta", "must be an object, got a list"),
    "config-a-string": (_set(MODEL, "config", "view"), MODEL, "config", "must be an object"),
    "group-a-number": (_set(MODEL, "group", 7), MODEL, "group", "must be a string or null"),
    "description-an-object": (
        _set(MODEL, "description", {"x": 1}), MODEL, "description", "got an object",
    ),
    "materialized-a-list": (
        _set(MODEL, "config.materialized", ["table"]), MODEL, "config.materialized", "got a list",
    ),
    "version-an-object": (_set(MODEL, "version", {}), MODEL, "version", "a string or number"),
    "package-missing": (
        _drop(TEST, "package_name"), TEST, "package_name", "got null",
    ),
    "test-parent-missing": (
        _set(TEST, "depends_on.nodes", ["model.shop.gone"]), TEST, "depends_on.nodes",
        "does not define",
    ),
}  # fmt: skip


@pytest.fixture
def edited_manifest(tmp_path, shop_lean) -> Callable[..., Path]:
    """The shop manifest changed by ``edit``, written by the stdlib: orjson will not write
    the deepest rows (it stops at 255 levels), and dbt's own writer is Python's json."""

    def make(edit: Callable[[dict[str, Any]], object]) -> Path:
        raw = copy.deepcopy(shop_lean)
        edit(raw)
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps(raw))
        return path

    return make


def _build(capsys, manifest, out) -> tuple[int, str]:
    argv = ["build", "--manifest", str(manifest), "--out", str(out), "--runner", "celery"]
    return run_cli(argv, capsys)


@pytest.mark.parametrize(("edit", "node", "field", "words"), CASES.values(), ids=CASES.keys())
def test_a_malformed_node_field_is_one_line_naming_file_node_and_field(
    capsys, edited_manifest, tmp_path, edit, node, field, words
):
    manifest = edited_manifest(edit)
    code, err = _build(capsys, manifest, tmp_path / "dags")
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"error: {manifest}, node {node}, ")
    assert f"key '{field}'" in err and words in err
    assert "Traceback" not in err
    assert not (tmp_path / "dags").exists()


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (_set(MODEL, "depends_on.nodes", ["model.shop.fct_orders", "source.shop.web.ad_spend"]),
         "a source"),
        (_set(MODEL, "tags", "finance"), "a lone tag string"),
        (_set(MODEL, "meta", {"lineage": _nested(MAX_META_DEPTH - 3)}), "meta within the limit"),
        (_set(MODEL, "version", 2), "a numeric version"),
        (_drop("seed.shop.raw_orders", "depends_on"), "a seed without depends_on"),
        (_set("analysis.shop.revenue_by_month", "fqn", 5), "a node dagfactory does not run"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)  # fmt: skip
def test_what_dbt_itself_writes_still_builds(capsys, edited_manifest, tmp_path, edit, why):
    code, err = _build(capsys, edited_manifest(edit), tmp_path / "dags")
    assert code == 0, f"{why}: {err}"


def test_a_parent_that_is_a_disabled_node_is_defined(capsys, edited_manifest, tmp_path):
    def edit(raw: dict[str, Any]) -> None:
        raw["disabled"] = {"model.shop.old": [{"unique_id": "model.shop.old"}]}
        raw["nodes"][MODEL]["depends_on"]["nodes"].append("model.shop.old")

    code, err = _build(capsys, edited_manifest(edit), tmp_path / "dags")
    assert code == 0, err


def test_ids_in_a_model_cycle_error_stay_on_one_line(capsys, edited_manifest, tmp_path):
    evil = "model.shop.a\nerror: forged line"

    def edit(raw: dict[str, Any]) -> None:
        node = raw["nodes"].pop(MODEL)
        node["unique_id"] = evil
        raw["nodes"][evil] = node
        orders = raw["nodes"]["model.shop.fct_orders"]
        orders["depends_on"]["nodes"] = [*orders["depends_on"]["nodes"], evil]
        for other in raw["nodes"].values():
            parents = other.get("depends_on", {}).get("nodes") or []
            other.get("depends_on", {})["nodes"] = [evil if p == MODEL else p for p in parents]

    code, err = _build(capsys, edited_manifest(edit), tmp_path / "dags")
    assert code == 2
    assert err.count("\n") == 1 and "cycle" in err
    assert "model.shop.a\\nerror: forged line" in err
