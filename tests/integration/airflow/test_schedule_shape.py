"""The generated schedule hashes once, and Airflow stores the DAG exactly as before.

Airflow 3.3 hashes a DAG, its ``schedule`` included, for every task named in every dependency
call; a plain list of N assets costs N ``json.dumps`` per hash, so parsing grew with tasks x
assets. Generated files pass the assets as ``_AssetList``, a tuple that caches its hash. These
tests hold that this changes nothing Airflow keeps: the serialized DAG (timetable and asset
condition, dependencies, tasks, ``dag_dependencies``) equals that of the plain-list file.
The corpus builds are compared in ``test_conformance.py``.
"""

from __future__ import annotations

import ast

import pytest
from conftest import HOSTILE, SHOP
from helpers import load_dagbag, plain_list_twin, serialized_dags

from dagfactory import build, load_config

pytestmark = pytest.mark.airflow


@pytest.mark.parametrize(
    ("manifest", "overrides"),
    [
        pytest.param(SHOP / "manifest.json", {}, id="shop-assets"),
        pytest.param(SHOP / "manifest.json", {"group_by": "folder"}, id="shop-folders"),
        pytest.param(HOSTILE / "manifest.json", {}, id="hostile"),
    ],
)
def test_serialized_dags_equal_the_plain_list_shape(manifest, overrides, tmp_path):
    out = tmp_path / "dags"
    build(manifest, out, load_config(SHOP / "dagfactory.yml", overrides))
    assert "_AssetList(" in "".join(p.read_text() for p in out.glob("*.py"))
    twin = plain_list_twin(out, tmp_path / "twin")
    assert serialized_dags(out) == serialized_dags(twin)


def test_asset_schedule_is_a_hashable_collection_of_the_upstream_assets(tmp_path):
    out = tmp_path / "dags"
    build(SHOP / "manifest.json", out, load_config(SHOP / "dagfactory.yml"))
    dag = load_dagbag(out).dags["shop_team__marketing"]
    assert isinstance(dag.schedule, tuple)
    assert hash(dag.schedule) == hash(dag.schedule)
    assert sorted(a.uri for a in dag.schedule) == sorted(
        a.uri for a in dag.timetable.asset_condition.objects
    )


@pytest.mark.parametrize("cross_dag", ["asset_or_time", "sensors"])
def test_other_cross_dag_modes_define_no_asset_list(cross_dag, tmp_path):
    out = tmp_path / "dags"
    build(
        SHOP / "manifest.json", out, load_config(SHOP / "dagfactory.yml", {"cross_dag": cross_dag})
    )
    for path in out.glob("*.py"):
        names = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
        assert "_AssetList" not in names, path.name
