"""Property: whatever a manifest or config holds, a build writes only data, or says no on one line.

Hypothesis starts from a few real nodes of the shop sample and puts hostile strings (quotes,
Jinja openers, NUL, newlines, shell metacharacters, unicode, very long text) into every field a
user controls, and malformed values into the structural ones; then runs ``dagfactory build``
in-process. The build must exit 0 or 2; a refusal is one line with no traceback; every file
written must compile, import only what the golden files import, and call only the
constructors the golden files call (tests/golden: derived from real outputs, not from the
generator's code).
"""

from __future__ import annotations

import ast
import copy
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import run_cli
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
KEEP = (
    "seed.shop.raw_orders",
    "model.shop.stg_orders",
    "model.shop.int_customer_orders",
    "model.shop.fct_orders",
    "test.shop.unique_int_customer_orders_customer_id.72a7c96028",
)
_TASK_VAR = re.compile(r"^[ts]\d+\.")  # t0.set_upstream(...) in the golden files


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return f"{_call_name(func.value)}.{func.attr}"
    return f"<{type(func).__name__}>"


def _shape(tree: ast.AST) -> tuple[set[str], set[str]]:
    """The constructor names a file calls (task variables folded) and the modules it imports."""
    calls = {
        _TASK_VAR.sub("<task>.", _call_name(n.func))
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
    }
    imports = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imports |= {
        alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names
    }
    return calls, imports


def _golden_shape() -> tuple[set[str], set[str]]:
    calls: set[str] = set()
    imports: set[str] = set()
    for path in sorted(GOLDEN.rglob("*.py")):
        file_calls, file_imports = _shape(ast.parse(path.read_text(encoding="utf-8")))
        calls |= file_calls
        imports |= file_imports
    return calls, imports


ALLOWED_CALLS, ALLOWED_IMPORTS = _golden_shape()

FRAGMENTS = [
    "'", '"', "'''", '"""', "\\", "{{ 7*7 }}", "{% if x %}", "{% endfilter %}", "{#", "#}",
    "\x00", "\n", "\r\n", "\t", "\x1b]0;pwned\x07", "$(touch /tmp/x)", "`id`", "; rm -rf /",
    "&& echo", "|", ">", "*", "..", "/", "é", "漢字", "\u202e", "\U0001f600", "__import__('os')",
    ")", "]", "}", "#", "%s", "{0}", "${HOME}", "-", ".", " ",
]  # fmt: skip
hostile = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), min_size=1, max_size=5
).map("".join)
very_long = st.sampled_from(["x" * 5000, "{{" * 2000, '"""' * 1000, "\n" * 3000])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile, inner, max_size=3),
    max_leaves=6,
)
TEXT_FIELDS = ("name", "description", "path", "original_file_path", "group", "alias")
STRUCTURAL_FIELDS = (
    "fqn",
    "tags",
    "depends_on",
    "config",
    "meta",
    "name",
    "version",
    "unique_id",
    "package_name",
)


@st.composite
def manifests(draw, base: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(base)
    nodes = raw["nodes"]
    for unique_id in draw(st.lists(st.sampled_from(KEEP), max_size=4)):
        node = nodes[unique_id]
        node[draw(st.sampled_from(TEXT_FIELDS))] = draw(hostile)
        node["description"] = draw(hostile | very_long)
        node["tags"] = draw(st.lists(hostile, max_size=2))
        node["meta"] = {draw(hostile): draw(json_values | very_long), "owner": draw(hostile)}
        if draw(st.booleans()):
            node["fqn"] = [node["package_name"], *draw(st.lists(hostile, min_size=1, max_size=2))]
    if draw(st.booleans()):  # one malformed structural field somewhere
        node = nodes[draw(st.sampled_from(KEEP))]
        node[draw(st.sampled_from(STRUCTURAL_FIELDS))] = draw(json_values)
    group = draw(hostile)
    raw["groups"] = {f"group.shop.{group}": {"name": group, "owner": {"name": draw(hostile)}}}
    if draw(st.booleans()):
        nodes["model.shop.fct_orders"]["group"] = group
    return raw


@st.composite
def configs(draw) -> dict[str, Any]:
    config: dict[str, Any] = {"routing": {"force": draw(st.sampled_from(["celery", "kubernetes"]))}}
    config["routing"]["kubernetes"] = {"image": "ghcr.io/x/dbt:1", "namespace": "dbt"}
    if draw(st.integers(0, 7)) == 0:  # mostly a valid team: a hostile one is refused early
        config["team"] = draw(hostile)
    config["dag_defaults"] = {"owner": draw(hostile), "tags": draw(st.lists(hostile, max_size=2))}
    config["dbt"] = {"vars": draw(st.dictionaries(hostile, hostile, max_size=2))}
    if draw(st.booleans()):
        config["group_by"] = draw(st.sampled_from(["folder", "tag:team_", "meta:owner", "group"]))
    return config


def _build(manifest: Path, config: Path, out: Path, capsys) -> tuple[int, str]:
    argv = ["build", "--manifest", str(manifest), "--config", str(config), "--out", str(out)]
    return run_cli(argv, capsys)


@pytest.fixture(scope="module")
def base(shop_raw) -> dict[str, Any]:
    """Five real nodes of the shop sample, their sources and seeds: a small, valid manifest."""
    raw = copy.deepcopy(shop_raw)
    raw["nodes"] = {uid: node for uid, node in raw["nodes"].items() if uid in KEEP}
    raw["unit_tests"] = {}
    for node in raw["nodes"].values():  # parents left out are dropped: the rest is dbt's
        depends_on = node.get("depends_on", {})
        if "nodes" in depends_on:
            depends_on["nodes"] = [uid for uid in depends_on["nodes"] if uid in KEEP]
    return raw


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_build_of_hostile_input_writes_only_data_or_refuses_on_one_line(base, capsys, data):
    raw = data.draw(manifests(base))
    config = data.draw(configs())
    with tempfile.TemporaryDirectory(prefix="dagfactory-property-") as folder:
        manifest, config_path, out = (
            Path(folder, "m.json"),
            Path(folder, "c.yml"),
            Path(folder, "o"),
        )
        manifest.write_text(json.dumps(raw), encoding="utf-8")
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        code, err = _build(manifest, config_path, out, capsys)
        assert code in (0, 2), err
        assert "Traceback" not in err
        event(f"exit {code}")
        if code:
            assert err.count("\n") == 1 and err.startswith("error: "), err
            return
        for path in sorted(out.glob("*.py")):
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(compile(text, str(path), "exec", ast.PyCF_ONLY_AST))
            calls, imports = _shape(tree)
            assert calls <= ALLOWED_CALLS, (path.name, calls - ALLOWED_CALLS)
            assert imports <= ALLOWED_IMPORTS, (path.name, imports - ALLOWED_IMPORTS)
