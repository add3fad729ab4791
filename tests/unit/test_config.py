"""Configuration: YAML plus flags, validated once, with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfactory.config import Config, find_config_file, load_config
from dagfactory.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dagfactory.yml"
    path.write_text(text)
    return path


def test_defaults_need_no_file():
    config = load_config(None)
    assert config == Config()
    assert config.dag_defaults.schedule == "@daily"
    assert config.routing.default == "celery"


def test_a_full_file_is_read(tmp_path):
    config = load_config(
        _write(
            tmp_path,
            """
team: analytics
group_by: folder:2
dbt: {project_dir: /opt/dbt/shop, target: prod, vars: {run_date: "{{ ds }}"}}
dag_defaults: {schedule: "0 3 * * *", start_date: 2024-05-01, tags: [dbt, shop]}
routing: {celery: {queue: dbt}}
groups: {sales: {owner: sales-team}}
""",
        )
    )
    assert config.team == "analytics"
    assert config.group_by == "folder:2"
    assert config.dbt.vars == {"run_date": "{{ ds }}"}
    assert config.dag_defaults.start_date == "2024-05-01"  # a YAML date becomes ISO text
    assert config.dag_defaults.tags == ("dbt", "shop")
    assert config.routing.celery.queue == "dbt"
    assert config.groups["sales"].owner == "sales-team"
    assert config.base_dir == str(tmp_path.resolve())


def test_flags_override_the_file(tmp_path):
    path = _write(tmp_path, "team: analytics\ngroup_by: folder\n")
    config = load_config(path, {"team": "growth", "group_by": None, "routing.force": "celery"})
    assert config.team == "growth"
    assert config.group_by == "folder"  # an unset flag leaves the file's value
    assert config.routing.force == "celery"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("teem: x", r"key 'teem': unknown key; did you mean 'team'\?"),
        (
            "dbt: {profile_dir: x}",
            r"key 'dbt.profile_dir': unknown key; did you mean 'profiles_dir'\?",
        ),
        (
            "routing: {celery: {queu: x}}",
            r"key 'routing.celery.queu': unknown key; did you mean 'queue'\?",
        ),
        ("dag_defaults: {catchup: maybe}", r"key 'dag_defaults.catchup': expected true or false"),
        ("dag_defaults: {tags: {a: 1}}", r"key 'dag_defaults.tags': expected a list"),
        (
            "dag_defaults: {start_date: soon}",
            r"key 'dag_defaults.start_date': 'soon' is not an ISO date",
        ),
        ("dbt: [a, b]", r"key 'dbt': expected a mapping"),
        (
            "cross_dag: asset",
            r"key 'cross_dag': 'asset' is not one of assets, asset_or_time, sensors; did you mean 'assets'\?",
        ),
        ("team: a/b", r"key 'team': team 'a/b' is not a valid slug"),
        ("team: '..'", r"key 'team': team '\.\.' is not a valid slug"),
        ("- a list", r"must hold a mapping"),
        ("team: [unclosed", r"invalid YAML"),
    ],
)
def test_bad_config_names_the_file_and_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert info.value.exit_code == 2


def test_the_config_file_is_found_beside_dbt_project_yml(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "target").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: p\n")
    (project / "dagfactory.yml").write_text("team: t\n")
    monkeypatch.chdir(tmp_path)
    assert find_config_file(project / "target" / "manifest.json") == project / "dagfactory.yml"
    assert find_config_file(tmp_path / "elsewhere" / "manifest.json") is None
