"""Each decision has one home: read from the source, so a shortcut across stages fails here.

- only ``plan.py`` reads the config fields that become operator or DAG keywords (queue,
  executors, pod-operator settings, task defaults, dbt vars and env);
- ``render.py`` does not import the config at all: it lays out a plan;
- only ``graph.py`` imports networkx; the other stages ask ``DbtGraph`` for parents,
  children and orders;
- ``meta.dagfactory`` is read in one place (``manifest`` -> ``node_settings``).

Whether importing the CLI loads the pipeline is checked in a fresh interpreter
(tests/integration/test_cli_imports.py).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
from tests_paths import REPO

PACKAGE = REPO / "dagfactory"
#: the stages a DAG file passes through, and the helpers they share
STAGES = (
    "manifest",
    "node_settings",
    "graph",
    "grouping",
    "routing",
    "specs",
    "plan",
    "render",
    "pipeline",
    "_k8s",
    "_airflow_api",
    "_pysrc",
)
#: config fields that become keywords of an operator call or of ``DAG(...)``
OPERATOR_FIELDS = frozenset(
    {
        "task_defaults",
        "queue",
        "executor",
        "executors",
        "kubernetes_conn_id",
        "on_finish_action",
        "get_logs",
        "log_events_on_failure",
        "startup_timeout_seconds",
        "deferrable",
        "max_active_runs",
        "catchup",
        "start_date",
    }
)
#: ``<something>.dbt.<field>`` fields that reach operator keywords
DBT_FIELDS = frozenset({"vars", "env"})


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))


def _imports(module: str) -> set[str]:
    names = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _operator_fields_read(module: str) -> set[str]:
    found = set()
    for node in ast.walk(_tree(module)):
        if not isinstance(node, ast.Attribute):
            continue
        if node.attr in OPERATOR_FIELDS:
            found.add(node.attr)
        elif (
            node.attr in DBT_FIELDS
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "dbt"
        ):
            found.add(f"dbt.{node.attr}")
    return found


@pytest.mark.parametrize("module", [m for m in STAGES if m != "plan"])
def test_no_stage_but_the_plan_reads_the_config_that_shapes_operator_calls(module):
    assert _operator_fields_read(module) == set()


def test_the_plan_is_where_those_fields_are_read():
    assert {"task_defaults", "queue", "executor", "dbt.vars", "dbt.env"} <= (
        _operator_fields_read("plan")
    )


def test_render_does_not_import_the_config():
    assert not {name for name in _imports("render") if name.startswith("dagfactory.config")}


def _all_modules() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py"))


@pytest.mark.parametrize("module", _all_modules())
def test_only_the_graph_module_imports_networkx(module):
    uses = {name for name in _imports(module) if name.split(".")[0] == "networkx"}
    assert uses == (set() if module != "graph" else {"networkx"})


@pytest.mark.parametrize("module", _all_modules())
def test_meta_dagfactory_is_read_only_where_the_manifest_is_loaded(module):
    text = (PACKAGE / f"{module}.py").read_text(encoding="utf-8")
    reads = '.get("dagfactory")' in text or '["dagfactory"]' in text
    assert reads == (module == "manifest")


def test_the_modules_named_here_exist():
    assert {f"{m}.py" for m in STAGES} <= {p.name for p in Path(PACKAGE).glob("*.py")}
