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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import networkx as nx

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

    The one owner of the graph library: later stages ask for parents, children, edges and
    orders, and never see a networkx object.
    """

    __slots__ = ("_dag", "units")

    def __init__(self, units: Mapping[str, Unit], dag: nx.DiGraph) -> None:
        self.units = units
        self._dag = dag  # nodes are unit ids (the primary unique_id)

    def upstream(self, unit_id: str) -> list[str]:
        """The units ``unit_id`` reads from, sorted."""
        return sorted(self._dag.predecessors(unit_id))

    def downstream(self, unit_id: str) -> list[str]:
        """The units that read from ``unit_id``, sorted."""
        return sorted(self._dag.successors(unit_id))

    def edges(self) -> list[tuple[str, str]]:
        return sorted(self._dag.edges())

    def topological_order(self, unit_ids: Iterable[str] | None = None) -> list[str]:
        """``unit_ids`` (default: all) upstream first, ties by id: the same order every run."""
        dag = self._dag if unit_ids is None else self._dag.subgraph(unit_ids)
        return list(nx.lexicographical_topological_sort(dag))


def _digraph(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(sorted(nodes))
    graph.add_edges_from(sorted(edges))
    return graph


def topological_order(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """Any small graph (groups, say) upstream first, ties by name."""
    return list(nx.lexicographical_topological_sort(_digraph(nodes, edges)))


def strongly_connected(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[set[str]]:
    """The sets of nodes that reach each other (each node alone when nothing is circular)."""
    return [set(c) for c in nx.strongly_connected_components(_digraph(nodes, edges))]


def cycle_of(edges: Iterable[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """The edges of one cycle among ``edges``, or None (groups, say)."""
    return _cycle(_digraph((), edges))


def _cycle(graph: nx.DiGraph) -> list[tuple[str, str]] | None:
    """The one acyclicity check of every graph here: a cycle's edges, or None."""
    if nx.is_directed_acyclic_graph(graph):
        return None
    return [(up, down) for up, down, *_ in nx.find_cycle(graph)]


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

    unit_ids = sorted(units)
    dag = nx.DiGraph()
    dag.add_nodes_from(unit_ids)
    dag.add_edges_from(
        (parent_id, unit_id) for unit_id in unit_ids for parent_id in sorted(task_parents(unit_id))
    )
    _check_acyclic(dag)
    return DbtGraph(units, dag)


def _check_acyclic(dag: nx.DiGraph) -> None:
    cycle = _cycle(dag)
    if cycle is None:
        return
    path = " -> ".join(one_line(up) for up in [up for up, _ in cycle] + [cycle[0][0]])
    raise GraphError(
        f"the dbt graph has a cycle: {path}; dbt itself would refuse to run it "
        "(`dbt ls` reports it too). Remove one of these refs.",
        unique_id=cycle[0][0],
    )
