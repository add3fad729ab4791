"""sample_manifests/synth_project.py writes a real, deterministic dbt project.

The per-task dbt benchmark and the concurrency test run real dbt on these projects, so
the generator's promises are pinned here: same arguments, same bytes; and real dbt-core
parses a generated project into exactly the models, ephemerals, tests and groups the
plan says.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from helpers import dbt_executable, load_synth_project

sp = load_synth_project()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_arguments_give_byte_identical_projects(tmp_path: Path) -> None:
    sp.generate(300, tmp_path / "a", seed=3)
    sp.generate(300, tmp_path / "b", seed=3)
    sp.generate(300, tmp_path / "c", seed=4)
    a, b, c = (_tree(tmp_path / x) for x in "abc")
    assert a == b
    assert a != c
    assert sum(name.endswith(".sql") for name in a) == 300


def test_plan_shape_layers_ephemerals_tests_and_one_env_var_model() -> None:
    proj = sp.plan(1000)
    layers = Counter(m.layer for m in proj.models)
    assert layers == {"staging": 150, "intermediate": 450, "marts": 400}
    counts = proj.counts()
    assert counts["ephemeral"] == 30
    assert 20 <= counts["relationships_tests"] <= 80
    assert sum(m.reads_run_date for m in proj.models) == 1
    names = {m.name for m in proj.models}
    order = {m.name: i for i, m in enumerate(proj.models)}
    for m in proj.models:
        assert 1 <= len(m.parents) <= 4
        if m.layer != "staging":  # refs go to earlier models only: acyclic
            assert all(p in names and order[p] < order[m.name] for p in m.parents)


def test_writing_over_an_existing_project_needs_force(tmp_path: Path) -> None:
    sp.generate(100, tmp_path)
    with pytest.raises(FileExistsError):
        sp.generate(50, tmp_path)
    sp.generate(50, tmp_path, force=True)
    assert sum(1 for _ in (tmp_path / "models").rglob("*.sql")) == 50


@pytest.mark.dbt
@pytest.mark.slow
def test_real_dbt_parses_the_planned_nodes(tmp_path: Path) -> None:
    project = tmp_path / "project"
    plan = sp.generate(60, project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env.update(DBT_DUCKDB_PATH=str(tmp_path / "db.duckdb"), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    dirs = ["--project-dir", str(project), "--profiles-dir", str(project)]
    target = tmp_path / "target"
    done = subprocess.run(
        [
            dbt_executable(),
            "parse",
            *dirs,
            "--target-path",
            str(target),
            "--log-path",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = json.loads((target / "manifest.json").read_text())
    nodes = manifest["nodes"].values()
    models = [n for n in nodes if n["resource_type"] == "model"]
    tests = [n for n in nodes if n["resource_type"] == "test"]
    counts = plan.counts()
    assert len(models) == counts["models"] == 60
    assert sum(n["config"]["materialized"] == "ephemeral" for n in models) == counts["ephemeral"]
    assert len(tests) == counts["tests"]
    relationships = [t for t in tests if t["test_metadata"]["name"] == "relationships"]
    assert len(relationships) == counts["relationships_tests"]
    assert all(len(t["depends_on"]["nodes"]) == 2 for t in relationships)
    assert sum(n["resource_type"] == "seed" for n in nodes) == counts["seeds"]
    assert len(manifest["groups"]) == counts["groups"]
    assert all(g["owner"]["email"] for g in manifest["groups"].values())
    group_of = {m.name: m.group for m in plan.models}
    assert {m["name"]: m["group"] for m in models} == group_of
    assert all(m["access"] == "protected" for m in models)
    assert sum("DAGFACTORY_RUN_DATE" in m["raw_code"] for m in models) == 1
