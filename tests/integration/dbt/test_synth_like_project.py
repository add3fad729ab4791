"""Real dbt reads a ``like:`` project (copies of a real project's graph) as planned.

The per-task benchmark (``bench/dbt_task.py --shapes like:<manifest.json>``) trusts the
plan's counts; this pins them against what dbt-core itself lists.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from helpers import load_synth_project
from tests_paths import CORPUS

sp = load_synth_project()

TUVA = CORPUS / "tuva-health__tuva" / "manifest.json"

pytestmark = [
    pytest.mark.dbt,
    pytest.mark.slow,
    pytest.mark.skipif(not TUVA.exists(), reason="../shared/corpus is absent"),
]


def test_real_dbt_lists_the_planned_nodes_of_a_tuva_like_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("dbt.cli.main")
    from dbt.cli.main import dbtRunner

    project = tmp_path / "project"
    plan = sp.generate(400, project, shape=f"like:{TUVA}")  # one copy and a truncated one
    for key in [k for k in os.environ if k.startswith("DBT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("DBT_DUCKDB_PATH", str(tmp_path / "db.duckdb"))
    target = tmp_path / "target"
    keys = [x for key in ("resource_type", "config", "depends_on") for x in ("--output-keys", key)]
    dirs = ["--project-dir", str(project), "--profiles-dir", str(project)]
    listed_run = dbtRunner().invoke(
        ["ls", *dirs, "--target-path", str(target), "--output", "json", *keys, "--quiet"]
    )
    assert listed_run.success, listed_run.exception
    listed = [json.loads(line) for line in listed_run.result]
    kinds = Counter(n["resource_type"] for n in listed)
    counts = plan.counts()
    assert kinds["model"] == counts["models"] == 400
    assert kinds["seed"] == counts["seeds"]
    assert kinds["test"] == counts["tests"]
    models = [n for n in listed if n["resource_type"] == "model"]
    assert sum(n["config"]["materialized"] == "ephemeral" for n in models) == counts["ephemeral"]
    two_parent = [
        n for n in listed if n["resource_type"] == "test" and len(n["depends_on"]["nodes"]) == 2
    ]
    assert len(two_parent) == counts["relationships_tests"] > 0
    groups = json.loads((target / "manifest.json").read_bytes())["groups"]
    assert len(groups) == counts["groups"]
