"""Kubernetes-routed tasks, checked with the provider's own code and real Airflow (no cluster).

The sample project is built with its ``dagfactory.yml`` (image, namespace, tolerations, an env
secret, sizes ``small``/``large``; tag ``heavy`` goes to Kubernetes). ``fct_revenue`` gets
``meta.dagfactory`` asking for size ``large`` plus its own pod settings, so every layer of the
merge shows up in the pod. In ``pod_operator`` mode the pod is what
``KubernetesPodOperator.build_pod_request_obj`` makes of the generated task; in ``executor``
mode it is what ``PodGenerator.construct_pod`` (the KubernetesExecutor's pod builder) makes
of the task's ``pod_override`` on top of the provider's example worker template.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import jinja2
import orjson
import pytest
from helpers import load_dagbag

from dagfactory.config import load_config
from dagfactory.pipeline import build

pytestmark = pytest.mark.airflow

SHOP = Path(__file__).resolve().parents[3] / "sample_manifests" / "shop"
META = "model.shop.fct_revenue"
TAGGED = "model.shop.fin_marketing_roi"
IMAGE = "ghcr.io/example/shop-dbt:1.0"
ARCH = "kubernetes.io/arch"
FCT_REVENUE_META = {
    "runner": "kubernetes",
    "size": "large",
    "pod": {
        "container_resources": {"limits": {"cpu": "4"}},
        "env_vars": {"DBT_THREADS": 8},
        "annotations": {"example.com/owner": "finance {{ not a template }}"},
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "10Gi"}}],
        "volume_mounts": [{"name": "scratch", "mountPath": "/scratch"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": ARCH, "operator": "In", "values": ["amd64"]}]}
                    ]
                }
            }
        },
    },
}
#: what the sample dagfactory.yml's size "large" and the meta above make of fct_revenue
LARGE_RESOURCES = {
    "requests": {"cpu": "2", "memory": "8Gi"},
    "limits": {"cpu": "4", "memory": "8Gi"},
}
SMALL_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
EXECUTORS = "CeleryExecutor,KubernetesExecutor"
#: the routing example that docs/routing.md shows (tests/unit/test_docs.py keeps the two equal)
DOCS_ROUTING_EXAMPLE = SHOP.parent.parent / "docs" / "examples" / "routing.yml"


def _build(root: Path, raw: dict[str, Any], mode: str) -> tuple[Any, Any]:
    manifest = root / "manifest.json"
    if not manifest.exists():
        edited = copy.deepcopy(raw)
        edited["nodes"][META]["meta"]["dagfactory"] = FCT_REVENUE_META
        manifest.write_bytes(orjson.dumps(edited))
    config = load_config(
        SHOP / "dagfactory.yml",
        {"routing.kubernetes.mode": mode, "dbt.vars": {"run_date": "{{ ds }}"}},
    )
    result = build(manifest, root / f"dags-{mode}", config)
    return result, load_dagbag(result.out_dir)


@pytest.fixture(scope="module")
def pod_operator_build(tmp_path_factory, shop_raw):
    return _build(tmp_path_factory.mktemp("k8s"), shop_raw, "pod_operator")


@pytest.fixture(scope="module")
def executor_build(tmp_path_factory, shop_raw):
    # Airflow rejects a task naming an executor it does not run: configure both, as a
    # deployment with Celery and Kubernetes executors would ([core] executor).
    from airflow.executors import executor_loader

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__EXECUTOR", EXECUTORS)
        patch.setattr(executor_loader, "_executor_names", [])
        yield _build(tmp_path_factory.mktemp("k8s"), shop_raw, "executor")


def _spec(result, unique_id: str):
    (task,) = [t for d in result.dags for t in d.tasks if t.unique_ids[0] == unique_id]
    return task


def _task(dagbag, result, unique_id: str):
    dag_id = next(d.dag_id for d in result.dags for t in d.tasks if t.unique_ids[0] == unique_id)
    return dagbag.dags[dag_id].get_task(_spec(result, unique_id).task_id)


def _sanitized(pod) -> dict[str, Any]:
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(pod)


def _affinity_keys(pod) -> list[str]:
    """Label keys of the required node-affinity terms, read through the typed models."""
    required = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    return [e.key for term in required.node_selector_terms for e in term.match_expressions]


def _env(container) -> dict[str, Any]:
    """name -> value, or ("secret", name, key) for values from a secret."""
    out: dict[str, Any] = {}
    for var in container.env or []:
        if var.value_from is not None:
            ref = var.value_from.secret_key_ref
            out[var.name] = ("secret", ref.name, ref.key)
        else:
            out[var.name] = var.value
    return out


# -- pod_operator mode ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def revenue_pod(pod_operator_build):
    result, dagbag = pod_operator_build
    task = _task(dagbag, result, META)
    assert type(task).__name__ == "KubernetesPodOperator"
    return task.build_pod_request_obj(context=None, dry_run=True)


def test_pod_runs_the_tasks_exact_dbt_command_in_the_image(pod_operator_build, revenue_pod):
    result, _ = pod_operator_build
    argv = _spec(result, META).argv
    (container,) = revenue_pod.spec.containers
    assert container.image == IMAGE
    assert container.command == ["dbt"]
    assert container.args[:3] == ["build", "--select", "fqn:shop.marts.finance.fct_revenue"]
    assert container.args[:-1] == [*argv[1:], "--vars"]
    # Airflow renders the templated value inside a tojson filter: it stays one JSON string.
    rendered = jinja2.Environment().from_string(container.args[-1]).render(ds="2024-06-01")
    assert json.loads(rendered) == {"run_date": "2024-06-01"}
    assert "--indirect-selection" in container.args


def test_pod_carries_size_and_meta_resources(revenue_pod):
    resources = revenue_pod.spec.containers[0].resources
    assert {"requests": resources.requests, "limits": resources.limits} == LARGE_RESOURCES


def test_pod_carries_placement_from_config(revenue_pod):
    assert revenue_pod.metadata.namespace == "dbt"
    assert revenue_pod.spec.service_account_name == "dbt-runner"
    assert revenue_pod.spec.node_selector == {"workload": "dbt"}
    assert [t.to_dict() for t in revenue_pod.spec.tolerations] == [
        {
            "key": "dedicated",
            "operator": "Equal",
            "value": "dbt",
            "effect": "NoSchedule",
            "toleration_seconds": None,
        }
    ]
    assert revenue_pod.metadata.labels["app.kubernetes.io/part-of"] == "shop-dbt"
    assert _affinity_keys(revenue_pod) == [ARCH]  # from meta, in Kubernetes' own spelling


def test_pod_carries_env_and_secrets(revenue_pod):
    assert _env(revenue_pod.spec.containers[0]) == {
        "DBT_DUCKDB_PATH": "/data/shop.duckdb",  # config pod defaults
        "DBT_THREADS": "8",  # meta.dagfactory.pod
        "DBT_WAREHOUSE_PASSWORD": ("secret", "shop-warehouse", "password"),  # config secret
    }


def test_pod_carries_meta_volumes_and_escaped_annotations(revenue_pod):
    (container,) = revenue_pod.spec.containers
    assert [(v.name, v.empty_dir.size_limit) for v in revenue_pod.spec.volumes] == [
        ("scratch", "10Gi")
    ]
    assert [(m.name, m.mount_path) for m in container.volume_mounts] == [("scratch", "/scratch")]
    # meta text in a templated field is escaped so that Airflow renders it back as itself
    assert revenue_pod.metadata.annotations["example.com/owner"] == (
        "finance {{ '{' }}{{ '{' }} not a template }}"
    )


def test_pod_is_a_valid_kubernetes_pod(revenue_pod):
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    data = _sanitized(revenue_pod)
    assert (data["apiVersion"], data["kind"]) == ("v1", "Pod")
    assert data["spec"]["containers"][0]["resources"] == LARGE_RESOURCES
    # the API's JSON reads back into typed models and out again unchanged: no field is
    # unknown to the Pod schema (the client drops those) and every value has its model type
    assert _sanitized(PodGenerator.deserialize_model_dict(data)) == data
    assert orjson.loads(orjson.dumps(data)) == data


def test_tag_routed_model_gets_the_default_size(pod_operator_build):
    result, dagbag = pod_operator_build
    assert (_spec(result, TAGGED).route.reason, _spec(result, TAGGED).route.size) == (
        "tag heavy",
        "small",
    )
    pod = _task(dagbag, result, TAGGED).build_pod_request_obj(context=None, dry_run=True)
    resources = pod.spec.containers[0].resources
    assert {"requests": resources.requests, "limits": resources.limits} == SMALL_RESOURCES
    assert pod.spec.containers[0].args[:3] == [
        "build",
        "--select",
        "fqn:shop.marts.finance.fin_marketing_roi",
    ]


def test_operator_uses_current_provider_parameters(pod_operator_build):
    result, dagbag = pod_operator_build
    task = _task(dagbag, result, META)
    assert task.on_finish_action.value == "delete_pod"
    assert (task.get_logs, task.log_events_on_failure, task.deferrable) == (True, True, False)
    assert task.startup_timeout_seconds == 300
    (file_name,) = [d.file_name for d in result.dags if d.dag_id == task.dag_id]
    source = (result.out_dir / file_name).read_text()
    assert "is_delete_operator_pod" not in source
    assert "from kubernetes.client import models as k8s" in source


# -- executor mode --------------------------------------------------------------------------


def _executor_pod(task):
    """The pod the KubernetesExecutor would launch for ``task`` (provider code, no cluster)."""
    import airflow.providers.cncf.kubernetes.kubernetes_executor_templates as templates
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    base = PodGenerator.deserialize_model_file(
        os.path.join(os.path.dirname(templates.__file__), "basic_template.yaml")
    )
    return PodGenerator.construct_pod(
        dag_id=task.dag_id,
        task_id=task.task_id,
        pod_id="fct-revenue-pod",
        try_number=1,
        kube_image="apache/airflow:3.3.2",
        date=None,
        args=["airflow", "tasks", "run", task.dag_id, task.task_id, "manual__1"],
        pod_override_object=task.executor_config["pod_override"],
        base_worker_pod=base,
        namespace="airflow",
        scheduler_job_id="1",
        run_id="manual__1",
    )


@pytest.fixture(scope="module")
def executor_task(executor_build):
    """fct_revenue's task as the scheduler sees it: after the DAG processor's serialization."""
    from airflow.serialization.serialized_objects import DagSerialization

    result, dagbag = executor_build
    task = _task(dagbag, result, META)
    dag = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags[task.dag_id]))
    return task, dag.get_task(task.task_id)


def test_executor_mode_is_the_bash_task_on_the_kubernetes_executor(executor_task):
    task, _ = executor_task
    assert type(task).__name__ == "BashOperator"
    assert task.executor == "KubernetesExecutor"
    assert "--select fqn:shop.marts.finance.fct_revenue " in task.bash_command
    assert [c.name for c in task.executor_config["pod_override"].spec.containers] == ["base"]


def test_executor_pod_carries_the_per_model_resources(executor_task):
    _, serialized = executor_task
    pod = _executor_pod(serialized)
    (base,) = [c for c in pod.spec.containers if c.name == "base"]
    assert {"requests": base.resources.requests, "limits": base.resources.limits} == (
        LARGE_RESOURCES
    )
    assert base.image == IMAGE
    assert base.args[:3] == ["airflow", "tasks", "run"]  # the executor's command survives
    assert pod.spec.node_selector == {"workload": "dbt"}
    assert [(t.key, t.value, t.effect) for t in pod.spec.tolerations] == [
        ("dedicated", "dbt", "NoSchedule")
    ]
    env = _env(base)
    assert env["DBT_THREADS"] == "8"
    assert env["DBT_WAREHOUSE_PASSWORD"] == ("secret", "shop-warehouse", "password")
    assert env["AIRFLOW_IS_K8S_EXECUTOR_POD"] == "True"
    assert pod.spec.service_account_name == "dbt-runner"
    assert "scratch" in {v.name for v in pod.spec.volumes}
    assert _affinity_keys(pod) == [ARCH]
    assert _sanitized(pod)["kind"] == "Pod"


def test_executor_mode_leaves_celery_tasks_alone(executor_build):
    result, dagbag = executor_build
    task = _task(dagbag, result, "model.shop.fct_orders")
    assert (task.queue, task.executor, task.executor_config) == ("dbt", None, {})


# -- mixed routes load in real Airflow ------------------------------------------------------


def _runner_of(task) -> str:
    """Where a parsed task will run, judged from the operator Airflow loaded."""
    if type(task).__name__ == "KubernetesPodOperator" or task.executor == "KubernetesExecutor":
        return "kubernetes"
    assert type(task).__name__ == "BashOperator" and task.queue == "dbt"
    return "celery"


@pytest.mark.parametrize("mode", ["pod_operator", "executor"])
def test_mixed_routes_load_and_serialize_without_errors(request, mode):
    from airflow.serialization.serialized_objects import DagSerialization

    result, dagbag = request.getfixturevalue(f"{mode}_build")
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dags) == sorted(d.dag_id for d in result.dags)
    expected = {(d.dag_id, t.task_id): t.route.runner for d in result.dags for t in d.tasks}
    assert set(expected.values()) == {"celery", "kubernetes"}
    assert {
        (dag.dag_id, task.task_id): _runner_of(task)
        for dag in dagbag.dags.values()
        for task in dag.tasks
    } == expected
    for dag in dagbag.dags.values():  # what the DAG processor does with each parsed DAG
        assert DagSerialization.from_dict(DagSerialization.to_dict(dag)).dag_id == dag.dag_id


def test_hostile_names_survive_as_pod_arguments(tmp_path):
    config = load_config(None, {"routing.force": "kubernetes", "routing.kubernetes.image": IMAGE})
    manifest = SHOP.parent / "hostile" / "manifest.json"
    result = build(manifest, tmp_path / "dags", config)
    dagbag = load_dagbag(result.out_dir)
    assert dagbag.import_errors == {}
    for spec in result.dags:
        dag = dagbag.dags[spec.dag_id]
        for task_spec in spec.tasks:
            task = dag.get_task(task_spec.task_id)
            rendered = task.render_template(task.arguments, {}, dag.get_template_env())
            assert rendered == list(task_spec.argv[1:])


@pytest.mark.parametrize("mode", ["pod_operator", "executor"])
def test_the_documented_config_builds_pods_airflow_loads(tmp_path, shop_manifest, mode):
    from airflow.executors import executor_loader

    config = load_config(
        DOCS_ROUTING_EXAMPLE,
        {"routing.kubernetes.mode": mode, "routing.executors": EXECUTORS.split(",")},
    )
    result = build(shop_manifest, tmp_path / "dags", config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__EXECUTOR", EXECUTORS)
        patch.setattr(executor_loader, "_executor_names", [])
        dagbag = load_dagbag(result.out_dir)
    assert dagbag.import_errors == {}
    task = _task(dagbag, result, META)
    if mode == "pod_operator":
        pod = task.build_pod_request_obj(context=None, dry_run=True)
    else:
        pod = _executor_pod(task)
    (container,) = [c for c in pod.spec.containers if c.name == "base"]
    assert container.resources.requests == {"cpu": "250m", "memory": "512Mi"}  # default_size
    mounts = {m.mount_path for m in container.volume_mounts}
    assert {"/scratch", "/secrets/gcp"} <= mounts
    assert _env(container)["DBT_PASSWORD"] == ("secret", "warehouse", "password")
    assert _affinity_keys(pod) == [ARCH]
    assert _sanitized(pod)["kind"] == "Pod"
