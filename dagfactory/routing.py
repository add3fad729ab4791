"""Stage 4: decide where each unit runs, and say why.

Precedence, first match wins:

1. a forced runner (``--runner`` / ``routing.force``)            reason "forced"
2. ``meta.dagfactory.runner`` on the node (celery | kubernetes)  reason "meta"
3. a tag listed in ``routing.kubernetes.tags``                   reason "tag heavy"
4. the observed run time (p95 or median of ``execution_time`` over the given
   run_results.json files) at or over ``routing.long_running_seconds``
                                                                 reason "p95 1,234 s ≥ 600 s"
5. ``routing.default``                                           reason "default"

A Kubernetes route also gets its pod settings here, so every mistake in them is found at
build time and names the node and the key: the config defaults, then a size tier (chosen by
``meta.dagfactory.size``, else by the run time against each size's ``min_seconds``, else
``routing.kubernetes.default_size``), then ``meta.dagfactory.pod`` (see ``_k8s``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from dagfactory import _k8s
from dagfactory._k8s import PodPolicy, pod_policy
from dagfactory.config import Config
from dagfactory.errors import ManifestError, RoutingError
from dagfactory.graph import DbtGraph
from dagfactory.manifest import Manifest, Node, RunTimes
from dagfactory.node_settings import RUNNERS

__all__ = ["RUNNERS", "Route", "route_node", "route_units"]

CELERY, KUBERNETES = RUNNERS


@dataclass(frozen=True, slots=True)
class Route:
    runner: str  # celery | kubernetes
    reason: str
    forced: bool = False
    #: size tier of a Kubernetes route, and why it was chosen ("meta", "p95 ...", "default")
    size: str | None = None
    size_reason: str | None = None
    #: merged, validated pod settings of a Kubernetes route (``_k8s`` normalised shape)
    pod: Mapping[str, Any] | None = field(default=None, compare=False)


def _format_seconds(seconds: float) -> str:
    if abs(seconds - round(seconds)) < 0.05:
        return f"{seconds:,.0f} s"
    return f"{seconds:,.1f} s"


def _observed(node: Node, config: Config, run_times: RunTimes) -> float | None:
    if config.routing.statistic == "median":
        return run_times.median(node.unique_id)
    return run_times.p95(node.unique_id)


def _compare(statistic: str, observed: float, threshold: float) -> str:
    return f"{statistic} {_format_seconds(observed)} ≥ {_format_seconds(threshold)}"


@lru_cache(maxsize=64)
def _shared_route(runner: str, reason: str, forced: bool = False) -> Route:
    """A route that holds nothing of its node, made once: thousands of units share each."""
    return Route(runner, reason, forced=forced)


def _decide(node: Node, config: Config, observed: float | None) -> Route:
    routing = config.routing
    if routing.force:
        return _shared_route(routing.force, "forced", forced=True)
    runner = node.settings.runner if node.settings else None
    if runner:
        return _shared_route(runner, "meta")
    for tag in routing.kubernetes.tags:
        if tag in node.tags:
            return _shared_route(KUBERNETES, f"tag {tag}")
    threshold = routing.long_running_seconds
    if threshold is not None and observed is not None and observed >= threshold:
        return Route(KUBERNETES, _compare(routing.statistic, observed, threshold))
    return _shared_route(routing.default, "default")


def _size(
    node: Node, config: Config, settings: PodPolicy, observed: float | None, path: str | None
) -> tuple[str | None, str | None]:
    size = node.settings.size if node.settings else None
    if size is not None:
        if size not in settings.sizes:
            # A meta.dagfactory mistake like any other, though only the config can tell.
            raise ManifestError(
                f"unknown size {size!r}; sizes in routing.kubernetes.sizes: "
                f"{', '.join(settings.sizes) or '(none)'}",
                path=path,
                unique_id=node.unique_id,
                key="meta.dagfactory.size",
            )
        return size, "meta"
    if observed is not None:
        for minimum, name in settings.thresholds:
            if observed >= minimum:
                return name, _compare(config.routing.statistic, observed, minimum)
    default = config.routing.kubernetes.default_size
    return (default, "default") if default else (None, None)


def _pod(node: Node, config: Config, settings: PodPolicy, size: str | None) -> dict[str, Any]:
    kubernetes = config.routing.kubernetes
    base = {"image": kubernetes.image, "namespace": kubernetes.namespace}
    own = (node.settings.pod if node.settings else None) or {}
    layers = [
        {k: v for k, v in base.items() if v is not None},
        settings.defaults,
        settings.sizes[size] if size else {},
        own,
    ]
    pod = _k8s.merge_layers(*layers)
    try:
        _k8s.check_merged(pod)
    except _k8s.PodSettingsError as exc:
        size_note = f" with size {size!r}" if size else ""
        raise RoutingError(
            f"{exc.message}{size_note}", unique_id=node.unique_id, key=f"pod.{exc.key}"
        ) from None
    if kubernetes.mode == "pod_operator" and not pod.get("image"):
        raise RoutingError(
            "routed to kubernetes, but no image is configured: set routing.kubernetes.image "
            "(or image in routing.kubernetes.pod, a size, or meta.dagfactory.pod)",
            unique_id=node.unique_id,
            key="routing.kubernetes.image",
        )
    return pod


def route_node(
    node: Node,
    config: Config,
    run_times: RunTimes,
    settings: PodPolicy | None = None,
    *,
    manifest_path: str | None = None,
) -> Route:
    """The route of one node, with size and pod settings when it goes to Kubernetes.

    The node's own ``meta.dagfactory`` was checked when the manifest was read.
    """
    settings = settings or pod_policy(config.routing.kubernetes)
    observed = _observed(node, config, run_times)
    route = _decide(node, config, observed)
    if route.runner != KUBERNETES:
        return route
    size, size_reason = _size(node, config, settings, observed, manifest_path)
    pod = _pod(node, config, settings, size)
    return Route(route.runner, route.reason, route.forced, size, size_reason, pod)


def route_units(
    graph: DbtGraph, manifest: Manifest, config: Config, run_times: RunTimes | None = None
) -> Mapping[str, Route]:
    run_times = run_times or RunTimes()
    settings = pod_policy(config.routing.kubernetes)  # checked by load_config already
    routes = {
        unit_id: route_node(
            manifest.nodes[unit_id], config, run_times, settings, manifest_path=manifest.path
        )
        for unit_id in sorted(graph.units)
    }
    return routes
