"""The dbt command line of a generated task: cheap flags, its own target folder, shared parse state.

The shell text is run for real by bash with a stand-in ``dbt`` that records what it got, so
these tests hold what a worker would do, not what the text looks like.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from helpers import bash_commands
from tests_paths import SHOP

from dagfactory import generate, load_config
from dagfactory.manifest import load_manifest
from dagfactory.specs import dbt_argv_prefix, dbt_version_tuple

FAKE_DBT = """#!/usr/bin/env python3
import json, os, sys
target = sys.argv[sys.argv.index("--target-path") + 1] if "--target-path" in sys.argv else None
if target:
    open(os.path.join(target, "run_results.json"), "w").write("{}")
print(json.dumps({"argv": sys.argv[1:], "target": target,
                  "state": os.environ.get("DBT_PARTIAL_PARSE_FILE_PATH")}))
sys.exit(int(os.environ.get("FAKE_DBT_EXIT", "0")))
"""


@pytest.fixture
def fake_dbt(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "dbt"
    path.parent.mkdir()
    path.write_text(FAKE_DBT)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _commands(config) -> dict[str, str]:
    return bash_commands(generate(SHOP / "manifest.json", config).files)


def _run(command: str, *, exit_code: int = 0, task: str = "fct_orders") -> tuple[int, dict]:
    env = {**os.environ, "AIRFLOW_CTX_DAG_ID": "shop__sales", "AIRFLOW_CTX_TASK_ID": task}
    env["FAKE_DBT_EXIT"] = str(exit_code)
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env)
    return done.returncode, json.loads(done.stdout.splitlines()[-1]) if done.stdout else {}


def _config(fake_dbt: Path, tmp_path: Path, **dbt) -> object:
    settings = {"executable": str(fake_dbt), "target_base": str(tmp_path / "targets"), **dbt}
    return load_config(
        None, {"routing.force": "celery", **{f"dbt.{k}": v for k, v in settings.items()}}
    )


def test_each_task_try_gets_a_fresh_target_folder_that_is_removed_at_exit(fake_dbt, tmp_path):
    command = _commands(_config(fake_dbt, tmp_path))["fct_orders"]
    first, second = _run(command)[1], _run(command)[1]
    assert first["target"] != second["target"]
    assert Path(first["target"]).parent == tmp_path / "targets"
    assert Path(first["target"]).name.startswith("shop__sales.fct_orders.")
    assert ["--log-path", first["target"]] == first["argv"][-2:]
    assert list((tmp_path / "targets").iterdir()) == []


def test_keep_target_leaves_the_folder_and_its_run_results(fake_dbt, tmp_path):
    command = _commands(_config(fake_dbt, tmp_path, keep_target=True, write_json=True))[
        "fct_orders"
    ]
    _, seen = _run(command)
    assert (Path(seen["target"]) / "run_results.json").is_file()
    assert "--no-write-json" not in seen["argv"]


@pytest.mark.parametrize("exit_code", [0, 1, 2])
def test_the_task_ends_with_dbts_exit_code(fake_dbt, tmp_path, exit_code):
    command = _commands(_config(fake_dbt, tmp_path))["fct_orders"]
    assert _run(command, exit_code=exit_code)[0] == exit_code
    assert list((tmp_path / "targets").iterdir()) == []


def test_the_shared_parse_state_is_passed_only_where_it_exists(fake_dbt, tmp_path):
    state = tmp_path / "image" / "target" / "partial_parse.msgpack"
    command = _commands(_config(fake_dbt, tmp_path, parse_state=str(state)))["fct_orders"]
    assert _run(command)[1]["state"] is None  # dbt would refuse a missing file
    state.parent.mkdir(parents=True)
    state.write_bytes(b"state")
    assert _run(command)[1]["state"] == str(state)
    assert state.read_bytes() == b"state"


def test_the_default_parse_state_is_the_projects_own_target(tmp_path):
    config = load_config(None, {"routing.force": "celery"})
    command = next(iter(_commands(config).values()))
    assert (
        "DBT_PARTIAL_PARSE_FILE_PATH=/opt/airflow/dbt/shop/target/partial_parse.msgpack" in command
    )


def test_an_empty_target_base_keeps_dbts_own_target_and_parse_state(fake_dbt, tmp_path):
    config = _config(fake_dbt, tmp_path, target_base="")
    command = _commands(config)["fct_orders"]
    _, seen = _run(command)
    assert seen["target"] is None and seen["state"] is None
    assert not command.startswith("T=")


@pytest.mark.parametrize(
    ("dbt_version", "fast", "no_json"),
    [
        pytest.param("1.11.16", True, True, id="1.11"),
        pytest.param("1.10.0", True, True, id="1.10"),
        pytest.param("1.9.4", False, True, id="1.9"),
        pytest.param("1.4.6", False, False, id="1.4"),
        pytest.param("2024.9.238", True, True, id="dbt-cloud-release-track"),
        pytest.param("", False, False, id="unknown"),
    ],
)
def test_flags_are_passed_only_to_a_dbt_that_knows_them(
    shop_raw, tmp_path, dbt_version, fast, no_json
):
    raw = {**shop_raw, "metadata": {**shop_raw["metadata"], "dbt_version": dbt_version}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(raw))
    _, flags = dbt_argv_prefix(load_manifest(path), load_config(None))
    assert ("--use-fast-test-edges" in flags) is fast
    assert ("--no-write-json" in flags) is no_json


@pytest.mark.parametrize(
    ("key", "value", "flag"),
    [("fast_test_edges", False, "--use-fast-test-edges"), ("write_json", True, "--no-write-json")],
)
def test_each_flag_can_be_switched_off_in_config(shop_manifest, key, value, flag):
    _, flags = dbt_argv_prefix(
        load_manifest(shop_manifest), load_config(None, {f"dbt.{key}": value})
    )
    assert flag not in flags


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.11.16", (1, 11)), ("1.10.0b1", (1, 10)), ("2024.9.238", (99, 0)), ("", None), ("x", None)],
)
def test_dbt_versions_read_from_the_manifest(text, expected):
    assert dbt_version_tuple(text) == expected


def test_the_shared_constants_join_into_the_tasks_whole_command_line(fake_dbt, tmp_path):
    from dagfactory.plan import bash_command

    config = _config(fake_dbt, tmp_path, vars={"run_date": "{{ ds }}"})
    result = generate(SHOP / "manifest.json", config)
    commands = _commands(config)
    for dag in result.dags:
        for task in dag.tasks:
            assert commands[task.task_id] == bash_command(task.argv, config.dbt, dag.dbt_run)


def _fake(path: Path, name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho {name} "$@"\n')
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("with_slices", [True, False], ids=["slices", "no-slices"])
def test_the_generated_command_starts_run_py_only_where_the_slices_are(tmp_path, with_slices):
    dbt = _fake(tmp_path / "bin" / "dbt", "DBT")
    slices = tmp_path / "slices"
    if with_slices:
        _fake(slices / "run.py", "RUNPY")
    config = load_config(
        None,
        {
            "routing.force": "celery",
            "dbt.executable": str(dbt),
            "dbt.slices": str(slices),
            "dbt.target_base": str(tmp_path / "targets"),
        },
    )
    command = bash_commands(generate(SHOP / "manifest.json", config).files)["fct_orders"]
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_CTX_DAG_ID": "d", "AIRFLOW_CTX_TASK_ID": "t"}
    done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    expected = ["RUNPY", "--server=600", str(dbt)] if with_slices else ["DBT"]
    assert words[: len(expected)] == expected
    assert words[len(expected) : len(expected) + 3] == [
        "build",
        "--select",
        "fqn:shop.marts.sales.fct_orders",
    ]
