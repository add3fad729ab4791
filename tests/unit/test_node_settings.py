"""``meta.dagfactory`` on a dbt node is read once, when the manifest is loaded.

Every mistake in it, whatever the key, is the same error: a ``ManifestError`` (exit 2) that
names the manifest, the node and the key; a misspelt key gets "did you mean". A node that
sets nothing carries no settings object at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from dagfactory.cli import cli
from dagfactory.errors import ManifestError
from dagfactory.manifest import load_manifest
from dagfactory.node_settings import NodeSettings, parse_node_settings

NODE = "model.shop.fct_orders"


def _parse(raw: Any) -> NodeSettings | None:
    return parse_node_settings(raw, path="manifest.json", unique_id=NODE)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param({}, NodeSettings(), id="empty"),
        pytest.param({"runner": "kubernetes"}, NodeSettings(runner="kubernetes"), id="runner"),
        pytest.param({"retries": None}, NodeSettings(), id="null is unset"),
        pytest.param(
            {"schedule": "0  3 * * *"}, NodeSettings(schedule="0 3 * * *"), id="schedule spaces"
        ),
        pytest.param(
            {"retries": 2, "pool": "dbt", "pool_slots": 3},
            NodeSettings(retries=2, pool="dbt", pool_slots=3),
            id="task settings",
        ),
        pytest.param(
            {"pod": {"env_vars": {"NOTE": "{{ x }}"}}},
            NodeSettings(pod={"env_vars": {"NOTE": "{{ '{' }}{{ '{' }} x }}"}}),
            id="pod text stays text",
        ),
    ],
)
def test_meta_becomes_a_typed_value(raw, expected):
    assert _parse(raw) == expected


BAD = [
    pytest.param({"runer": "celery"}, "runer", "unknown key; did you mean 'runner'", id="runer"),
    pytest.param({"retires": 3}, "retires", "did you mean 'retries'", id="retires"),
    pytest.param({"runner": "k8s"}, "runner", "unknown runner 'k8s'", id="runner value"),
    pytest.param({"retries": -1}, "retries", "expected a non-negative integer", id="retries"),
    pytest.param({"pool": ""}, "pool", "expected a non-empty string", id="pool"),
    pytest.param({"size": 3}, "size", "expected a size name", id="size"),
    pytest.param({"schedule": 5}, "schedule", "expected a string", id="schedule type"),
    pytest.param({"schedule": "daily"}, "schedule", "is not a cron schedule", id="schedule value"),
    pytest.param({"pod": ["x"]}, "pod", "expected a mapping", id="pod type"),
    pytest.param({"pod": {"namespace": "DBT"}}, "pod.namespace", "namespace", id="pod key"),
    pytest.param("kubernetes", "", "expected a mapping", id="not a mapping"),
]


@pytest.mark.parametrize(("raw", "key", "message"), BAD)
def test_every_mistake_is_one_error_naming_file_node_and_key(raw, key, message):
    with pytest.raises(ManifestError, match=message) as info:
        _parse(raw)
    error = info.value
    assert (error.path, error.unique_id) == ("manifest.json", NODE)
    assert error.key == ("meta.dagfactory." + key if key else "meta.dagfactory")
    assert error.exit_code == 2


@pytest.mark.parametrize(("raw", "key", "message"), BAD)
def test_the_command_line_exits_2_and_names_the_key(edited_manifest, tmp_path, raw, key, message):
    def edit(manifest: dict[str, Any]) -> None:
        manifest["nodes"][NODE]["config"]["meta"] = {"dagfactory": raw}
        manifest["nodes"][NODE]["meta"] = {"dagfactory": raw}

    path = edited_manifest(edit)
    result = CliRunner().invoke(
        cli, ["build", "--manifest", str(path), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2, result.output
    assert f"node {NODE}" in result.output
    assert f"key 'meta.dagfactory{'.' + key if key else ''}'" in result.output


def test_nodes_without_meta_carry_no_settings(shop_manifest):
    nodes = load_manifest(shop_manifest).nodes
    assert nodes[NODE].settings is None
    assert nodes["model.shop.fct_revenue"].settings == NodeSettings(runner="kubernetes")
