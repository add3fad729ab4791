"""Every generated task's dbt command selects exactly that task's nodes, per real dbt.

The task's own argv is replayed with ``ls`` in place of ``build``/``test`` through dbt's
programmatic runner (the same code as the ``dbt`` command), on a manifest parsed once.
"""

from __future__ import annotations

import json

import pytest
from tests_paths import SHOP

from dagfactory import generate, load_config

pytestmark = [pytest.mark.dbt]


@pytest.fixture(scope="module")
def dbt_runner(tmp_path_factory):
    pytest.importorskip("dbt.cli.main")
    from dbt.cli.main import dbtRunner

    target = tmp_path_factory.mktemp("dbt-target")
    flags = ["--project-dir", str(SHOP), "--profiles-dir", str(SHOP), "--target-path", str(target)]
    parsed = dbtRunner().invoke(["parse", *flags, "--quiet"])
    assert parsed.success, parsed.exception
    return dbtRunner(manifest=parsed.result), target


def _tasks():
    # Routing does not change what a task selects; force one runner to need no pod config.
    config = load_config(SHOP / "dagfactory.yml", {"routing.force": "celery"})
    result = generate(SHOP / "manifest.json", config)
    return [task for dag in result.dags for task in dag.tasks]


@pytest.mark.parametrize("task", _tasks(), ids=lambda t: t.task_id)
def test_dbt_ls_with_the_task_command_lists_exactly_its_nodes(
    task, dbt_runner, monkeypatch, tmp_path
):
    runner, target = dbt_runner
    monkeypatch.setenv("DBT_DUCKDB_PATH", str(tmp_path / "ls.duckdb"))
    _dbt, verb, *flags = task.argv
    assert verb in ("build", "test")
    listed = runner.invoke(
        [
            "ls",
            *flags,
            "--target-path",
            str(target),
            "--output",
            "json",
            "--output-keys",
            "unique_id",
            "--quiet",
        ]
    )
    assert listed.success, listed.exception
    unique_ids = sorted(json.loads(line)["unique_id"] for line in listed.result)
    assert unique_ids == sorted(task.unique_ids)
