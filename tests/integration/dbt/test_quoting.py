"""dbt.vars reach dbt as data on every path: keys and values can neither run shell commands
nor add dbt arguments, whatever they hold or a run's params render to (issue #13, items 2-4).

The Bash path is run for real by bash with a stand-in dbt; the pod path's ``arguments`` are
rendered by Jinja as Airflow renders a templated field, then read as dbt would.
"""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml
from helpers import bash_commands
from tests_paths import SHOP

from dagfactory import generate, load_config

BREAKOUT_KEY = "k{% endfilter %}' ; touch {marker} ; echo '{% filter upper %}"
PRINT_ARGV = """#!/usr/bin/env python3
import json, sys
print(json.dumps(sys.argv[1:]))
"""


def _render(text: str, **context) -> str:
    return jinja2.Environment().from_string(text).render(**context)


def _received_vars(argv: list[str]) -> dict:
    return yaml.safe_load(argv[argv.index("--vars") + 1])  # dbt reads --vars as YAML


@pytest.fixture
def print_argv(tmp_path: Path) -> Path:
    path = tmp_path / "dbt"
    path.write_text(PRINT_ARGV)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _bash_argv(tmp_path: Path, executable: Path, vars: dict, **context) -> list[str]:
    overrides = {"routing.force": "celery", "dbt.executable": str(executable), "dbt.vars": vars}
    overrides["dbt.target_base"] = str(tmp_path / "t")
    command = next(
        iter(
            bash_commands(
                generate(SHOP / "manifest.json", load_config(None, overrides)).files
            ).values()
        )
    )
    env = {**os.environ, "AIRFLOW_CTX_DAG_ID": "d", "AIRFLOW_CTX_TASK_ID": "t"}
    done = subprocess.run(
        ["bash", "-c", _render(command, **context)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(BREAKOUT_KEY, id="filter-breakout"),
        pytest.param("{{ 7*7 }}", id="expression"),
        pytest.param("{# comment", id="comment"),
        pytest.param("it's", id="quote"),
    ],
)
def test_a_vars_key_reaches_dbt_as_itself_and_runs_nothing(tmp_path, print_argv, key):
    marker = tmp_path / "pwned"
    key = key.replace("{marker}", str(marker))
    argv = _bash_argv(tmp_path, print_argv, {key: "v", "day": "{{ ds }}"}, ds="2024-06-01")
    assert _received_vars(argv) == {key: "v", "day": "2024-06-01"}
    assert not marker.exists()


def _pod_arguments(vars: dict) -> list[str]:
    overrides = {
        "routing.force": "kubernetes",
        "routing.kubernetes.image": "dbt:1",
        "dbt.vars": vars,
    }
    file = generate(SHOP / "manifest.json", load_config(None, overrides)).files[0]
    for node in ast.walk(ast.parse(file.text)):
        if isinstance(node, ast.keyword) and node.arg == "arguments":
            return ast.literal_eval(node.value)
    raise AssertionError("no KubernetesPodOperator arguments in the file")


def test_a_pod_tasks_templated_var_cannot_add_dbt_vars():
    region = 'eu", "full_refresh": true, "x": "'
    arguments = [
        _render(a, params={"region": region})
        for a in _pod_arguments({"region": "{{ params.region }}"})
    ]
    assert _received_vars(arguments) == {"region": region}


@pytest.mark.parametrize("value", ["it's {# not a comment", "{ plain }", "a}}b"])
def test_a_pod_tasks_plain_var_renders_as_itself(value):
    arguments = [_render(a) for a in _pod_arguments({"note": value})]
    assert _received_vars(arguments) == {"note": value}
