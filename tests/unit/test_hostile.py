"""User text stays data: hostile names, descriptions, owners and meta never become code.

Fixtures: the real dbt project ``sample_manifests/hostile`` (quotes, triple quotes,
backslashes, newlines, literal ``{{ }}``, Python payloads in every text field), then
hypothesis putting arbitrary text into the real sample manifest.
"""

from __future__ import annotations

import ast
import copy
import re
import shlex
from pathlib import Path

import jinja2
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests_paths import HOSTILE, SHOP

from dagfactory import generate, load_config

#: Everything a generated file may call: Airflow constructors, stdlib date types, k8s models.
ALLOWED_CALLS = {
    "DAG",
    "BashOperator",
    "KubernetesPodOperator",
    "ExternalTaskSensor",
    "Asset",
    "AssetOrTimeSchedule",
    "CronTriggerTimetable",
    "datetime.datetime",
    "datetime.timedelta",
    "build_dag",
    "_AssetList",
}


#: k8s model constructors, and the dependencies the template sets between its own task names
TEMPLATE_CALL = re.compile(r"^(k8s\.V1[A-Za-z]+|[ts]\d+\.set_upstream)$")
TEMPLATE_ATTRIBUTE = re.compile(r"^(datetime\.[a-z.]+|k8s\.V1[A-Za-z]+|[ts]\d+\.set_upstream)$")


def _call_name(node: ast.Call) -> str:
    return ast.unparse(node.func)


#: The one class a generated file may define, exactly as the template writes it.
ASSET_LIST_CLASS = ast.unparse(
    ast.parse(
        """
class _AssetList(tuple):
    \"\"\"The schedule's assets, hashed once: Airflow hashes the DAG on every dependency call.\"\"\"

    _hash = None

    def __hash__(self):
        if self._hash is None:
            self._hash = tuple.__hash__(self)
        return self._hash
"""
    )
)


def assert_safe_source(text: str) -> ast.Module:
    """Compiles, and calls nothing but the expected constructors."""
    tree = ast.parse(text)
    compile(tree, "<generated>", "exec")
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    assert [ast.unparse(node) for node in classes] in ([], [ASSET_LIST_CLASS])
    body = ast.Module([node for node in tree.body if node not in classes], type_ignores=[])
    for node in ast.walk(body):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            assert name in ALLOWED_CALLS or TEMPLATE_CALL.match(name), name
        assert not isinstance(node, (ast.Lambda, ast.JoinedStr, ast.Subscript)), ast.unparse(node)
        if isinstance(node, ast.Attribute):  # module attributes and the template's task names
            assert TEMPLATE_ATTRIBUTE.match(ast.unparse(node)), ast.unparse(node)
    return tree


def _value(node: ast.expr, constants: dict[str, object]) -> object:
    """A literal, or strings joined with ``+`` from the file's module constants."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _value(node.left, constants) + _value(node.right, constants)  # type: ignore[operator]
    if isinstance(node, ast.Name):
        return constants[node.id]
    return ast.literal_eval(node)


def _keyword_values(tree: ast.Module, keyword: str) -> list[object]:
    constants = {
        target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    return [
        _value(kw.value, constants)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == keyword
        and isinstance(kw.value, (ast.Constant, ast.Dict, ast.List, ast.BinOp, ast.Name))
    ]


def _celery(**overrides):
    return load_config(None, {"routing.force": "celery", **overrides})


def test_the_hostile_project_builds_into_safe_files():
    result = generate(HOSTILE / "manifest.json", _celery())
    raw = orjson.loads((HOSTILE / "manifest.json").read_bytes())
    descriptions = {n["description"] for n in raw["nodes"].values() if n["description"]}
    owners = {g["owner"]["name"] for g in raw["groups"].values()}
    docs, dag_owners = set(), set()
    for file in result.files:
        tree = assert_safe_source(file.text)
        docs |= set(_keyword_values(tree, "doc_md"))
        dag_owners |= {args["owner"] for args in _keyword_values(tree, "default_args")}
    assert descriptions <= docs  # every description arrives exactly, as data
    assert owners == dag_owners


def test_user_text_in_templated_fields_renders_as_itself():
    """Airflow renders bash_command with Jinja: a `{{` in a path must not be evaluated."""
    config = _celery(**{"dbt.project_dir": "/opt/{{ 7 * 7 }}/{% if x %}p{% endif %}"})
    result = generate(SHOP / "manifest.json", config)
    commands = []
    for file in result.files:
        commands += _keyword_values(assert_safe_source(file.text), "bash_command")
    assert len(commands) == sum(len(dag.tasks) for dag in result.dags)
    for command in commands:
        rendered = jinja2.Environment().from_string(command).render()
        assert "/opt/{{ 7 * 7 }}/{% if x %}p{% endif %}" in shlex.split(rendered)


hostile_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), min_size=0, max_size=60
) | st.sampled_from(
    ['"""', "'''", "\\", "\n", "{{ ds }}", "{% raw %}", "__import__('os')", "\\'", "\x00"]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(description=hostile_text, owner=hostile_text, meta_value=hostile_text, tag=hostile_text)
def test_any_text_in_descriptions_owners_and_meta_stays_a_literal(
    shop_lean, tmp_path_factory, description, owner, meta_value, tag
):
    raw = copy.deepcopy(shop_lean)
    node = raw["nodes"]["model.shop.fct_orders"]
    node["description"] = description
    pool = meta_value if meta_value.strip() else "p"  # a blank pool is a config error
    node["meta"] = {"anything": meta_value, "dagfactory": {"pool": pool}}
    node["tags"] = [tag]
    raw["groups"]["group.shop.sales"]["owner"]["name"] = owner or "x"
    path = Path(tmp_path_factory.mktemp("hostile")) / "manifest.json"
    path.write_bytes(orjson.dumps(raw))
    result = generate(path, _celery(**{"group_by": "group"}))
    sales = next(f for f in result.files if f.dag_id.endswith("__sales"))
    tree = assert_safe_source(sales.text)
    if description:
        assert description in _keyword_values(tree, "doc_md")
    assert (owner or "x") in {args["owner"] for args in _keyword_values(tree, "default_args")}
    assert pool in _keyword_values(tree, "pool")


@pytest.mark.parametrize(("name", "task_id"), [("odd name", "odd_name"), ("tab\tname", "tab_name")])
def test_node_names_with_whitespace_are_selected_by_file(edited_manifest, name, task_id):
    def rename(raw):
        node = raw["nodes"]["model.shop.mkt_channel_spend"]
        node["name"] = name
        node["fqn"][-1] = name
        node["original_file_path"] = f"models/marts/marketing/{name}.sql"

    result = generate(edited_manifest(rename), _celery())
    task = next(
        t for d in result.dags for t in d.tasks if t.unique_ids[0] == "model.shop.mkt_channel_spend"
    )
    assert (
        task.selector
        == "path:models/marts/marketing/" + name.replace(" ", "?").replace("\t", "?") + ".sql"
    )
    assert task.task_id == task_id
