"""The build estimates what its files cost and warns, naming the DAG or key, before they ship."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner
from tests_paths import SHOP

from dagfactory import generate, load_config
from dagfactory.cli import cli
from dagfactory.costs import estimate_parse_seconds

MANIFEST = SHOP / "manifest.json"


def _celery(**overrides):
    return load_config(None, {"routing.force": "celery", **overrides})


def _costs(config) -> dict[str, float]:
    result = generate(MANIFEST, config)
    return {dag.dag_id: estimate_parse_seconds(dag, config.airflow_version) for dag in result.dags}


def test_the_sample_builds_without_warnings_at_the_default_budget():
    assert generate(MANIFEST, load_config(SHOP / "dagfactory.yml")).warnings == ()


def test_a_file_over_the_parse_budget_is_named_in_a_warning():
    costs = _costs(_celery())
    dearest = max(costs, key=costs.get)
    budget = (costs[dearest] + sorted(costs.values())[-2]) / 2  # only the dearest is over
    result = generate(MANIFEST, _celery(parse_budget_seconds=budget))
    assert [(w.dag_id, w.key) for w in result.warnings] == [(dearest, "parse_budget_seconds")]
    assert "split" in result.warnings[0].message


def test_a_zero_budget_turns_the_parse_warning_off():
    assert generate(MANIFEST, _celery(parse_budget_seconds=0)).warnings == ()


def test_the_cli_prints_warnings_on_stderr_and_still_succeeds(tmp_path):
    config = _config(tmp_path, "parse_budget_seconds: 0.0001\n")
    argv = ["build", "--manifest", str(MANIFEST), "--out", str(tmp_path / "dags")]
    result = CliRunner().invoke(cli, [*argv, "--runner", "celery", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "warning: DAG shop__finance, parse_budget_seconds:" in result.stderr
    assert "warning:" not in result.stdout


def _config(tmp_path, text: str):
    path = tmp_path / "dagfactory.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("value", "warns"),
    [
        pytest.param("{{ ds }}", True, id="expression"),
        pytest.param("{% if true %}x{% endif %}", True, id="statement"),
        pytest.param(["a", {"b": "{{ params.region }}"}], True, id="nested"),
        pytest.param("2024-01-01", False, id="plain"),
        pytest.param("{ not a template }", False, id="braces"),
    ],
)
def test_a_templated_dbt_var_is_named_in_a_warning(value, warns):
    config = _celery(**{"dbt.vars": {"run_date": value}})
    warnings = generate(MANIFEST, config).warnings
    assert [w.key for w in warnings] == (["dbt.vars.run_date"] if warns else [])
    if warns:
        assert "parses the whole project" in warnings[0].message


def test_asset_schedules_do_not_multiply_the_parse_estimate_but_asset_or_time_does():
    dag = max(generate(MANIFEST, _celery()).dags, key=lambda d: len(d.schedule_assets))
    more = dataclasses.replace(dag, schedule_assets=dag.schedule_assets * 100)
    assert estimate_parse_seconds(more) == estimate_parse_seconds(dag)
    timed = dataclasses.replace(dag, cross_dag="asset_or_time", schedule="@daily")
    timed_more = dataclasses.replace(timed, schedule_assets=more.schedule_assets)
    assert estimate_parse_seconds(timed_more) > estimate_parse_seconds(timed)
    assert estimate_parse_seconds(timed_more, "2") == estimate_parse_seconds(more, "2")
