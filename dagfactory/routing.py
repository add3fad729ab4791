"""Stage 4: decide where each unit runs, and say why.

Precedence, first match wins: a forced runner (``--runner`` / ``routing.force``), then
``meta.dagfactory.runner`` on the node, then a routing tag from config, then the observed run
time from ``run_results.json`` against ``routing.long_running_seconds``, then
``routing.default``. Every decision carries a human-readable reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dagfactory.config import Config
from dagfactory.errors import RoutingError
from dagfactory.graph import DbtGraph
from dagfactory.manifest import Manifest, Node, RunTimes

__all__ = ["RUNNERS", "Route", "route_units"]

CELERY = "celery"
KUBERNETES = "kubernetes"
RUNNERS = (CELERY, KUBERNETES)


@dataclass(frozen=True, slots=True)
class Route:
    runner: str  # celery | kubernetes
    reason: str
    forced: bool = False


def _meta_runner(node: Node) -> str | None:
    settings = node.meta.get("dagfactory")
    if not isinstance(settings, dict) or "runner" not in settings:
        return None
    runner = settings["runner"]
    if runner not in RUNNERS:
        raise RoutingError(
            f"unknown runner {runner!r}; valid runners: {', '.join(RUNNERS)}",
            unique_id=node.unique_id,
            key="meta.dagfactory.runner",
        )
    return runner


def _format_seconds(seconds: float) -> str:
    return f"{seconds:,.0f} s"


def route_node(node: Node, config: Config, run_times: RunTimes) -> Route:
    routing = config.routing
    if routing.force:
        return Route(routing.force, "forced", forced=True)
    runner = _meta_runner(node)
    if runner:
        return Route(runner, "meta")
    for tag in routing.kubernetes.tags:
        if tag in node.tags:
            return Route(KUBERNETES, f"tag {tag}")
    if routing.long_running_seconds is not None:
        statistic = routing.statistic
        observed = (
            run_times.p95(node.unique_id)
            if statistic == "p95"
            else run_times.median(node.unique_id)
        )
        if observed is not None:
            threshold = routing.long_running_seconds
            if observed >= threshold:
                return Route(
                    KUBERNETES,
                    f"{statistic} {_format_seconds(observed)} ≥ {_format_seconds(threshold)}",
                )
    return Route(routing.default, "default")


def route_units(
    graph: DbtGraph, manifest: Manifest, config: Config, run_times: RunTimes | None = None
) -> Mapping[str, Route]:
    run_times = run_times or RunTimes()
    return {
        unit_id: route_node(manifest.nodes[unit_id], config, run_times)
        for unit_id in sorted(graph.units)
    }
