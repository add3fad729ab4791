"""Stage 3: group units into DAGs, and turn edges between groups into cross-DAG edges.

Strategies are resolved by name from :data:`STRATEGIES` (``group``, ``folder[:N]``,
``tag:<prefix>``, ``meta:<key>``). A strategy maps a node to a group key or ``None``; ``None``
falls back, in this order:

1. ``folder`` (for ``group``, ``tag`` and ``meta``): the node's first folder(s) under its
   resource folder (``models/``, ``seeds/``, ``snapshots/``); nodes of an installed package
   form one group named after the package; root-level models go to a group named after
   the project;
2. seeds and snapshots still without a key join the group of their consumers when all of
   them are in one group, else a group named ``seeds`` or ``snapshots``;
3. a test that is its own task joins the most downstream group among its parents (so it
   adds no edge that could close a cycle); a test with no task parent (a source test) goes
   to the first folder of the YAML file that defines it, else to a group named ``tests``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dagfactory.config import Config
from dagfactory.errors import ConfigError, GroupCycleError, one_line
from dagfactory.graph import DbtGraph, cycle_of, strongly_connected, topological_order
from dagfactory.manifest import Manifest, Node

__all__ = [
    "STRATEGIES",
    "GroupInfo",
    "Grouping",
    "default_strategy",
    "group_units",
    "resolve_strategy",
]

#: A grouping strategy: node -> group key, or None to fall back.
Strategy = Callable[[Node], "str | None"]


def _strategy_group(argument: str | None, manifest: Manifest) -> Strategy:
    if argument:
        raise ConfigError("the 'group' strategy takes no argument", key="group_by")
    return lambda node: node.group


def _strategy_folder(argument: str | None, manifest: Manifest) -> Strategy:
    depth = 1
    if argument:
        if not argument.isdigit() or int(argument) < 1:
            raise ConfigError(
                f"folder depth must be a positive integer, got {argument!r}", key="group_by"
            )
        depth = int(argument)
    return _folder_key(depth, manifest.project_name)


def _strategy_tag(argument: str | None, manifest: Manifest) -> Strategy:
    if not argument:
        raise ConfigError("the 'tag' strategy needs a prefix: tag:<prefix>", key="group_by")

    def by_tag(node: Node) -> str | None:
        for tag in node.tags:  # sorted, so the first match is deterministic
            if tag.startswith(argument) and len(tag) > len(argument):
                return tag[len(argument) :]
        return None

    return by_tag


def _strategy_meta(argument: str | None, manifest: Manifest) -> Strategy:
    if not argument:
        raise ConfigError("the 'meta' strategy needs a key: meta:<key>", key="group_by")

    def by_meta(node: Node) -> str | None:
        value = node.meta.get(argument)
        return str(value) if isinstance(value, (str, int)) and str(value) else None

    return by_meta


STRATEGIES: dict[str, Callable[[str | None, Manifest], Strategy]] = {
    "group": _strategy_group,
    "folder": _strategy_folder,
    "tag": _strategy_tag,
    "meta": _strategy_meta,
}


def _folders(path: str) -> tuple[str, ...]:
    """The folders a file path names: ``PurePosixPath(path).parent.parts``, made with string
    operations because two path objects per node were a tenth of a 5k-model grouping."""
    root = ""
    if path.startswith("/"):
        relative = path.lstrip("/")
        root = "//" if len(path) - len(relative) == 2 else "/"  # as POSIX (and pathlib) read it
        path = relative
    names = [name for name in path.split("/") if name and name != "."]
    return (root,) * bool(root) + tuple(names[:-1])


def _folder_key(depth: int, project_name: str) -> Strategy:
    def by_folder(node: Node) -> str | None:
        if node.package_name != project_name:
            return node.package_name
        folders = _folders(node.path.replace("\\", "/"))
        if not folders:
            return project_name if node.resource_type == "model" else None
        return "_".join(folders[:depth])

    return by_folder


def default_strategy(manifest: Manifest) -> str:
    return "group" if manifest.groups else "folder"


def resolve_strategy(spec: str, manifest: Manifest) -> Strategy:
    """``"folder:2"`` -> a strategy function, or a ConfigError listing the valid names."""
    name, _, argument = spec.partition(":")
    factory = STRATEGIES.get(name)
    if factory is None:
        valid = ", ".join(
            f"{n}" for n in ("group", "folder", "folder:N", "tag:<prefix>", "meta:<key>")
        )
        raise ConfigError(f"unknown grouping strategy {spec!r}; valid: {valid}", key="group_by")
    return factory(argument or None, manifest)


@dataclass(frozen=True)
class GroupInfo:
    name: str
    owner: str
    units: tuple[str, ...]  # unit ids, sorted


@dataclass(frozen=True)
class Grouping:
    strategy: str
    group_of: Mapping[str, str]  # unit id -> group name
    groups: Mapping[str, GroupInfo]  # sorted by name
    #: (upstream group, downstream group) -> the unit edges that cross between them
    cross_edges: Mapping[tuple[str, str], tuple[tuple[str, str], ...]]
    #: merged group name -> the groups it merges (``group_cycles: merge``)
    merged: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _assign_tasks(graph: DbtGraph, manifest: Manifest, strategy: Strategy) -> dict[str, str]:
    """Group every unit but the tests that are tasks of their own."""
    nodes = manifest.nodes
    fallback = _folder_key(1, manifest.project_name)
    group_of: dict[str, str] = {}
    pending: list[str] = []
    for unit_id, unit in graph.units.items():
        if unit.command == "test":
            continue
        node = nodes[unit_id]
        key = strategy(node) or fallback(node)
        if key is None:
            pending.append(unit_id)
        else:
            group_of[unit_id] = key
    # Seeds and snapshots without a key follow their consumers; walk downstream-first so
    # a seed read only by a snapshot sees the snapshot's group. Only the pending units need
    # an order among themselves (every other consumer has its group), so sort just those.
    order = graph.topological_order(pending)
    for unit_id in reversed(order):
        consumers = {group_of.get(child) for child in graph.downstream(unit_id)}
        consumers.discard(None)
        if len(consumers) == 1:
            group_of[unit_id] = consumers.pop()  # type: ignore[assignment]
        else:
            group_of[unit_id] = nodes[unit_id].resource_type + "s"
    return group_of


def _assign_tests(
    graph: DbtGraph,
    manifest: Manifest,
    strategy: Strategy,
    group_of: dict[str, str],
    crossing: Mapping[tuple[str, str], object],
) -> None:
    """Put each test task in the most downstream group among its parents.

    Any other choice could add an edge back to an upstream group and close a cycle.
    """
    order = topological_order(set(group_of.values()), crossing)
    rank = {g: i for i, g in enumerate(order)}
    tests = sorted(unit_id for unit_id, unit in graph.units.items() if unit.command == "test")
    for unit_id in tests:
        parents = [group_of[p] for p in graph.upstream(unit_id)]
        if parents:
            group_of[unit_id] = max(parents, key=lambda g: (rank[g], g))
        else:
            node = manifest.nodes[unit_id]
            group_of[unit_id] = strategy(node) or _defining_folder(node) or "tests"


def _defining_folder(node: Node) -> str | None:
    """First folder of the file that defines a test (``models/staging/_sources.yml``)."""
    folders = _folders(node.original_file_path.replace("\\", "/"))[1:]
    return folders[0] if folders else None


def _crossing(
    edges: list[tuple[str, str]], group_of: Mapping[str, str]
) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """The unit edges (``graph.edges()``, sorted) between groups, by (upstream, downstream)."""
    crossing: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for up, down in edges:
        if up in group_of and down in group_of and group_of[up] != group_of[down]:
            crossing.setdefault((group_of[up], group_of[down]), []).append((up, down))
    return crossing


def _merge_cycles(
    edges: list[tuple[str, str]], group_of: dict[str, str]
) -> dict[str, tuple[str, ...]]:
    """Merge every set of groups that depend on each other in a circle into one group."""
    merged: dict[str, tuple[str, ...]] = {}
    crossing = _crossing(edges, group_of)
    for component in strongly_connected(set(group_of.values()), crossing):
        if len(component) < 2:
            continue
        parts = tuple(sorted(component))
        name = "__".join(parts)
        merged[name] = parts
        for unit_id, group in group_of.items():
            if group in component:
                group_of[unit_id] = name
    return dict(sorted(merged.items()))


def _owner(
    group: str, merged: Mapping[str, tuple[str, ...]], manifest: Manifest, config: Config
) -> str:
    if group in merged and not config.groups.get(group):
        return ", ".join(
            dict.fromkeys(_owner(part, {}, manifest, config) for part in merged[group])
        )
    configured = config.groups.get(group)
    if configured and configured.owner:
        return configured.owner
    dbt_group = manifest.groups.get(group)
    if dbt_group and dbt_group.owner:
        return dbt_group.owner
    return default_owner(config)


def default_owner(config: Config) -> str:
    """The owner of a group nobody names: ``dag_defaults.default_args.owner`` (a global
    default written where Airflow reads it), else ``dag_defaults.owner``.

    Group owners (``groups.<g>.owner``, the dbt group's) beat both, and the DAG's
    ``default_args.owner`` and ``doc_md`` always name the same owner (docs/configuration.md).
    """
    owner = config.dag_defaults.default_args.get("owner")
    return owner if isinstance(owner, str) and owner else config.dag_defaults.owner


def group_units(graph: DbtGraph, manifest: Manifest, config: Config) -> Grouping:
    spec = config.group_by or default_strategy(manifest)
    strategy = resolve_strategy(spec, manifest)
    group_of = _assign_tasks(graph, manifest, strategy)
    edges = graph.edges()  # sorted once for every crossing below
    merged: dict[str, tuple[str, ...]] = {}
    if config.group_cycles == "merge":
        merged = _merge_cycles(edges, group_of)
    crossing = _crossing(edges, group_of)  # between the groups of every unit but test tasks
    if not merged:
        _check_acyclic({k: tuple(v) for k, v in sorted(crossing.items())})
    _assign_tests(graph, manifest, strategy, group_of, crossing)

    members: dict[str, list[str]] = {}
    for unit_id, group in group_of.items():
        members.setdefault(group, []).append(unit_id)
    groups = {
        name: GroupInfo(name, _owner(name, merged, manifest, config), tuple(sorted(units)))
        for name, units in sorted(members.items())
    }
    cross_edges = {k: tuple(v) for k, v in sorted(_crossing(edges, group_of).items())}
    _check_acyclic(cross_edges)  # holds by construction; a bug if it ever fires
    return Grouping(spec, group_of, groups, cross_edges, merged)


def _check_acyclic(cross_edges: Mapping[tuple[str, str], tuple[tuple[str, str], ...]]) -> None:
    cycle = cycle_of(cross_edges)
    if cycle is None:
        return
    path = [up for up, _ in cycle] + [cycle[0][0]]
    closing = [cross_edges[(up, down)][0] for up, down in cycle]
    lines = [f"groups depend on each other in a cycle: {' -> '.join(map(one_line, path))}"]
    for (up_group, down_group), (up, down) in zip(cycle, closing):
        names = map(one_line, (up_group, down_group, up, down))  # user text: one line each
        lines.append("  {} -> {}: {} -> {}".format(*names))
    lines.append(
        "Move one of these models to another group, or set `group_cycles: merge` "
        "to run the groups on the cycle as one DAG."
    )
    raise GroupCycleError("\n".join(lines), cycle=path, closing_edges=closing)
