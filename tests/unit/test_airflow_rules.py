"""Build-time validation: a value Airflow would reject fails `dagfactory build` with exit 2.

Each row is a value that used to build (exit 0) and then failed in Airflow, at import or when
the task ran; now the build refuses it and the one error line names the key or the node.
The limits themselves are compared with Airflow's in tests/integration/airflow/test_check.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from dagfactory import airflow_rules
from dagfactory.cli import cli
from dagfactory.specs import sanitize_id

LONG_TAG = "t" * 101

#: (config, what the one error line must say) for values in dagfactory.yml
CONFIG_ROWS = [
    pytest.param(
        {"dag_defaults": {"schedule": "99 99 99 99 99"}},
        r"key 'dag_defaults\.schedule': '99 99 99 99 99' is not a valid cron",
        id="cron-99",
    ),
    pytest.param(
        {"dag_defaults": {"schedule": "0 24 * * *"}},
        r"key 'dag_defaults\.schedule': .*out of range",
        id="cron-hour-24",
    ),
    pytest.param(
        {"dag_defaults": {"schedule": "60 * * * *"}},
        r"key 'dag_defaults\.schedule': .*out of range",
        id="cron-minute-60",
    ),
    pytest.param(
        {"dag_defaults": {"schedule": "0 0 0 * *"}},
        r"key 'dag_defaults\.schedule': .*out of range",
        id="cron-day-0",
    ),
    pytest.param(
        {"dag_defaults": {"schedule": "0 0 * 13 *"}},
        r"key 'dag_defaults\.schedule': .*out of range",
        id="cron-month-13",
    ),
    pytest.param(
        {"dag_defaults": {"schedule": "0 0 * * 8"}},
        r"key 'dag_defaults\.schedule': .*out of range",
        id="cron-weekday-8",
    ),
    pytest.param(
        {"dag_defaults": {"schedule": "*/0 * * * *"}},
        r"key 'dag_defaults\.schedule': .*step '0'",
        id="cron-step-0",
    ),
    pytest.param(
        {"dag_defaults": {"schedule": "0 0 31 2 *"}},
        r"key 'dag_defaults\.schedule': .*no date ever matches it",
        id="cron-feb-31",
    ),
    pytest.param(
        {"dag_defaults": {"schedule": "0 0 * * * *"}},
        r"key 'dag_defaults\.schedule': .*expected five fields",
        id="cron-six-fields",
    ),
    pytest.param(
        {"groups": {"finance": {"schedule": "0 0 32 * *"}}},
        r"key 'groups\.finance\.schedule': .*out of range",
        id="group-cron",
    ),
    pytest.param(
        {"dag_defaults": {"schedule": "@continuous", "max_active_runs": 2}},
        r"key 'dag_defaults\.schedule': @continuous needs dag_defaults\.max_active_runs: 1",
        id="continuous-max-runs",
    ),
    pytest.param(
        {"dag_defaults": {"schedule": "@continuous", "max_active_runs": None}},
        r"key 'dag_defaults\.schedule': @continuous .*unset",
        id="continuous-unset-runs",
    ),
    pytest.param(
        {"dag_defaults": {"tags": ["dbt", LONG_TAG]}},
        r"key 'dag_defaults\.tags\[1\]': tag is 101 characters; Airflow allows at most 100",
        id="tag-101",
    ),
    pytest.param(
        {"groups": {"sales": {"tags": [LONG_TAG]}}},
        r"key 'groups\.sales\.tags\[0\]': tag is 101",
        id="group-tag-101",
    ),
    pytest.param(
        {"task_defaults": {"retry_delay_seconds": 1.0e20}},
        r"key 'task_defaults\.retry_delay_seconds': expected a non-negative number up to",
        id="retry-delay-1e20",
    ),
    pytest.param(
        {"task_defaults": {"retry_delay_seconds": 86400 * 365 * 101}},
        r"key 'task_defaults\.retry_delay_seconds'",
        id="retry-delay-101-years",
    ),
    pytest.param(
        {"task_defaults": {"execution_timeout_seconds": 1.0e15}},
        r"key 'task_defaults\.execution_timeout_seconds': expected a positive number up to",
        id="timeout-overflow",
    ),
    pytest.param(
        {"task_defaults": {"retries": 2**31}},
        r"key 'task_defaults\.retries': expected a non-negative integer up to",
        id="retries-int32",
    ),
    pytest.param(
        {"task_defaults": {"pool_slots": 2**31}},
        r"key 'task_defaults\.pool_slots'",
        id="pool-slots-int32",
    ),
    pytest.param(
        {"task_defaults": {"pool": "p" * 257}},
        r"key 'task_defaults\.pool': expected a non-empty string of at most 256",
        id="pool-257",
    ),
    pytest.param(
        {"dag_defaults": {"max_active_runs": 2**31}},
        r"key 'dag_defaults\.max_active_runs': .*largest integer",
        id="max-runs-int32",
    ),
    pytest.param(
        {"routing": {"celery": {"queue": "q" * 257}}},
        r"key 'routing\.celery\.queue': queue is 257 characters",
        id="queue-257",
    ),
    pytest.param(
        {"dag_defaults": {"owner": "o" * 2001}},
        r"key 'dag_defaults\.owner': owner is 2001 characters",
        id="owner-2001",
    ),
    pytest.param(
        {"team": "x__y"},
        r"key 'team': 'x__y' is not a valid team: .*'__'",
        id="team-double-underscore",
    ),
    pytest.param({"team": "x_"}, r"key 'team': 'x_' is not a valid team", id="team-trailing-_"),
    pytest.param(
        {"team": "t" * 260},
        r"group '\w+'.*DAG id is (longer than 250|269) characters",
        id="dag-id-over-250",
    ),
    pytest.param(
        {"team": "t", "project": "p" * 1500},
        r"node model\.shop\.\w+, group '\w+': asset URI is \d+ characters; .*1500",
        id="asset-uri-over-1500",
    ),
]


def _build(manifest: Path, config: dict, tmp_path: Path):
    path = tmp_path / "dagfactory.yml"
    path.write_text(yaml.safe_dump({"routing": {"force": "celery"}, **config}))
    args = ["build", "--manifest", str(manifest), "--out", str(tmp_path / "out")]
    return CliRunner().invoke(cli, [*args, "--config", str(path)])


@pytest.mark.parametrize(("config", "message"), CONFIG_ROWS)
def test_a_config_value_airflow_rejects_fails_the_build(shop_manifest, tmp_path, config, message):
    result = _build(shop_manifest, config, tmp_path)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), result.stderr
    assert not (tmp_path / "out").exists()


#: (a node's meta.dagfactory, config, what the error line must say); the node is
#: ``model.shop.fct_orders`` unless the row names one
META_ROWS = [
    pytest.param(
        {"retry_delay_seconds": 1e20},
        {},
        r"node model\.shop\.fct_orders, key 'meta\.dagfactory\.retry_delay_seconds'",
        id="meta-retry-delay-1e20",
    ),
    pytest.param(
        {"execution_timeout_seconds": 1e300},
        {},
        r"node model\.shop\.fct_orders, key 'meta\.dagfactory\.execution_timeout_seconds'",
        id="meta-timeout-1e300",
    ),
    pytest.param(
        {"retries": 2**40},
        {},
        r"node model\.shop\.fct_orders, key 'meta\.dagfactory\.retries'",
        id="meta-retries",
    ),
    pytest.param(
        {"schedule": "99 99 99 99 99"},
        {},
        r"node model\.shop\.fct_orders.*'99 99 99 99 99' is not a valid cron",
        id="meta-cron-99",
    ),
    pytest.param(
        {"schedule": "@continuous", "node": "seed.shop.raw_customers"},
        {"dag_defaults": {"max_active_runs": 4}},
        r"group 'seeds', key 'dag_defaults\.max_active_runs': @continuous needs",
        id="meta-continuous",
    ),
]


@pytest.mark.parametrize(("settings", "config", "message"), META_ROWS)
def test_a_meta_value_airflow_rejects_fails_the_build(
    edited_manifest, tmp_path, settings, config, message
):
    settings = dict(settings)
    unique_id = settings.pop("node", "model.shop.fct_orders")

    def edit(raw):
        node = raw["nodes"][unique_id]
        for meta in (
            node.setdefault("meta", {}),
            node.setdefault("config", {}).setdefault("meta", {}),
        ):
            meta["dagfactory"] = {**meta.get("dagfactory", {}), **settings}

    result = _build(edited_manifest(edit), config, tmp_path)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), result.stderr


@pytest.mark.parametrize(
    "schedule",
    [
        "@daily",
        "@continuous",
        "0 3 * * 1-5",
        "*/15 * * * *",
        "0 0 L * *",
        "0 0 * * 7",
        "0 0 1 jan *",
        "@once",
    ],
)
def test_schedules_airflow_accepts_still_build(shop_manifest, tmp_path, schedule):
    result = _build(shop_manifest, {"dag_defaults": {"schedule": schedule}}, tmp_path)
    assert result.exit_code == 0, result.stderr


# --------------------------------------------------------------------------- identity


def _dag_ids(manifest: Path, team: str, tmp_path: Path) -> set[str]:
    out = tmp_path / team
    result = CliRunner().invoke(
        cli, ["build", "--manifest", str(manifest), "--out", str(out), "--team", team]
    )
    assert result.exit_code == 0, result.stderr
    return {p.stem for p in out.glob("*.py")}


def test_teams_that_used_to_share_a_prefix_now_make_different_dag_ids(shop_manifest, tmp_path):
    """`a.b`, `a-b` and `a_b` all became `a_b__...`; the team is now the prefix as written."""
    builds = {team: _dag_ids(shop_manifest, team, tmp_path) for team in ("a.b", "a-b", "a_b")}
    assert builds["a.b"] == {
        "a.b__finance",
        "a.b__marketing",
        "a.b__sales",
        "a.b__seeds",
        "a.b__staging",
    }
    assert not builds["a.b"] & builds["a-b"] and not builds["a.b"] & builds["a_b"]
    assert not builds["a-b"] & builds["a_b"]


def test_a_team_that_could_swallow_a_group_is_refused(shop_manifest, tmp_path):
    """Team `x` + group `y__finance` and team `x__y` + group `finance` would both make
    `x__y__finance`: a team with `__` is refused, so the first `__` always ends the team."""
    result = CliRunner().invoke(
        cli,
        ["build", "--manifest", str(shop_manifest), "--out", str(tmp_path / "o"), "--team", "x__y"],
    )
    assert result.exit_code == 2
    assert "key 'team': 'x__y' is not a valid team" in result.stderr


_TEAM = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}", fullmatch=True).filter(
    lambda t: airflow_rules.team_problem(t) is None
)


@given(team=_TEAM, group=st.text(min_size=1, max_size=20))
def test_the_team_is_always_what_comes_before_the_first_double_underscore(team, group):
    dag_id = f"{team}__{sanitize_id(group)}"  # the DAG id rule of dagfactory/specs.py
    assert dag_id.split("__", 1)[0] == team


@given(first=_TEAM, second=_TEAM, group_a=st.text(max_size=12), group_b=st.text(max_size=12))
def test_two_different_teams_never_make_the_same_dag_id(first, second, group_a, group_b):
    if first != second:
        assert f"{first}__{sanitize_id(group_a)}" != f"{second}__{sanitize_id(group_b)}"


def test_two_teams_sharing_a_project_name_never_share_an_asset(shop_manifest, tmp_path):
    """The asset URI carries team and project: team a's run cannot trigger team b's DAGs."""

    def assets(team: str) -> set[str]:
        _dag_ids(shop_manifest, team, tmp_path)
        text = "".join(p.read_text() for p in (tmp_path / team).glob("*.py"))
        return set(re.findall(r"Asset\('([^']+)'\)", text))

    core, growth = assets("core"), assets("growth")
    assert core and growth and not core & growth
    assert "x-dbt://core/shop/model.shop.fct_orders" in core
