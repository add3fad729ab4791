"""Stage 2: the dbt graph as units of work, one per future Airflow task.

A *unit* is what one task runs:

* a model (not ephemeral), seed or snapshot, together with the tests whose only parent it is
  (``dbt build --select <node> --indirect-selection cautious`` runs exactly those);
* a test whose parents are anything else (several nodes, a source, an ephemeral model): it
  becomes its own ``dbt test`` unit that runs after every unit it reads from.

Ephemeral models are compiled into their consumers, so they are not units: their upstream
edges pass through to their downstream nodes. Sources are inputs, not units. Disabled nodes
never reach this stage (``manifest`` drops them).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

from dagfactory.errors import GraphError
from dagfactory.manifest import Manifest, Node

__all__ = ["DbtGraph", "Unit", "build_graph", "dbt_selector", "fqn_prefixes"]

_WHITESPACE = re.compile(r"\s")

BUILD = "build"
TEST = "test"


@dataclass(frozen=True, slots=True)
class Unit:
    """One future task: a primary node and the single-parent tests that run with it."""

    unique_id: str  # the primary node
    resource_type: str
    command: str  # "build" or "test"
    selector: str
    members: tuple[str, ...]  # primary first, then attached tests (sorted)


@dataclass(frozen=True)
class DbtGraph:
    """Units and the edges between them (upstream -> downstream), after pass-through."""

    units: Mapping[str, Unit]
    dag: nx.DiGraph  # nodes are unit ids (the primary unique_id)

    def upstream(self, unit_id: str) -> list[str]:
        return sorted(self.dag.predecessors(unit_id))

    def edges(self) -> list[tuple[str, str]]:
        return sorted(self.dag.edges())


def fqn_prefixes(manifest: Manifest) -> frozenset[tuple[str, ...]]:
    """Every strict prefix of every node's fqn: the "folders" an fqn: selector would match."""
    return frozenset(
        node.fqn[:k] for node in manifest.nodes.values() for k in range(1, len(node.fqn))
    )


def dbt_selector(
    node: Node, manifest: Manifest, prefixes: frozenset[tuple[str, ...]] | None = None
) -> str:
    """A selector that picks exactly ``node``.

    Its fully qualified name (``fqn:``) matches on the whole path (package, folders, name,
    version), so models of the same name in other packages or folders never collide. dbt
    splits ``--select`` on whitespace, so a name or folder with a space is selected by its
    file instead (``path:`` globs, and ``?`` stands for the space).
    """
    fqn = ".".join(node.fqn)
    # fqn: also selects nodes *under* it, e.g. models in a folder named like this model.
    shadowed = node.fqn in (fqn_prefixes(manifest) if prefixes is None else prefixes)
    if not _WHITESPACE.search(fqn) and not shadowed:
        return "fqn:" + fqn
    pattern = _WHITESPACE.sub("?", node.original_file_path)
    matches = [
        other.unique_id
        for other in manifest.nodes.values()
        if fnmatch.fnmatchcase(other.original_file_path, pattern)
    ]
    if node.is_test or node.package_name != manifest.project_name or matches != [node.unique_id]:
        raise GraphError(
            f"cannot select this node exactly: its fully qualified name {fqn!r} holds "
            "whitespace (dbt splits --select on it) or is also a folder of other nodes; "
            "rename the file or folder",
            unique_id=node.unique_id,
            key="fqn",
        )
    return "path:" + pattern


def _is_task_node(node: Node | None) -> bool:
    return node is not None and not node.is_test and not node.is_ephemeral


def build_graph(manifest: Manifest) -> DbtGraph:
    nodes = manifest.nodes
    resolved: dict[str, frozenset[str]] = {}

    def task_parents(unique_id: str) -> frozenset[str]:
        """Task nodes that ``unique_id`` reads from, looking through ephemeral models."""
        if unique_id in resolved:
            return resolved[unique_id]
        # Iterative walk: long ephemeral chains must not hit the recursion limit.
        stack, seen, found = [unique_id], {unique_id}, set()
        while stack:
            current = stack.pop()
            for parent_id in nodes[current].depends_on:
                parent = nodes.get(parent_id)
                if parent is None or parent_id in seen:
                    continue  # a source, a disabled node or a node seen already
                seen.add(parent_id)
                if parent.is_ephemeral:
                    stack.append(parent_id)
                elif not parent.is_test:
                    found.add(parent_id)
        resolved[unique_id] = frozenset(found)
        return resolved[unique_id]

    attached: dict[str, list[str]] = {}
    own_tests: list[Node] = []
    for node in nodes.values():
        if not node.is_test:
            continue
        parents = node.depends_on
        if len(parents) == 1 and _is_task_node(nodes.get(parents[0])):
            attached.setdefault(parents[0], []).append(node.unique_id)
        else:
            own_tests.append(node)

    units: dict[str, Unit] = {}
    prefixes = fqn_prefixes(manifest)
    for node in nodes.values():
        if _is_task_node(node):
            members = (node.unique_id, *sorted(attached.get(node.unique_id, ())))
            units[node.unique_id] = Unit(
                node.unique_id,
                node.resource_type,
                BUILD,
                dbt_selector(node, manifest, prefixes),
                members,
            )
    for node in own_tests:
        units[node.unique_id] = Unit(
            node.unique_id,
            node.resource_type,
            TEST,
            dbt_selector(node, manifest, prefixes),
            (node.unique_id,),
        )

    dag = nx.DiGraph()
    dag.add_nodes_from(sorted(units))
    for unit_id in sorted(units):
        for parent_id in sorted(task_parents(unit_id)):
            dag.add_edge(parent_id, unit_id)
    _check_acyclic(dag)
    return DbtGraph(units=units, dag=dag)


def _check_acyclic(dag: nx.DiGraph) -> None:
    if nx.is_directed_acyclic_graph(dag):
        return
    cycle = nx.find_cycle(dag)
    path = " -> ".join([up for up, _ in cycle] + [cycle[0][0]])
    raise GraphError(
        f"the dbt graph has a cycle: {path}; dbt itself would refuse to run it "
        "(`dbt ls` reports it too). Remove one of these refs.",
        unique_id=cycle[0][0],
    )
