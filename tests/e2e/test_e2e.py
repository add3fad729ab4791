"""Generated DAGs, run by real Airflow, end where a plain ``dbt build`` ends.

The slow part runs once per session (``shop_e2e``): the sample shop project is built with
plain dbt into one DuckDB file, and with the generated DAGs (Airflow 3 ``dag.test()``, in
cross-DAG order) into another; one DAG holding a snapshot and one holding an incremental
model are then rerun for the same logical date, and a failure case runs on a copy of the
database. See ``tests/e2e/harness.py`` and the README (How generated tasks call dbt). Every test below asserts one
behaviour on that single run.

The fast part checks what the generator writes for execution: task settings (retries,
delays, timeouts, pools) from ``meta.dagfactory`` are validated with errors that name the
node and key, and templated dbt vars reach dbt unchanged whatever they render to.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfactory.config import load_config
from dagfactory.errors import ConfigError, ManifestError
from dagfactory.pipeline import generate
from e2e.harness import (
    EXECUTED,
    LOGICAL_DATE,
    POOL,
    TEST_TYPES,
    E2EReport,
    Edge,
    FailureCase,
    dependency_edges,
    run_e2e,
)

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "sample_manifests" / "shop"
FAILING_MODEL = "model.shop.mkt_channel_spend"  # its singular test fails with fail_test: true
FAILING_TEST = "test.shop.assert_channel_spend_is_positive"
TIMEOUT_MODEL = "model.shop.sales_by_country"  # gets execution_timeout_seconds: 0.5 in meta
TASK_DEFAULTS = {"retry_delay_seconds": 7, "execution_timeout_seconds": 1800, "pool_slots": 1}


@pytest.fixture(scope="session")
def shop_e2e(tmp_path_factory: pytest.TempPathFactory) -> E2EReport:
    return run_e2e(
        SHOP,
        tmp_path_factory.mktemp("shop-e2e"),
        vars={"run_date": "{{ ds }}"},
        task_defaults=TASK_DEFAULTS,
        failure=FailureCase(
            FAILING_MODEL,
            {"fail_test": True},
            group_by="folder",
            retries=1,
            timeout_model=TIMEOUT_MODEL,
        ),
    )


def _kind(uid: str) -> str:
    return uid.split(".", 1)[0]


def _executed(report: E2EReport) -> dict[str, list[tuple[str, str, str]]]:
    """unique_id -> [(dag_id, task_id, status)] over the main pass (last try of each task)."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for run in report.runs:
        for task in run.tasks.values():
            for uid, status in task.results.items():
                found.setdefault(uid, []).append((run.dag_id, task.task_id, status))
    return found


def _passed_tests(results: Iterable[tuple[str, str]]) -> list[str]:
    return sorted(uid for uid, status in results if _kind(uid) in TEST_TYPES and status == "pass")


def _snapshot_relations(report: E2EReport) -> list[str]:
    raw = json.loads((SHOP / "manifest.json").read_text(encoding="utf-8"))
    names = [
        f"{node['schema']}.{node['alias'] or node['name']}"
        for node in raw["nodes"].values()
        if node["resource_type"] == "snapshot"
    ]
    return sorted(n for n in names if n in report.reference_db.rows)


# --------------------------------------------------------------------------- same end state


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_every_generated_dag_runs_to_success_in_cross_dag_order(shop_e2e: E2EReport) -> None:
    summary_dags = sorted(d["dag_id"] for d in shop_e2e.summary["dags"])
    assert sorted(shop_e2e.order) == summary_dags
    assert [r.dag_id for r in shop_e2e.runs] == shop_e2e.order
    for run in shop_e2e.runs:
        assert run.error is None, run.error
        assert run.state == "success", run.dag_id
        assert {t.state for t in run.tasks.values()} == {"success"}, run.dag_id


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_every_task_ran_dbt_on_its_slice_and_parsed_nothing(shop_e2e: E2EReport) -> None:
    # The harness wrote the slices after `dbt parse`, as the image build would: dbt got each
    # task's manifest from run.py, so its log says nothing of a parse, partial or full.
    parsed = {
        (run.dag_id, task.task_id): set(task.parsed.values())
        for run in shop_e2e.runs
        for task in run.tasks.values()
    }
    assert parsed and all(kinds == {"none"} for kinds in parsed.values()), parsed


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_same_relations_with_same_row_counts_as_dbt_build(shop_e2e: E2EReport) -> None:
    assert shop_e2e.reference_db.counts()  # the reference built something
    assert shop_e2e.db.counts() == shop_e2e.reference_db.counts()


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_same_rows_in_every_relation_as_dbt_build(shop_e2e: E2EReport) -> None:
    # dbt_* columns (snapshot validity timestamps) are clock times, so they are left out.
    assert shop_e2e.db.without("dbt_") == shop_e2e.reference_db.without("dbt_")


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_snapshot_holds_the_same_rows_as_after_dbt_build(shop_e2e: E2EReport) -> None:
    snapshots = _snapshot_relations(shop_e2e)
    assert snapshots, "the sample project has a snapshot"
    ours, theirs = shop_e2e.db.without("dbt_"), shop_e2e.reference_db.without("dbt_")
    for name in snapshots:
        assert ours[name] == theirs[name]
        valid_to = shop_e2e.db.columns[name].index("dbt_valid_to")
        current = [row for row in shop_e2e.db.rows[name] if row[valid_to] is None]
        assert len(current) == len(shop_e2e.db.rows[name])  # one run: every row is current


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_every_node_dbt_build_runs_is_run_by_exactly_one_task(shop_e2e: E2EReport) -> None:
    executed = _executed(shop_e2e)
    twice = {uid: where for uid, where in executed.items() if len(where) > 1}
    assert not twice
    statuses = {uid: where[0][2] for uid, where in executed.items()}
    assert statuses == dict(shop_e2e.reference_results)


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_as_many_dbt_tests_ran_and_passed_as_in_dbt_build(shop_e2e: E2EReport) -> None:
    ours = _passed_tests((uid, w[0][2]) for uid, w in _executed(shop_e2e).items())
    theirs = _passed_tests(shop_e2e.reference_results.items())
    assert len(theirs) > 0
    assert len(ours) == len(theirs)
    assert ours == theirs


# --------------------------------------------------------------------------- order


def _edge_kind(report: E2EReport, edge: Edge) -> set[str]:
    up, down = report.task(edge.parent), report.task(edge.child)
    kinds = set()
    if up is down:
        return {"same task"}
    kinds.add("same DAG" if up.dag_id == down.dag_id else "across DAGs")
    if edge.via_ephemeral:
        kinds.add("through ephemeral models")
    return kinds


EDGE_KINDS = ["same DAG", "across DAGs", "through ephemeral models"]


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
@pytest.mark.parametrize("kind", EDGE_KINDS)
def test_upstream_task_finished_before_downstream_task_started(
    shop_e2e: E2EReport, kind: str
) -> None:
    edges = [e for e in shop_e2e.edges if kind in _edge_kind(shop_e2e, e)]
    assert edges, f"the sample project has dependencies {kind}"
    late = []
    for edge in edges:
        up, down = shop_e2e.task(edge.parent), shop_e2e.task(edge.child)
        assert up.end is not None and down.start is not None
        if not up.end <= down.start:
            late.append(f"{up.dag_id}.{up.task_id} ended after {down.dag_id}.{down.task_id}")
    assert not late


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_tests_with_several_parents_ran_after_all_of_them(shop_e2e: E2EReport) -> None:
    parents: dict[str, list[str]] = {}
    for edge in shop_e2e.edges:
        if _kind(edge.child) == "test":
            parents.setdefault(edge.child, []).append(edge.parent)
    multi = {test: ups for test, ups in parents.items() if len(ups) > 1}
    assert multi, "the sample project has tests with several parents"
    for test, ups in sorted(multi.items()):
        test_task = shop_e2e.task(test)
        for parent in ups:
            parent_task = shop_e2e.task(parent)
            assert parent_task is not test_task  # a multi-parent test is a task of its own
            assert parent_task.end <= test_task.start, (test, parent)


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_every_dependency_is_an_airflow_edge_or_an_asset_the_downstream_dag_waits_for(
    shop_e2e: E2EReport,
) -> None:
    """The order above is Airflow's doing, not luck: each edge is declared in the DAGs."""
    shapes = {run.dag_id: run.shape for run in shop_e2e.runs}
    emitted = {(run.dag_id, task, uri) for run in shop_e2e.runs for task, uri in run.asset_events}
    for edge in shop_e2e.edges:
        up, down = shop_e2e.task(edge.parent), shop_e2e.task(edge.child)
        if up is down:
            continue
        if up.dag_id == down.dag_id:
            assert up.task_id in _ancestors(shapes[down.dag_id]["tasks"], down.task_id), edge
        else:
            outlets = set(shapes[up.dag_id]["tasks"][up.task_id]["outlets"])
            waits_for = outlets & set(shapes[down.dag_id]["schedule_assets"])
            assert waits_for, edge
            assert {(up.dag_id, up.task_id, uri) for uri in waits_for} <= emitted, edge


def _ancestors(tasks: dict[str, Any], task_id: str) -> set[str]:
    found: set[str] = set()
    stack = [task_id]
    while stack:
        for up in tasks[stack.pop()]["upstream"]:
            if up not in found:
                found.add(up)
                stack.append(up)
    return found


# --------------------------------------------------------------------------- settings


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_dbt_vars_are_rendered_by_airflow_for_the_logical_date(shop_e2e: E2EReport) -> None:
    ds = LOGICAL_DATE.date().isoformat()
    for run in shop_e2e.runs:
        for task in run.tasks.values():
            assert task.vars == {1: {"run_date": ds}}, (run.dag_id, task.task_id)


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_dbt_env_templates_give_each_task_try_its_own_target_folder(shop_e2e: E2EReport) -> None:
    for run in shop_e2e.runs:
        for task in run.tasks.values():
            assert set(task.tries) == {task.try_number} == {1}, (run.dag_id, task.task_id)


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_task_defaults_reach_airflow_task_instances(shop_e2e: E2EReport) -> None:
    for run in shop_e2e.runs:
        for task_id, shape in run.shape["tasks"].items():
            assert shape["execution_timeout"] == TASK_DEFAULTS["execution_timeout_seconds"]
            assert shape["retry_delay"] == TASK_DEFAULTS["retry_delay_seconds"]
            ti = run.tasks[task_id]
            assert (ti.pool, ti.pool_slots) == (POOL, TASK_DEFAULTS["pool_slots"])


# --------------------------------------------------------------------------- failing test


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_a_failing_dbt_test_fails_the_task_of_its_model(shop_e2e: E2EReport) -> None:
    failure = shop_e2e.failure
    task = failure.run.tasks[failure.failing_task]
    assert task.state == "failed"
    assert task.results[FAILING_MODEL] == "success"  # the model was built ...
    assert task.results[FAILING_TEST] == "fail"  # ... and its test failed the task
    assert failure.run.state == "failed"


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_tasks_downstream_of_the_failed_task_do_not_run(shop_e2e: E2EReport) -> None:
    failure = shop_e2e.failure
    assert failure.downstream, "the failing model has a reader in its DAG (group_by folder)"
    for task_id in failure.downstream:
        task = failure.run.tasks[task_id]
        assert task.state == "upstream_failed", task_id
        # Airflow stamps start_date = end_date when it marks a task upstream_failed; a task
        # that never ran has no try and left no dbt results.
        assert task.try_number == 0 and not task.tries, task_id
    assert not [e for e in failure.run.asset_events if e[0] == failure.failing_task]


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_per_model_meta_retries_make_airflow_retry_the_failed_task(shop_e2e: E2EReport) -> None:
    failure = shop_e2e.failure
    task = failure.run.tasks[failure.failing_task]
    shape = failure.run.shape["tasks"][failure.failing_task]
    assert (shape["retries"], shape["retry_delay"]) == (failure.case.retries, 0)
    assert task.try_number == failure.case.retries + 1
    assert sorted(task.tries) == list(range(1, failure.case.retries + 2))
    assert all(results[FAILING_TEST] == "fail" for results in task.tries.values())
    others = [s for t, s in failure.run.shape["tasks"].items() if t != failure.failing_task]
    assert others and all(s["retry_delay"] == TASK_DEFAULTS["retry_delay_seconds"] for s in others)


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_per_model_meta_execution_timeout_makes_airflow_stop_the_task(
    shop_e2e: E2EReport,
) -> None:
    failure = shop_e2e.failure
    task_id = failure.timeout_task
    shape = failure.run.shape["tasks"][task_id]
    assert shape["execution_timeout"] == failure.case.timeout_seconds
    assert failure.run.tasks[task_id].state == "failed"
    assert "AirflowTaskTimeout" in failure.log
    # BashOperator.on_kill ends dbt's whole process group, so no dbt outlives its task.
    assert "Sending SIGTERM signal to process group" in failure.log


# --------------------------------------------------------------------------- idempotency


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_rerun_for_the_same_logical_date_runs_snapshot_and_incremental_again(
    shop_e2e: E2EReport,
) -> None:
    assert shop_e2e.reruns and all(r.state == "success" for r in shop_e2e.reruns)
    rerun = {uid for r in shop_e2e.reruns for t in r.tasks.values() for uid in t.results}
    raw = json.loads((SHOP / "manifest.json").read_text(encoding="utf-8"))
    stateful = {
        uid
        for uid, node in raw["nodes"].items()
        if node["resource_type"] == "snapshot" or node["config"]["materialized"] == "incremental"
    }
    assert stateful and stateful <= rerun


@pytest.mark.dbt
@pytest.mark.airflow
@pytest.mark.slow
def test_rerun_for_the_same_logical_date_changes_nothing(shop_e2e: E2EReport) -> None:
    after = shop_e2e.db_after_rerun
    assert after is not None
    assert after.counts() == shop_e2e.db.counts()
    # Every row of every relation, snapshot validity timestamps included.
    assert after.rows == shop_e2e.db.rows


# --------------------------------------------------------------------------- fast: validation


def _shop_with_meta(tmp_path: Path, unique_id: str, settings: dict[str, Any]) -> Path:
    raw = json.loads((SHOP / "manifest.json").read_text(encoding="utf-8"))
    node = raw["nodes"][unique_id]
    node["meta"] = {**node.get("meta", {}), "dagfactory": settings}
    node["config"]["meta"] = {**node["config"].get("meta", {}), "dagfactory": settings}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


BAD_META = [
    pytest.param("retries", -1, "a non-negative integer", id="negative retries"),
    pytest.param("retries", "3", "a non-negative integer", id="retries as text"),
    pytest.param("retries", True, "a non-negative integer", id="retries true"),
    pytest.param("retries", 1.5, "a non-negative integer", id="fractional retries"),
    pytest.param("retry_delay_seconds", -5, "a non-negative number", id="negative delay"),
    pytest.param("execution_timeout_seconds", 0, "a positive number", id="zero timeout"),
    pytest.param("execution_timeout_seconds", "1h", "a positive number", id="timeout as text"),
    pytest.param("pool", "", "a non-empty string", id="empty pool"),
    pytest.param("pool", 3, "a non-empty string", id="pool as number"),
    pytest.param("pool_slots", 0, "a positive integer", id="zero pool slots"),
]


@pytest.mark.parametrize(("key", "value", "wanted"), BAD_META)
def test_invalid_meta_task_setting_names_the_node_and_the_key(
    tmp_path: Path, key: str, value: Any, wanted: str
) -> None:
    manifest = _shop_with_meta(tmp_path, "model.shop.fct_orders", {key: value})
    with pytest.raises(ManifestError, match=f"expected {wanted}\\b.*, got") as error:
        generate(manifest, load_config(None, {"routing.force": "celery"}))
    assert error.value.unique_id == "model.shop.fct_orders"
    assert error.value.key == f"meta.dagfactory.{key}"
    assert "node model.shop.fct_orders" in str(error.value)


@pytest.mark.parametrize(
    ("key", "value", "wanted"),
    [
        pytest.param("retries", -1, "a non-negative integer", id="negative retries"),
        pytest.param("retry_delay_seconds", -1, "a non-negative number", id="negative delay"),
        pytest.param("execution_timeout_seconds", 0, "a positive number", id="zero timeout"),
        pytest.param("pool", " ", "a non-empty string", id="blank pool"),
        pytest.param("pool_slots", 0, "a positive integer", id="zero pool slots"),
    ],
)
def test_invalid_task_default_is_a_config_error_naming_the_key(
    key: str, value: Any, wanted: str
) -> None:
    with pytest.raises(ConfigError, match=f"expected {wanted}") as error:
        load_config(None, {f"task_defaults.{key}": value})
    assert error.value.key == f"task_defaults.{key}"


META_OVER_DEFAULTS = [
    pytest.param({}, {"retries": 2, "pool": "dbt", "pool_slots": 1}, id="defaults"),
    pytest.param(
        {"retries": 0, "pool": "heavy", "pool_slots": 3},
        {"retries": 0, "pool": "heavy", "pool_slots": 3},
        id="meta beats defaults",
    ),
    pytest.param({"retries": None}, {"retries": 2}, id="null meta falls back"),
]


@pytest.mark.parametrize(("meta", "expected"), META_OVER_DEFAULTS)
def test_meta_task_settings_override_task_defaults(
    tmp_path: Path, meta: dict[str, Any], expected: dict[str, Any]
) -> None:
    manifest = _shop_with_meta(tmp_path, "model.shop.fct_orders", meta)
    config = load_config(
        None,
        {
            "routing.force": "celery",
            "task_defaults.retries": 2,
            "task_defaults.pool": "dbt",
            "task_defaults.pool_slots": 1,
        },
    )
    result = generate(manifest, config)
    assert _operator_kwargs(result, "fct_orders").items() >= expected.items()


def _operator_kwargs(result: Any, task_id: str) -> dict[str, Any]:
    """The literal keyword arguments of the operator call for ``task_id`` in the output."""
    import ast

    found = []
    for file in result.files:
        for node in ast.walk(ast.parse(file.text)):
            if isinstance(node, ast.Call):
                kwargs = {k.arg: k.value for k in node.keywords if k.arg}
                task = kwargs.get("task_id")
                if isinstance(task, ast.Constant) and task.value == task_id:
                    found.append(
                        {
                            k: ast.literal_eval(v)
                            for k, v in kwargs.items()
                            if isinstance(v, ast.Constant)
                        }
                    )
    (kwargs,) = found
    return kwargs


def test_edges_are_read_through_ephemeral_models() -> None:
    """The harness's own edge reader: fct_orders reads staging through two ephemerals."""
    edges = {(e.parent, e.child): e.via_ephemeral for e in dependency_edges(SHOP / "manifest.json")}
    assert edges[("model.shop.stg_orders", "model.shop.fct_orders")] is True
    assert edges[("model.shop.stg_customers", "model.shop.fct_orders")] is True
    assert not [p for p, _ in edges if "int_order" in p or "int_orders" in p]
    assert all(_kind(p) in EXECUTED and _kind(c) in EXECUTED for p, c in edges)


# --------------------------------------------------------------------------- fast: vars quoting

PARAM_VALUES = [
    pytest.param("EU", id="plain"),
    pytest.param("O'Neil", id="single quote"),
    pytest.param("x'; touch {marker}; echo '", id="shell injection attempt"),
    pytest.param('say "hi" \\n', id="double quote and backslash"),
    pytest.param("two\nlines $HOME `id`", id="newline, dollar, backtick"),
    pytest.param("{# not a comment #}", id="jinja comment text"),
]


@pytest.mark.airflow
@pytest.mark.parametrize("value", PARAM_VALUES)
def test_templated_dbt_vars_reach_dbt_unchanged_whatever_they_render_to(
    tmp_path: Path, value: str
) -> None:
    """``{{ params.x }}`` may render quotes or newlines: dbt still gets exactly that value."""
    import subprocess

    from airflow.sdk import DAG

    from dagfactory.plan import bash_command

    marker = tmp_path / "pwned"
    value = value.format(marker=marker) if "{marker}" in value else value
    config = load_config(
        None,
        {"dbt.vars": {"region": "{{ params.region }}", "it": "it's {#", "n": [1, "{{ ds }}"]}},
    )
    command = bash_command(["dbt", "build", "--select", "fqn:p.a"], config.dbt)
    # Rendered by the template environment Airflow gives BashOperator, then run by bash.
    env = DAG(dag_id="vars_quoting", schedule=None).get_template_env()
    rendered = env.from_string(command).render(params={"region": value}, ds="2024-06-01")
    printer = "python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))'"
    done = subprocess.run(
        ["bash", "-c", rendered.replace("dbt", printer, 1)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    argv = json.loads(done.stdout)
    assert argv[:4] == ["build", "--select", "fqn:p.a", "--vars"]
    # dbt reads --vars as YAML; JSON (with \\u escapes) is YAML.
    assert yaml.safe_load(argv[4]) == {"it": "it's {#", "n": [1, "2024-06-01"], "region": value}
    assert not marker.exists()
