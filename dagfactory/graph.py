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
import heapq
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dagfactory.errors import GraphError, one_line
from dagfactory.manifest import Manifest, Node

__all__ = [
    "DbtGraph",
    "Unit",
    "build_graph",
    "cycle_of",
    "dbt_selector",
    "fqn_prefixes",
    "strongly_connected",
    "topological_order",
]

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


class DbtGraph:
    """Units and the edges between them (upstream -> downstream), after pass-through.

    The one owner of the graph: later stages ask for parents, children, edges and orders, and
    never see how it is stored (sorted adjacency tuples; networkx only names a cycle).
    """

    __slots__ = ("_children", "_parents", "units")

    def __init__(self, units: Mapping[str, Unit], parents: Mapping[str, tuple[str, ...]]) -> None:
        self.units = units
        self._parents = parents  # unit id -> the unit ids it reads from, sorted
        children: dict[str, list[str]] = {unit_id: [] for unit_id in parents}
        for unit_id in sorted(parents):  # appended in order: every list comes out sorted
            for parent_id in parents[unit_id]:
                children[parent_id].append(unit_id)
        self._children = children

    def upstream(self, unit_id: str) -> list[str]:
        """The units ``unit_id`` reads from, sorted."""
        return list(self._parents[unit_id])

    def downstream(self, unit_id: str) -> list[str]:
        """The units that read from ``unit_id``, sorted."""
        return list(self._children[unit_id])

    def edges(self) -> list[tuple[str, str]]:
        return [(up, down) for up in sorted(self._children) for down in self._children[up]]

    def topological_order(self, unit_ids: Iterable[str] | None = None) -> list[str]:
        """``unit_ids`` (default: all) upstream first, ties by id: the same order every run."""
        if unit_ids is None:
            return _lexicographic_order(self._children)
        chosen = set(unit_ids)
        children = {u: [c for c in self._children[u] if c in chosen] for u in chosen}
        return _lexicographic_order(children)


def _adjacency(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {node: [] for node in nodes}
    for up, down in edges:
        children.setdefault(up, []).append(down)
        children.setdefault(down, [])
    return children


def _lexicographic_order(children: Mapping[str, list[str]]) -> list[str]:
    """Kahn's algorithm taking the smallest ready node first: the one topological order that
    is lexicographically smallest, whatever order the edges came in. A node on a cycle is
    never ready, so the order is short exactly when the graph is not acyclic."""
    indegree = dict.fromkeys(children, 0)
    for targets in children.values():
        for child in targets:
            indegree[child] += 1
    ready = [node for node, count in indegree.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, child)
    return order


def topological_order(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """Any small graph (groups, say) upstream first, ties by name."""
    children = _adjacency(nodes, edges)
    order = _lexicographic_order(children)
    if len(order) < len(children):
        raise ValueError("graph has a cycle: no topological order")
    return order


def strongly_connected(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[set[str]]:
    """The sets of nodes that reach each other (each node alone when nothing is circular)."""
    children = _adjacency(nodes, edges)
    if len(_lexicographic_order(children)) == len(children):
        return [{node} for node in children]  # acyclic: no need for networkx
    import networkx as nx

    return [set(c) for c in nx.strongly_connected_components(_nx_graph(sorted(children), children))]


def cycle_of(edges: Iterable[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """The edges of one cycle among ``edges``, or None (groups, say)."""
    return _cycle(_adjacency((), edges), ())


def _cycle(children: Mapping[str, list[str]], nodes: Iterable[str]) -> list[tuple[str, str]] | None:
    """The one acyclicity check of every graph here: a cycle's edges, or None.

    An acyclic graph (every build that succeeds) is checked by the sort alone; networkx,
    whose import costs ~0.15 s, is loaded only to name the cycle of a graph that has one.
    """
    if len(_lexicographic_order(children)) == len(children):
        return None
    import networkx as nx

    return [(up, down) for up, down, *_ in nx.find_cycle(_nx_graph(nodes, children))]


def _nx_graph(nodes: Iterable[str], children: Mapping[str, list[str]]) -> Any:
    """A networkx graph of ``nodes``, then every edge, sorted: the order its searches start
    from, so the cycle it names is the same every run."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(sorted((up, down) for up, targets in children.items() for down in targets))
    return graph


def fqn_prefixes(manifest: Manifest) -> frozenset[tuple[str, ...]]:
    """Every strict prefix of every node's fqn: the "folders" an fqn: selector would match."""
    prefixes: set[tuple[str, ...]] = set()
    # Nodes share their folders: walk each distinct parent path once, longest prefix first.
    for parent in {node.fqn[:-1] for node in manifest.nodes.values()}:
        for k in range(len(parent), 0, -1):
            prefix = parent[:k]
            if prefix in prefixes:
                break  # and so are its own prefixes, added with it
            prefixes.add(prefix)
    return frozenset(prefixes)


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


def build_graph(manifest: Manifest) -> DbtGraph:
    nodes = manifest.nodes
    # What each node is, asked once: the walks below ask it of every parent of every unit.
    task_nodes: list[Node] = []  # a unit of its own: not a test, not an ephemeral model
    test_nodes: list[Node] = []
    tasks: set[str] = set()
    tests: set[str] = set()
    ephemeral: set[str] = set()
    for unique_id, node in nodes.items():
        if node.is_test:
            test_nodes.append(node)
            tests.add(unique_id)
        elif node.is_ephemeral:
            ephemeral.add(unique_id)
        else:
            task_nodes.append(node)
            tasks.add(unique_id)

    def task_parents(unique_id: str) -> set[str]:
        """Task nodes that ``unique_id`` reads from, looking through ephemeral models."""
        depends_on = nodes[unique_id].depends_on
        if ephemeral.isdisjoint(depends_on):  # most nodes: no walk, one set operation
            found = tasks.intersection(depends_on)
            found.discard(unique_id)
            return found
        # Iterative walk: long ephemeral chains must not hit the recursion limit.
        stack, seen, found = [unique_id], {unique_id}, set()
        while stack:
            for parent_id in nodes[stack.pop()].depends_on:
                if parent_id in seen or parent_id not in nodes:
                    continue  # a node seen already, a source or a disabled node
                seen.add(parent_id)
                if parent_id in ephemeral:
                    stack.append(parent_id)
                elif parent_id not in tests:
                    found.add(parent_id)
        return found

    attached: dict[str, list[str]] = {}
    own_tests: list[Node] = []
    for node in test_nodes:
        parents = node.depends_on
        if len(parents) == 1 and parents[0] in tasks:
            attached.setdefault(parents[0], []).append(node.unique_id)
        else:
            own_tests.append(node)

    units: dict[str, Unit] = {}
    prefixes = fqn_prefixes(manifest)
    for node in task_nodes:
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

    upstream_of = {unit_id: tuple(sorted(task_parents(unit_id))) for unit_id in sorted(units)}
    graph = DbtGraph(units, upstream_of)
    _check_acyclic(graph._children, sorted(units))
    return graph


def _check_acyclic(children: Mapping[str, list[str]], nodes: list[str]) -> None:
    cycle = _cycle(children, nodes)
    if cycle is None:
        return
    path = " -> ".join(one_line(up) for up in [up for up, _ in cycle] + [cycle[0][0]])
    raise GraphError(
        f"the dbt graph has a cycle: {path}; dbt itself would refuse to run it "
        "(`dbt ls` reports it too). Remove one of these refs.",
        unique_id=cycle[0][0],
    )
