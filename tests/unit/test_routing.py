"""Routing: where each task runs (Celery or its own Kubernetes pod), and why.

Precedence, first match wins: forced runner > ``meta.dagfactory.runner`` > a configured tag >
observed run time (run_results.json) > default. Kubernetes routes also get a size tier and
pod settings, checked at build time. Nodes come from the real sample manifest, where
``fct_revenue`` has ``meta.dagfactory.runner: kubernetes`` and tag ``heavy``,
``fin_marketing_roi`` has tag ``heavy`` and ``fct_orders`` has neither.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dagfactory import _k8s
from dagfactory.cli import cli
from dagfactory.config import load_config
from dagfactory.errors import ConfigError, ManifestError, RoutingError
from dagfactory.manifest import Manifest, Node, RunTimes, load_manifest
from dagfactory.node_settings import parse_node_settings
from dagfactory.pipeline import generate
from dagfactory.routing import Route, route_node

META = "model.shop.fct_revenue"  # meta runner kubernetes, tag heavy
TAGGED = "model.shop.fin_marketing_roi"  # tag heavy
PLAIN = "model.shop.fct_orders"  # neither

BASE = {
    "routing.kubernetes.image": "ghcr.io/example/shop-dbt:1.0",
    "routing.kubernetes.tags": ["heavy"],
    "routing.long_running_seconds": 600,
}


@pytest.fixture(scope="module")
def shop(shop_manifest: Path) -> Manifest:
    return load_manifest(shop_manifest)


def _config(**overrides: Any):
    """A config from dotted keys (``routing__force`` -> ``routing.force``) over BASE."""
    return load_config(None, {**BASE, **{k.replace("__", "."): v for k, v in overrides.items()}})


def _with_meta(node: Node, **dagfactory: Any) -> Node:
    """The node as the manifest would give it with this ``meta.dagfactory`` (checked)."""
    settings = parse_node_settings(dagfactory, path="manifest.json", unique_id=node.unique_id)
    return dataclasses.replace(
        node, meta={**node.meta, "dagfactory": dagfactory}, settings=settings
    )


def _route(shop: Manifest, unique_id: str, *, seconds=(), meta=None, **config) -> Route:
    node = shop.nodes[unique_id]
    if meta is not None:
        node = _with_meta(node, **meta)
    times = RunTimes({unique_id: tuple(seconds)}) if seconds else RunTimes()
    return route_node(node, _config(**config), times)


# -- precedence --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unique_id", "meta", "seconds", "config", "runner", "reason"),
    [
        (META, None, (5,), {}, "kubernetes", "meta"),
        (TAGGED, {"runner": "celery"}, (5000,), {}, "celery", "meta"),  # meta beats tag, time
        (TAGGED, None, (5,), {}, "kubernetes", "tag heavy"),
        (TAGGED, None, (5000,), {}, "kubernetes", "tag heavy"),  # tag beats time
        (
            TAGGED,
            None,
            (5000,),
            {"routing__kubernetes__tags": []},
            "kubernetes",
            "p95 5,000 s ≥ 600 s",
        ),
        (PLAIN, None, (1234,), {}, "kubernetes", "p95 1,234 s ≥ 600 s"),
        (PLAIN, None, (600,), {}, "kubernetes", "p95 600 s ≥ 600 s"),  # the threshold counts
        (PLAIN, None, (599.5,), {}, "celery", "default"),
        (PLAIN, None, (), {}, "celery", "default"),  # no timings at all
        (PLAIN, None, (5000,), {"routing__long_running_seconds": None}, "celery", "default"),
        (PLAIN, None, (5,), {"routing__default": "kubernetes"}, "kubernetes", "default"),
        (META, None, (5000,), {"routing__force": "celery"}, "celery", "forced"),
        (PLAIN, None, (), {"routing__force": "kubernetes"}, "kubernetes", "forced"),
    ],
    ids=[
        "meta-kubernetes",
        "meta-celery-beats-tag-and-time",
        "tag",
        "tag-beats-time",
        "time-when-tag-not-configured",
        "time-over-threshold",
        "time-at-threshold",
        "time-under-threshold",
        "no-timings",
        "timings-ignored-without-threshold",
        "default-kubernetes",
        "force-celery-beats-meta",
        "force-kubernetes",
    ],
)
def test_precedence(shop, unique_id, meta, seconds, config, runner, reason):
    route = _route(shop, unique_id, meta=meta, seconds=seconds, **config)
    assert (route.runner, route.reason) == (runner, reason)
    assert route.forced == (reason == "forced")


@pytest.mark.parametrize(
    ("statistic", "runner", "reason"),
    [("p95", "kubernetes", "p95 3,000 s ≥ 600 s"), ("median", "celery", "default")],
)
def test_one_slow_outlier_counts_for_p95_not_for_median(shop, statistic, runner, reason):
    # nine quick runs and one very slow one
    route = _route(shop, PLAIN, seconds=(10,) * 9 + (3000,), routing__statistic=statistic)
    assert (route.runner, route.reason) == (runner, reason)


def test_fractional_seconds_keep_a_decimal(shop):
    route = _route(shop, PLAIN, seconds=(2.5,), routing__long_running_seconds=1.5)
    assert route.reason == "p95 2.5 s ≥ 1.5 s"


# -- run_results.json through the whole build ----------------------------------------------


def _run_results(path: Path, seconds: dict[str, float], status: str = "success") -> Path:
    path.write_text(
        json.dumps(
            {
                "metadata": {
                    "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
                    "dbt_version": "1.11.0",
                },
                "results": [
                    {"unique_id": uid, "status": status, "execution_time": secs}
                    for uid, secs in sorted(seconds.items())
                ],
                "elapsed_time": sum(seconds.values()),
            }
        )
    )
    return path


def _kubernetes_tasks(result) -> dict[str, str]:
    return {
        task.unique_ids[0]: task.route.reason
        for dag in result.dags
        for task in dag.tasks
        if task.route.runner == "kubernetes"
    }


def test_run_results_send_exactly_the_slow_model_to_kubernetes(shop, shop_manifest, tmp_path):
    runnable = sorted(
        uid for uid, n in shop.nodes.items() if n.resource_type in ("model", "seed", "snapshot")
    )
    assert PLAIN in runnable
    files = []
    for run, slow in enumerate((1234.0, 1100.0, 900.0)):  # three nightly runs
        seconds = {uid: 3.0 + run for uid in runnable}
        seconds[PLAIN] = slow
        files.append(_run_results(tmp_path / f"run_results_{run}.json", seconds))
    config = _config()

    with_times = _kubernetes_tasks(generate(shop_manifest, config, run_results=files))
    without = _kubernetes_tasks(generate(shop_manifest, config))

    assert with_times == {META: "meta", TAGGED: "tag heavy", PLAIN: "p95 1,234 s ≥ 600 s"}
    assert without == {META: "meta", TAGGED: "tag heavy"}


def test_failed_runs_do_not_count_as_run_time(shop_manifest, tmp_path):
    errored = _run_results(tmp_path / "run_results.json", {PLAIN: 5000.0}, status="error")
    result = generate(shop_manifest, _config(), run_results=[errored])
    assert PLAIN not in _kubernetes_tasks(result)


# -- sizes and pod settings ---------------------------------------------------------------

SIZES = {
    "routing.kubernetes.sizes": {
        "small": {"container_resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}},
        "large": {
            "min_seconds": 1800,
            "container_resources": {"requests": {"cpu": "2", "memory": "8Gi"}},
        },
        "huge": {
            "min_seconds": 7200,
            "container_resources": {"requests": {"cpu": "8", "memory": "32Gi"}},
        },
    }
}


@pytest.mark.parametrize(
    ("meta", "seconds", "default_size", "size", "size_reason"),
    [
        ({"size": "small"}, (9000,), None, "small", "meta"),  # meta beats run time
        ({}, (2000,), None, "large", "p95 2,000 s ≥ 1,800 s"),
        ({}, (9000,), None, "huge", "p95 9,000 s ≥ 7,200 s"),  # the largest tier reached
        ({}, (700,), "small", "small", "default"),  # long enough for k8s, not for "large"
        ({}, (), "small", "small", "default"),
        ({}, (), None, None, None),  # no size: config pod defaults only
    ],
    ids=["meta", "run-time", "largest-reached", "below-every-tier", "default", "none"],
)
def test_size_tier(shop, meta, seconds, default_size, size, size_reason):
    overrides = {**SIZES, "routing.kubernetes.default_size": default_size}
    node = _with_meta(shop.nodes[META], runner="kubernetes", **meta)
    times = RunTimes({META: seconds}) if seconds else RunTimes()
    route = route_node(node, load_config(None, {**BASE, **overrides}), times)
    assert (route.size, route.size_reason) == (size, size_reason)
    requests = (route.pod or {}).get("container_resources", {}).get("requests")
    expected = load_config(None, overrides).routing.kubernetes.sizes.get(size or "", {})
    assert requests == (expected.get("container_resources") or {}).get("requests")


def test_pod_settings_merge_config_then_size_then_meta(shop):
    config = load_config(
        None,
        {
            **BASE,
            "routing.kubernetes.namespace": "dbt",
            "routing.kubernetes.pod": {
                "container_resources": {"requests": {"cpu": "500m"}, "limits": {"memory": "2Gi"}},
                "node_selector": {"pool": "dbt"},
                "labels": {"team": "shop"},
                "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                "env_vars": {"DBT_THREADS": 4},
            },
            "routing.kubernetes.sizes": {
                "large": {"container_resources": {"limits": {"memory": "8Gi"}}},
            },
        },
    )
    node = _with_meta(
        shop.nodes[META],
        size="large",
        pod={
            "container_resources": {"requests": {"memory": "6Gi"}},
            "tolerations": [{"key": "gpu", "operator": "Equal", "value": "yes"}],
            "node_selector": None,
            "env_vars": {"DBT_PROFILE": "prod"},
        },
    )
    pod = route_node(node, config, RunTimes()).pod
    assert pod == {
        "image": "ghcr.io/example/shop-dbt:1.0",
        "namespace": "dbt",
        "container_resources": {
            "requests": {"cpu": "500m", "memory": "6Gi"},  # mappings merge key by key
            "limits": {"memory": "8Gi"},  # the size beats the defaults
        },
        "labels": {"team": "shop"},
        "tolerations": [{"key": "gpu", "operator": "Equal", "value": "yes"}],  # lists replace
        "env_vars": {"DBT_THREADS": "4", "DBT_PROFILE": "prod"},  # YAML numbers become text
        # node_selector: removed by null in meta
    }


def test_meta_text_in_templated_pod_fields_renders_as_itself(shop):
    node = _with_meta(
        shop.nodes[META],
        pod={"env_vars": {"GREETING": "{{ ds }}"}, "annotations": {"note": "{% raw %}"}},
    )
    pod = route_node(node, _config(), RunTimes()).pod
    assert pod["env_vars"]["GREETING"] == "{{ '{' }}{{ '{' }} ds }}"
    assert pod["annotations"]["note"] == "{{ '{' }}% raw %}"


def test_config_text_may_use_airflow_templates(shop):
    config = _config(routing__kubernetes__pod={"env_vars": {"RUN_DATE": "{{ ds }}"}})
    assert route_node(shop.nodes[META], config, RunTimes()).pod["env_vars"]["RUN_DATE"] == (
        "{{ ds }}"
    )


# -- build-time validation ------------------------------------------------------------------


BAD_POD_SETTINGS = [
    (
        {"container_resources": {"limits": {"memory": "1GB"}}},
        "container_resources.limits.memory",
        "not a Kubernetes quantity",
    ),
    (
        {"container_resources": {"requests": {"cpu": "-1"}}},
        "container_resources.requests.cpu",
        "not a Kubernetes quantity",
    ),
    (
        {"container_resources": {"request": {"cpu": "1"}}},
        "container_resources.request",
        "did you mean 'requests'",
    ),
    ({"labels": {"team": "shop team"}}, "labels.team", "not a valid label value"),
    ({"labels": {"team": "x" * 64}}, "labels.team", "not a valid label value"),
    ({"labels": {"-team": "shop"}}, "labels.-team", "not a valid label key"),
    ({"node_selector": {"pool": "a/b"}}, "node_selector.pool", "not a valid label value"),
    ({"namespace": "DBT"}, "namespace", "not a valid namespace"),
    (
        {"service_account_name": "dbt_runner"},
        "service_account_name",
        "not a valid service account name",
    ),
    (
        {"secrets": [{"deploy_type": "env", "secret": "Warehouse"}]},
        "secrets[0].secret",
        "not a valid secret name",
    ),
    (
        {"secrets": [{"deploy_type": "file", "secret": "w"}]},
        "secrets[0].deploy_type",
        "not one of env, volume",
    ),
    ({"image_pull_secrets": ["reg cred"]}, "image_pull_secrets[0]", "not a valid secret name"),
    ({"tolerations": [{"key": "a", "effect": "NoRun"}]}, "tolerations[0].effect", "not one of"),
    (
        {"env_vars": {"1BAD NAME": "x"}},
        "env_vars.1BAD NAME",
        "not a valid environment variable",
    ),
    ({"volumes": [{"name": "data"}]}, "volumes[0]", "exactly one source"),
    (
        {"volume_mounts": [{"name": "data", "mountPath": "data"}]},
        "volume_mounts[0].mountPath",
        "absolute path",
    ),
    ({"resources": {}}, "resources", "did you mean 'container_resources'"),
    (
        {"volumes": [{"name": "data", "persistentVolumeClaim": {"readOnly": True}}]},
        "volumes[0].persistentVolumeClaim.claimName",
        "claimName is required here",
    ),
    (
        {"volumes": [{"name": "data", "hostPath": {"path": "data"}}]},
        "volumes[0].hostPath.path",
        "not an absolute path",
    ),
    (
        {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{}]}}},
        "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
        "topologyKey is required here",
    ),
    (
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "a", "operator": "Is"}]}
                        ]
                    }
                }
            }
        },
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0].matchExpressions[0].operator",
        "'Is' is not one of DoesNotExist, Exists, Gt, In, Lt, NotIn",
    ),
    ({"affinity": {"nodeAfinity": {}}}, "affinity.nodeAfinity", "did you mean 'nodeAffinity'"),
    ({"image": "ghcr.io/x y"}, "image", "not a valid image reference"),
]


@pytest.mark.parametrize(
    ("pod", "key", "message"), BAD_POD_SETTINGS, ids=[row[1] for row in BAD_POD_SETTINGS]
)
def test_bad_pod_settings_name_the_node_and_the_key(shop, pod, key, message):
    with pytest.raises(ManifestError, match=message) as info:
        _with_meta(shop.nodes[META], runner="kubernetes", pod=pod)
    assert info.value.unique_id == META
    assert info.value.key == f"meta.dagfactory.pod.{key}"


def test_bad_pod_settings_in_config_are_config_errors(shop_manifest):
    with pytest.raises(ConfigError, match="not a Kubernetes quantity") as info:
        generate(
            shop_manifest,
            _config(routing__kubernetes__pod={"container_resources": {"limits": {"cpu": "lots"}}}),
        )
    assert info.value.key == "routing.kubernetes.pod.container_resources.limits.cpu"


def test_bad_size_in_config_names_the_size(shop_manifest):
    sizes = {"large": {"min_seconds": 60, "node_selector": {"pool": "big pool"}}}
    with pytest.raises(ConfigError, match="not a valid label value") as info:
        generate(shop_manifest, _config(routing__kubernetes__sizes=sizes))
    assert info.value.key == "routing.kubernetes.sizes.large.node_selector.pool"


def test_a_mistake_in_meta_pod_shows_even_while_the_node_runs_on_celery(shop):
    with pytest.raises(ManifestError, match="not a valid label value"):  # read at load
        _with_meta(shop.nodes[PLAIN], pod={"labels": {"team": "shop team"}})


def test_a_kubernetes_route_without_an_image_is_an_error(shop_manifest):
    with pytest.raises(RoutingError, match="no image is configured") as info:
        generate(shop_manifest, _config(routing__kubernetes__image=None))
    assert info.value.unique_id == META  # the first node routed to kubernetes, by unique_id
    assert info.value.key == "routing.kubernetes.image"


def test_no_image_is_fine_when_nothing_goes_to_kubernetes(shop_manifest):
    result = generate(
        shop_manifest, _config(routing__kubernetes__image=None, routing__force="celery")
    )
    assert {t.route.runner for d in result.dags for t in d.tasks} == {"celery"}


def test_executor_mode_needs_no_image(shop_manifest):
    config = _config(routing__kubernetes__image=None, routing__kubernetes__mode="executor")
    result = generate(shop_manifest, config)
    assert _kubernetes_tasks(result) == {META: "meta", TAGGED: "tag heavy"}


@pytest.mark.parametrize(
    ("meta", "key", "message"),
    [
        (
            {"runner": "k8s"},
            "meta.dagfactory.runner",
            "unknown runner 'k8s'; valid runners: celery, kubernetes",
        ),
        ({"runner": "kubernetes", "size": "xl"}, "meta.dagfactory.size", "unknown size 'xl'"),
        ({"runner": "kubernetes", "pod": ["x"]}, "meta.dagfactory.pod", "expected a mapping"),
    ],
    ids=["unknown-runner", "unknown-size", "pod-not-a-mapping"],
)
def test_bad_meta_names_the_node_and_the_key(shop, meta, key, message):
    with pytest.raises(ManifestError, match=message) as info:
        route_node(
            _with_meta(shop.nodes[PLAIN], **meta), load_config(None, {**BASE, **SIZES}), RunTimes()
        )
    assert (info.value.unique_id, info.value.key) == (PLAIN, key)


def test_unknown_runner_in_config_is_a_config_error():
    with pytest.raises(ConfigError, match="'k8s' is not one of celery, kubernetes"):
        load_config(None, {"routing.default": "k8s"})


def test_executors_must_include_the_kubernetes_executor_in_executor_mode(shop_manifest):
    config = _config(routing__kubernetes__mode="executor", routing__executors=["CeleryExecutor"])
    with pytest.raises(ConfigError, match="KubernetesExecutor") as info:
        generate(shop_manifest, config)
    assert info.value.key == "routing.executors"


# -- forcing and the summary --------------------------------------------------------------


def _cli_build(shop_manifest: Path, out: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli, ["build", "--manifest", str(shop_manifest), "--out", str(out), *args]
    )
    assert result.exit_code == 0, result.output
    return result


def test_json_summary_shows_runner_and_reason_per_task(shop_manifest, tmp_path):
    summary = json.loads(_cli_build(shop_manifest, tmp_path / "out", "--format", "json").stdout)
    tasks = {t["unique_ids"][0]: t for d in summary["dags"] for t in d["tasks"]}
    assert summary["forced_runner"] is None
    # the sample's dagfactory.yml (beside dbt_project.yml) routes tag heavy to kubernetes
    assert (tasks[META]["runner"], tasks[META]["reason"]) == ("kubernetes", "meta")
    assert (tasks[TAGGED]["runner"], tasks[TAGGED]["reason"]) == ("kubernetes", "tag heavy")
    assert (tasks[PLAIN]["runner"], tasks[PLAIN]["reason"]) == ("celery", "default")


def test_runner_flag_forces_every_task_and_the_summary_says_so(shop_manifest, tmp_path):
    out = tmp_path / "out"
    summary = json.loads(
        _cli_build(shop_manifest, out, "--runner", "celery", "--format", "json").stdout
    )
    tasks = [t for d in summary["dags"] for t in d["tasks"]]
    assert summary["forced_runner"] == "celery"
    assert {(t["runner"], t["reason"]) for t in tasks} == {("celery", "forced")}
    text = _cli_build(shop_manifest, tmp_path / "out2", "--runner", "celery").stdout
    assert f"runners: celery {len(tasks)} (forced: celery)" in text
    assert "KubernetesPodOperator" not in "".join(p.read_text() for p in out.glob("*.py"))


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("500m", True),
        ("1Gi", True),
        ("1.5Gi", True),
        (2, True),  # YAML numbers
        (0.5, True),
        ("1e3", True),
        ("128974848", True),
        ("1GB", False),
        ("-1", False),
        ("1 Gi", False),
        ("", False),
        (True, False),
    ],
    ids=repr,
)
def test_kubernetes_quantities(value, valid):
    if valid:
        assert _k8s.quantity(value, "k") == str(value)
    else:
        with pytest.raises(_k8s.PodSettingsError, match="quantity"):
            _k8s.quantity(value, "k")


def test_cli_reports_a_missing_image_with_the_node_and_key(shop_manifest, tmp_path):
    empty = tmp_path / "dagfactory.yml"
    empty.write_text("routing: {kubernetes: {tags: [heavy]}}\n")
    result = CliRunner().invoke(
        cli,
        [
            "build",
            "--manifest",
            str(shop_manifest),
            "--out",
            str(tmp_path / "out"),
            "--config",
            str(empty),
        ],
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: node {META}, key 'routing.kubernetes.image': routed to kubernetes, "
        "but no image is configured: set routing.kubernetes.image (or image in "
        "routing.kubernetes.pod, a size, or meta.dagfactory.pod)"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", "0.5"),
        ("2", "2"),
        ("1Ki", "1024"),
        ("1.5Gi", "1610612736"),
        ("1k", "1000"),
        ("1e3", "1000"),
        ("250u", "0.00025"),
    ],
)
def test_quantity_values(text, value):
    from decimal import Decimal

    assert _k8s.quantity_value(text) == Decimal(value)


def test_a_request_over_its_limit_after_merging_is_an_error(shop):
    config = _config(
        routing__kubernetes__pod={"container_resources": {"limits": {"memory": "2Gi"}}},
        routing__kubernetes__sizes={
            "large": {"container_resources": {"requests": {"memory": "8Gi"}}}
        },
    )
    node = _with_meta(shop.nodes[META], size="large")
    with pytest.raises(
        RoutingError, match=r"request 8Gi is over the limit 2Gi.*size 'large'"
    ) as info:
        route_node(node, config, RunTimes())
    assert (info.value.unique_id, info.value.key) == (
        META,
        "pod.container_resources.requests.memory",
    )


def test_a_volume_mount_must_name_a_volume(shop):
    node = _with_meta(
        shop.nodes[META], pod={"volume_mounts": [{"name": "scratch", "mountPath": "/scratch"}]}
    )
    with pytest.raises(RoutingError, match="volume mount 'scratch' names no volume"):
        route_node(node, _config(), RunTimes())
