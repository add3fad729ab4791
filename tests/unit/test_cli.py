"""The command line: summaries and exit codes (as a process: tests/integration/test_processes.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dagfactory.cli import cli


def _build(*args: str):
    return CliRunner().invoke(cli, ["build", *args])


def test_text_summary_lists_dags_tasks_and_cross_dag_edges(shop_manifest, tmp_path):
    result = _build(
        "--manifest", str(shop_manifest), "--out", str(tmp_path / "out"), "--runner", "celery"
    )
    assert result.exit_code == 0, result.output
    assert "shop_team__sales" in result.output or "__sales" in result.output
    assert (
        "DAGs," in result.output
        and "tasks," in result.output
        and "cross-DAG edges" in result.output
    )
    assert "(forced: celery)" in result.output


def test_json_summary_has_the_documented_shape(shop_manifest, tmp_path):
    result = _build(
        "--manifest",
        str(shop_manifest),
        "--out",
        str(tmp_path / "out"),
        "--runner",
        "celery",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    dag = summary["dags"][0]
    assert {"dag_id", "file", "group", "owner", "tasks", "upstream_dags"} <= set(dag)
    assert {"task_id", "unique_ids", "resource_type", "runner", "reason"} <= set(dag["tasks"][0])
    assert summary["dag_count"] == len(summary["dags"])
    assert summary["task_count"] == sum(len(d["tasks"]) for d in summary["dags"])


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--manifest", "missing.json"], 2, r"missing\.json: manifest not found"),
        (["--manifest", "{shop}", "--group-by", "owner"], 2, r"unknown grouping strategy 'owner'"),
        (["--manifest", "{shop}", "--team", "a/b"], 2, r"'a/b' is not a valid slug"),
        (
            ["--manifest", "{shop}", "--config", "nope.yml"],
            2,
            r"nope\.yml: cannot read config file",
        ),
    ],
    ids=["missing manifest", "unknown strategy", "bad team", "missing config"],
)
def test_errors_are_one_message_and_an_exit_code(shop_manifest, tmp_path, args, code, message):
    import re

    args = [a.replace("{shop}", str(shop_manifest)) for a in args]
    result = _build(*args, "--out", str(tmp_path / "out"))
    assert result.exit_code == code
    assert re.search(message, result.stderr)
    assert "Traceback" not in result.stderr


def test_an_old_manifest_exits_2_with_what_to_do(edited_manifest, tmp_path):
    path = edited_manifest(
        lambda raw: raw["metadata"].update(
            dbt_schema_version="https://schemas.getdbt.com/dbt/manifest/v3.json"
        )
    )
    result = _build("--manifest", str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "too old" in result.stderr and "Upgrade the project to dbt 1.x" in result.stderr
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path):
    result = CliRunner().invoke(
        cli, ["--debug", "build", "--manifest", "missing.json", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: ")


def _cycle(raw):
    a, b = "model.shop.stg_orders", "model.shop.fct_orders"
    raw["nodes"][a]["depends_on"]["nodes"].append(b)


def _bad_retries(raw):
    raw["nodes"]["model.shop.fct_orders"]["config"]["meta"]["dagfactory"] = {"retries": -1}
    raw["nodes"]["model.shop.fct_orders"]["meta"]["dagfactory"] = {"retries": -1}


@pytest.mark.parametrize(
    ("edit", "message"),
    [(_cycle, r"the dbt graph has a cycle"), (_bad_retries, r"meta\.dagfactory\.retries")],
    ids=["model cycle", "bad meta retries"],
)
def test_bad_input_in_the_manifest_exits_2(edited_manifest, tmp_path, edit, message):
    import re

    manifest = str(edited_manifest(edit))
    result = _build("--manifest", manifest, "--out", str(tmp_path / "out"), "--runner", "celery")
    assert result.exit_code == 2, result.output
    assert re.search(message, result.stderr)
