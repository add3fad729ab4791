"""The plan: every operator keyword and every DAG keyword is decided before rendering.

Tables of config -> the keywords of one task's call (the sample shop project: ``fct_orders``
runs on Celery, ``fct_revenue`` on Kubernetes); the owner precedence table; and ``render``
laying out a plan with no config at all.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from click.testing import CliRunner

from dagfactory import generate, load_config
from dagfactory.cli import cli
from dagfactory.node_settings import NodeSettings
from dagfactory.plan import DagPlan, OperatorCall, plan_dag, plan_dags
from dagfactory.render import render_dag

BASE = {"team": "shop", "routing.kubernetes.image": "ghcr.io/example/dbt:1"}


def _plans(shop_manifest, **overrides: Any) -> tuple[list[DagPlan], Any]:
    config = load_config(None, {**BASE, **overrides})
    return plan_dags(generate(shop_manifest, config).dags, config), config


def _call(plans: list[DagPlan], task_id: str) -> OperatorCall:
    return next(call for plan in plans for call in plan.tasks if call.task_id == task_id)


@pytest.mark.parametrize(
    ("overrides", "task_id", "operator", "expected"),
    [
        pytest.param({}, "fct_orders", "BashOperator", {}, id="celery-plain"),
        pytest.param(
            {"routing.celery.queue": "dbt"},
            "fct_orders",
            "BashOperator",
            {"queue": "dbt"},
            id="celery-queue",
        ),
        pytest.param(
            {"routing.executors": ["CeleryExecutor", "KubernetesExecutor"]},
            "fct_orders",
            "BashOperator",
            {"executor": "CeleryExecutor"},
            id="celery-executor-when-several",
        ),
        pytest.param(
            {},
            "fct_revenue",
            "KubernetesPodOperator",
            {"image": "ghcr.io/example/dbt:1"},
            id="pod-operator",
        ),
        pytest.param(
            {"routing.kubernetes.mode": "executor"},
            "fct_revenue",
            "BashOperator",
            {"executor": "KubernetesExecutor"},
            id="kubernetes-executor",
        ),
        pytest.param(
            {"task_defaults.retries": 2, "task_defaults.pool": "dbt"},
            "fct_orders",
            "BashOperator",
            {"retries": 2, "pool": "dbt"},
            id="task-defaults",
        ),
        pytest.param(
            {"dbt.env": {"A": "b"}},
            "fct_orders",
            "BashOperator",
            {"env": {"A": "b"}, "append_env": True},
            id="dbt-env",
        ),
    ],
)
def test_each_task_call_holds_its_decided_keywords(
    shop_manifest, overrides, task_id, operator, expected
):
    plans, _ = _plans(shop_manifest, **overrides)
    call = _call(plans, task_id)
    assert call.operator == operator
    assert expected.items() <= dict(call.kwargs).items()


def test_celery_tasks_name_no_queue_or_executor_unless_configured(shop_manifest):
    keywords = dict(_call(_plans(shop_manifest)[0], "fct_orders").kwargs)
    assert "queue" not in keywords and "executor" not in keywords


def test_a_nodes_own_task_settings_beat_task_defaults(shop_manifest):
    config = load_config(None, {**BASE, "task_defaults.retries": 1, "task_defaults.pool": "p"})
    spec = next(d for d in generate(shop_manifest, config).dags if d.group == "sales")
    own = NodeSettings(retries=5)
    tasks = tuple(
        dataclasses.replace(t, settings=own) if t.task_id == "fct_orders" else t for t in spec.tasks
    )
    plan = plan_dag(dataclasses.replace(spec, tasks=tasks), config)
    keywords = dict(_call([plan], "fct_orders").kwargs)
    assert (keywords["retries"], keywords["pool"]) == (5, "p")  # meta, then the default


def test_sensors_retry_like_the_dbt_tasks(shop_manifest):
    plans, _ = _plans(shop_manifest, cross_dag="sensors", **{"task_defaults.retries": 3})
    sensors = [call for plan in plans for call in plan.sensors]
    assert sensors and all(dict(s.kwargs)["retries"] == 3 for s in sensors)
    assert {s.operator for s in sensors} == {"ExternalTaskSensor"}


@pytest.mark.parametrize(
    ("overrides", "group", "owner"),
    [
        pytest.param({}, "sales", "Sales Analytics", id="dbt-group-owner"),
        pytest.param({}, "seeds", "airflow", id="dag-defaults-owner"),
        pytest.param({"groups.sales.owner": "Ops"}, "sales", "Ops", id="config-group-owner"),
        pytest.param(
            {"dag_defaults.default_args": {"owner": "data"}},
            "sales",
            "Sales Analytics",
            id="group-owner-beats-default-args",
        ),
        pytest.param(
            {"dag_defaults.default_args": {"owner": "data"}},
            "seeds",
            "data",
            id="default-args-beats-dag-defaults",
        ),
        pytest.param(
            {"dag_defaults.owner": "team", "dag_defaults.default_args": {"retries": 1}},
            "seeds",
            "team",
            id="dag-defaults-owner-with-other-default-args",
        ),
    ],
)
def test_the_owner_in_default_args_and_doc_md_is_the_same(shop_manifest, overrides, group, owner):
    plans, _ = _plans(shop_manifest, **overrides)
    plan = next(p for p in plans if p.group == group)
    keywords = dict(plan.dag_kwargs)
    assert keywords["default_args"]["owner"] == owner
    assert f"owned by {owner}." in keywords["doc_md"]


def test_render_lays_out_a_plan_with_no_config(shop_manifest):
    assert list(inspect.signature(render_dag).parameters) == [
        "plan",
        "airflow_version",
        "template_dir",
    ]
    plans, _ = _plans(shop_manifest)
    file = render_dag(plans[0], "3")
    assert file.name == plans[0].file_name
    assert "from airflow.sdk import" in file.text
    assert "from airflow.models.dag import DAG" in render_dag(plans[0], "2").text


def test_a_templates_folder_that_does_not_exist_is_an_input_error(shop_manifest, tmp_path):
    missing = tmp_path / "no-such-folder"
    args = ["build", "--manifest", str(shop_manifest), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, [*args, "--templates", str(missing)])
    assert result.exit_code == 2
    assert "the --templates folder does not exist" in result.output
    assert "template failed" not in result.output  # named as what it is, not as a render error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "word",
    ["fqn:shop.marts.fct_orders", "", "a b", "it's", "{{ ds }}", "x{%y", "€", "a\nb", "-@%+=:,./"],
)
def test_a_shell_word_needing_no_quotes_skips_quoting_and_reads_the_same(word):
    """The fast path for plain words gives what shlex.quote and the Jinja escape give."""
    import shlex

    from dagfactory._pysrc import jinja_escape
    from dagfactory.plan import _shell

    assert _shell(word) == jinja_escape(shlex.quote(word))
