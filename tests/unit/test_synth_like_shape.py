"""synth_project.py's ``like:<manifest.json>`` shape: a real project's graph, copied.

The per-task dbt cost depends on the graph's shape, so the benchmark runs real dbt on
copies of real projects' graphs (``sample_manifests/synth_project.py``). These tests pin
what "copy" means, against real manifests of the shared corpus, computed independently
with networkx.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter
from pathlib import Path

import networkx as nx
import orjson
import pytest
from helpers import load_synth_project
from tests_paths import CORPUS

sp = load_synth_project()

TUVA = CORPUS / "tuva-health__tuva" / "manifest.json"
ABAGDI = CORPUS / "abagdi-allvuesystems__dbt-docs-site" / "manifest.json"

pytestmark = pytest.mark.skipif(not TUVA.exists(), reason="../shared/corpus is absent")


def _real_model_ancestors(path: Path) -> list[int]:
    """Per enabled model (or snapshot) of the real manifest: how many models are upstream."""
    nodes = orjson.loads(path.read_bytes())["nodes"]
    models = {
        u
        for u, n in nodes.items()
        if n["resource_type"] in ("model", "snapshot") and n["config"].get("enabled", True)
    }
    g = nx.DiGraph()
    g.add_nodes_from(models)
    g.add_edges_from((p, u) for u in models for p in nodes[u]["depends_on"]["nodes"] if p in models)
    return [len(nx.ancestors(g, u)) for u in models]


def _copy_ancestors(project, copy: str) -> list[int]:
    models = {m.name: m for m in project.models if m.name.startswith(copy)}
    g = nx.DiGraph()
    g.add_nodes_from(models)
    g.add_edges_from((p, m.name) for m in models.values() for p in m.parents if p in models)
    return [len(nx.ancestors(g, u)) for u in models]


@pytest.mark.parametrize("manifest", [TUVA, ABAGDI], ids=["tuva", "abagdi"])
def test_like_shape_has_exactly_the_models_asked_for(manifest: Path) -> None:
    assert sp.plan(1234, shape=f"like:{manifest}").counts()["models"] == 1234


@pytest.mark.parametrize("manifest", [TUVA, ABAGDI], ids=["tuva", "abagdi"])
def test_each_full_copy_has_the_real_ancestor_counts(manifest: Path) -> None:
    real = _real_model_ancestors(manifest)
    project = sp.plan(2 * len(real) + 50, shape=f"like:{manifest}")
    for copy in ("c0_", "c1_"):
        copied = _copy_ancestors(project, copy)
        assert sorted(copied) == sorted(real)
        assert statistics.mean(copied) == statistics.mean(real)
    assert len(_copy_ancestors(project, "c2_")) == 50


def test_no_ref_dangles_and_refs_point_to_earlier_models_or_seeds() -> None:
    project = sp.plan(700, shape=f"like:{TUVA}")  # two copies and a truncated third
    seeds = set(project.seeds)
    position = {m.name: i for i, m in enumerate(project.models)}
    for m in project.models:
        assert m.parents
        for p in m.parents:
            assert p in seeds or position[p] < position[m.name], (m.name, p)
        for to in (m.relationship_to, *m.also_related_to):
            assert to is None or to in position
    assert len(set(position)) == len(project.models)
    assert not seeds & set(position)


def test_ephemerals_materializations_and_seeds_follow_the_real_project() -> None:
    nodes = orjson.loads(TUVA.read_bytes())["nodes"]
    real = Counter(
        n["config"]["materialized"]
        for n in nodes.values()
        if n["resource_type"] == "model" and n["config"].get("enabled", True)
    )
    project = sp.plan(sum(real.values()), shape=f"like:{TUVA}")  # exactly one copy
    copied = Counter(m.materialized for m in project.models)
    assert copied == {
        "table": real["table"] + real["incremental"],
        **{k: real[k] for k in ("view", "ephemeral")},
    }
    assert project.counts()["ephemeral"] == real["ephemeral"]
    assert len(project.seeds) == sum(n["resource_type"] == "seed" for n in nodes.values())


def test_two_parent_tests_become_relationships_tests() -> None:
    project = sp.plan(600, shape=f"like:{ABAGDI}")
    related = {
        (m.name, to) for m in project.models for to in (m.relationship_to, *m.also_related_to) if to
    }
    assert ("c0_stg_sf_campaign_member", "c0_sys_sf_campaign") in related
    assert ("c0_stg_sf_campaign_member", "c0_sys_sf_lead") in related


def test_like_shape_files_are_byte_identical_for_the_same_inputs() -> None:
    shape = f"like:{TUVA}"
    a = sp.render(sp.plan(500, seed=1, shape=shape), seed=1)
    b = sp.render(sp.plan(500, seed=1, shape=shape), seed=1)
    assert a == b
    assert sum(name.endswith(".sql") for name in a) == 500


# sha256 of plan(300, seed=3) rendered, before the like shape existed.
UNCHANGED = {
    "layered": "826b05864b6e9bb0ed0a5e49c86ba539f8e25b76edad9a95fea7c2f84c5bb6a8",
    "deep": "03bb55bbb91892f2c32ca565acd9b26b652927f6d7f5bf3cf1b895551b118b80",
}


@pytest.mark.parametrize("shape", sorted(UNCHANGED))
def test_the_invented_shapes_write_the_same_bytes_as_before(shape: str) -> None:
    files = sp.render(sp.plan(300, seed=3, shape=shape), seed=3)
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    assert digest.hexdigest() == UNCHANGED[shape]
