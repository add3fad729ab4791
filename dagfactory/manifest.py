"""Stage 1: read dbt artifacts into small typed objects.

This is the only module that reads raw JSON (``dbt_slices`` hands parts of dbt's own JSON
back to dbt, untouched, through :func:`load_manifest_with_json`). It reads the few fields later
stages need, normalises the odd shapes dbt has written over the years (a tag given as a
string, seeds with no ``depends_on.nodes``, no ``group``/``version`` before dbt 1.5) and
drops the raw dicts, so the rest of the pipeline works on frozen dataclasses.
"""

from __future__ import annotations

import gc
import hashlib
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from dagfactory.errors import ManifestError, UnsupportedSchemaError, one_line
from dagfactory.node_settings import NodeSettings, parse_node_settings

__all__ = [
    "MAX_META_DEPTH",
    "MAX_SCHEMA_VERSION",
    "MIN_SCHEMA_VERSION",
    "DbtGroup",
    "Manifest",
    "Node",
    "RunTimes",
    "load_manifest",
    "load_manifest_with_json",
    "load_run_results",
]

MIN_SCHEMA_VERSION = 4  # dbt 1.0
MAX_SCHEMA_VERSION = 12  # dbt 1.8 to 1.11

#: Resource types that become (part of) Airflow tasks. Everything else in ``nodes``
#: (analyses, operations, rpc/sql nodes) is not run by ``dbt build`` as a node of its own.
RUNNABLE_TYPES = frozenset({"model", "seed", "snapshot", "test", "unit_test"})
#: Resource types that check another node rather than build something.
TEST_TYPES = frozenset({"test", "unit_test"})

_SCHEMA_RE = re.compile(r"/manifest/v(\d+)\.json$")


@dataclass(frozen=True, slots=True)
class Node:
    """A dbt node as dagfactory needs it: identity, place in the project and dependencies."""

    unique_id: str
    resource_type: str  # model | seed | snapshot | test | unit_test
    name: str
    package_name: str
    path: str  # relative to the resource's root folder (models/, seeds/, ...)
    original_file_path: str
    fqn: tuple[str, ...]
    depends_on: tuple[str, ...]  # unique_ids of nodes and sources, sorted
    materialized: str
    tags: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    group: str | None = None
    version: str | None = None
    description: str = ""
    #: ``meta.dagfactory``, checked once here; later stages read only this
    settings: NodeSettings | None = None

    @property
    def is_test(self) -> bool:
        return self.resource_type in TEST_TYPES

    @property
    def is_ephemeral(self) -> bool:
        return self.resource_type == "model" and self.materialized == "ephemeral"


@dataclass(frozen=True, slots=True)
class DbtGroup:
    """A dbt ``group`` with its owner (dbt 1.5+)."""

    name: str
    owner_name: str | None = None
    owner_email: str | None = None

    @property
    def owner(self) -> str | None:
        return self.owner_name or self.owner_email


@dataclass(frozen=True, slots=True)
class Manifest:
    path: str
    schema_version: int
    dbt_version: str
    project_name: str
    nodes: Mapping[str, Node]  # enabled, runnable nodes by unique_id
    sources: frozenset[str]
    groups: Mapping[str, DbtGroup]


@dataclass(frozen=True, slots=True)
class RunTimes:
    """Observed ``execution_time`` samples per node, from one or more run_results.json."""

    samples: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def median(self, unique_id: str) -> float | None:
        values = self.samples.get(unique_id)
        return statistics.median(values) if values else None

    def p95(self, unique_id: str) -> float | None:
        values = self.samples.get(unique_id)
        if not values:
            return None
        ordered = sorted(values)
        # nearest-rank p95: robust to one slow outlier when there are many runs
        rank = max(1, -(-95 * len(ordered) // 100))
        return ordered[rank - 1]


def _read_json(path: Path, what: str) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ManifestError(f"{what} not found", path=str(path)) from exc
    except OSError as exc:
        raise ManifestError(f"cannot read {what}: {exc.strerror}", path=str(path)) from exc
    # Loading a large manifest allocates millions of small objects; the cyclic GC would
    # rescan them over and over for nothing (none of them form cycles), so pause it.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{what} is not valid JSON: {exc}", path=str(path)) from exc
    finally:
        if enabled:
            gc.enable()


def _schema_version(metadata: Mapping[str, Any], path: Path) -> int:
    url = metadata.get("dbt_schema_version")
    match = _SCHEMA_RE.search(url) if isinstance(url, str) else None
    if not match:
        raise UnsupportedSchemaError(
            f"unknown manifest schema {url!r} in metadata.dbt_schema_version; "
            "is this a dbt manifest.json?",
            path=str(path),
            key="metadata.dbt_schema_version",
        )
    version = int(match.group(1))
    if version < MIN_SCHEMA_VERSION:
        raise UnsupportedSchemaError(
            f"manifest schema v{version} (dbt {metadata.get('dbt_version', '?')}) is too old: "
            f"dagfactory reads v{MIN_SCHEMA_VERSION} to v{MAX_SCHEMA_VERSION} (dbt 1.0 and later). "
            "Upgrade the project to dbt 1.x and run `dbt parse` to write a new manifest.",
            path=str(path),
            key="metadata.dbt_schema_version",
        )
    if version > MAX_SCHEMA_VERSION:
        raise UnsupportedSchemaError(
            f"manifest schema v{version} (dbt {metadata.get('dbt_version', '?')}) is newer than "
            f"this dagfactory understands (v{MIN_SCHEMA_VERSION} to v{MAX_SCHEMA_VERSION}). "
            "Upgrade dagfactory.",
            path=str(path),
            key="metadata.dbt_schema_version",
        )
    return version


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


#: ``meta`` deeper than this is refused: no dbt project nests settings this far, and deeper
#: values would only reach recursion limits in later stages
MAX_META_DEPTH = 32
#: manifest sections whose ids a node may depend on (besides ``nodes`` and ``sources``)
_DEPENDABLE_SECTIONS = ("unit_tests", "disabled", "semantic_models", "metrics", "saved_queries")


def _json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's words, for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    return "a list" if isinstance(value, list) else "an object"


def _bad(path: Path, unique_id: str, key: str, wanted: str, value: Any) -> ManifestError:
    return ManifestError(
        f"{key} must be {wanted}, got {_json_kind(value)}",
        path=str(path),
        unique_id=unique_id,
        key=key,
    )


def _text(raw: Mapping[str, Any], key: str, path: Path, unique_id: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(path, unique_id, key, "a non-empty string", value)
    return value


def _optional_text(value: Any, key: str, path: Path, unique_id: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _bad(path, unique_id, key, "a string or null", value)


def _strings(value: Any, key: str, path: Path, unique_id: str) -> tuple[str, ...]:
    """A list of strings (``None`` is empty); a lone string is one item, as dbt allows for tags."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise _bad(path, unique_id, key, "a list of strings", value)


_NO_TAGS: tuple[Any, ...] = (None, [], "")  # what a node without tags holds
_STR_ONLY = {str}
_TEXT_OR_NONE = frozenset({str, type(None)})
#: the optional text fields of a node, in the order ``_node`` reads them
_OPTIONAL_TEXT_KEYS = (
    "group",
    "config.group",
    "path",
    "original_file_path",
    "config.materialized",
    "description",
)


def _all_text(items: list[Any]) -> bool:
    """Every item a ``str``: one C-level pass, for the ~40k id lists of a 5k-model manifest."""
    return not items or {*map(type, items)} == _STR_ONLY


def _object(value: Any, key: str, path: Path, unique_id: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise _bad(path, unique_id, key, "an object", value)


def _check_depth(value: Any, key: str, path: Path, unique_id: str) -> None:
    """Refuse nesting deeper than :data:`MAX_META_DEPTH`, without recursing to measure it."""
    level = [value]
    for _ in range(MAX_META_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, (dict, list))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return
    raise ManifestError(
        f"{key} is nested more than {MAX_META_DEPTH} levels deep",
        path=str(path),
        unique_id=unique_id,
        key=key,
    )


def _depends_on(raw: Mapping[str, Any], path: Path, unique_id: str) -> tuple[str, ...]:
    depends_on = raw.get("depends_on")
    if type(depends_on) is not dict:
        depends_on = _object(depends_on, "depends_on", path, unique_id)
    nodes = depends_on.get("nodes")
    if nodes is None:  # seeds have depends_on.macros only
        return ()
    if type(nodes) is not list or not _all_text(nodes):
        raise _bad(path, unique_id, "depends_on.nodes", "a list of node ids", nodes)
    if unique_id in nodes:
        raise ManifestError(
            "the node depends on itself", path=str(path), unique_id=unique_id,
            key="depends_on.nodes",
        )  # fmt: skip
    return tuple(nodes) if len(nodes) < 2 else tuple(sorted(set(nodes)))


def _check_parents(nodes: Mapping[str, Node], known: frozenset[str], path: Path) -> None:
    """Every ``depends_on.nodes`` id must be defined somewhere in the manifest: a missing
    parent would silently drop an edge and run the node in the wrong order."""
    for unique_id, node in nodes.items():
        for parent in node.depends_on:
            if parent not in known:
                raise ManifestError(
                    f"depends on {one_line(parent)!r}, which the manifest does not define",
                    path=str(path),
                    unique_id=unique_id,
                    key="depends_on.nodes",
                )


#: ``Node``'s slots and their setters. A frozen dataclass's ``__init__`` sets each field
#: through ``object.__setattr__``: 4.4 us of the ~14 us a node took to extract
_NODE_SLOTS = tuple((f.name, Node.__dict__[f.name].__set__) for f in fields(Node))


def _new_node(**values: Any) -> Node:
    """``Node(**values)`` for the ~16k nodes of a 5k-model manifest, in half the time: the
    slots are set directly. Every field must be given (no defaults apply here)."""
    node = object.__new__(Node)
    for name, set_slot in _NODE_SLOTS:
        set_slot(node, values[name])
    return node


def _node(raw: Mapping[str, Any], path: Path, key: str) -> Node | None:
    """A runnable, enabled node, every field it uses checked: a malformed one is an error
    naming the node and the field, never a silently dropped edge or a traceback.

    A 5k-model manifest has ~16k of these, so each check is a type test on the common shape
    first; anything else goes through the checking helpers, which raise the error."""
    get = raw.get
    resource_type = get("resource_type")
    if resource_type not in RUNNABLE_TYPES:
        return None
    unique_id = get("unique_id")
    if unique_id != key:
        what = "has no unique_id" if unique_id is None else "has a different unique_id"
        raise ManifestError(
            f"the node {what} (its key in the manifest is its unique_id)",
            path=str(path), unique_id=key, key="unique_id",
        )  # fmt: skip
    config = get("config")
    if type(config) is not dict:
        config = _object(config, "config", path, unique_id)
    config_get = config.get
    if config_get("enabled") is False:
        return None
    name = get("name")
    if type(name) is not str or not name:
        name = _text(raw, "name", path, unique_id)
    package_name = get("package_name")
    if type(package_name) is not str or not package_name:
        package_name = _text(raw, "package_name", path, unique_id)
    depends = _depends_on(raw, path, unique_id)
    # Tags and meta live both on the node and in its config depending on the dbt version;
    # the node-level values win (dbt copies config into them since 1.x).
    node_tags, config_tags = get("tags"), config_get("tags")
    if node_tags or config_tags:
        node_tags = _strings(node_tags, "tags", path, unique_id)
        config_tags = _strings(config_tags, "config.tags", path, unique_id)
        tags: tuple[str, ...] = tuple(sorted(set(node_tags) | set(config_tags)))
    elif node_tags in _NO_TAGS and config_tags in _NO_TAGS:
        tags = ()
    else:  # a 0 or {}: the helper names the field
        _strings(node_tags, "tags", path, unique_id)
        _strings(config_tags, "config.tags", path, unique_id)
        tags = ()
    node_meta, config_meta = get("meta"), config_get("meta")
    if type(node_meta) is not dict:
        node_meta = _object(node_meta, "meta", path, unique_id)
    if type(config_meta) is not dict:
        config_meta = _object(config_meta, "config.meta", path, unique_id)
    meta = {**config_meta, **node_meta} if config_meta else node_meta
    if meta:
        _check_depth(meta, "meta", path, unique_id)
    dagfactory = meta.get("dagfactory")
    settings = (
        None
        if dagfactory is None
        else parse_node_settings(dagfactory, path=str(path), unique_id=unique_id)
    )
    version = get("version")
    if not (version is None or isinstance(version, (str, int, float))):
        raise _bad(path, unique_id, "version", "a string or number", version)
    texts = (
        get("group"),
        config_get("group"),
        get("path"),
        get("original_file_path"),
        config_get("materialized"),
        get("description"),
    )
    if not _TEXT_OR_NONE.issuperset(map(type, texts)):  # one C-level test of six fields
        for value, text_key in zip(texts, _OPTIONAL_TEXT_KEYS, strict=True):
            _optional_text(value, text_key, path, unique_id)
    group, config_group, file_path, original, materialized, description = texts
    group = group or config_group
    original = original or file_path or ""
    fqn = get("fqn")
    if type(fqn) is list and fqn and _all_text(fqn):
        fqn = tuple(fqn)
    else:
        fqn = _strings(fqn, "fqn", path, unique_id) or (package_name, name)
    return _new_node(
        unique_id=unique_id,
        resource_type=resource_type,
        name=name,
        package_name=package_name,
        path=file_path or original,
        original_file_path=original,
        fqn=fqn,
        depends_on=depends,
        materialized=materialized or "",
        tags=tags,
        meta=meta,
        group=group or None,
        version=None if version is None else str(version),
        description=description or "",
        settings=settings,
    )


def _project_name(metadata: Mapping[str, Any], nodes: Iterable[Node]) -> str:
    name = metadata.get("project_name")
    if isinstance(name, str) and name:
        return name
    # Before dbt 1.6 the manifest names the project only by md5(project_name); find the
    # package whose name hashes to it, else the package that owns most nodes.
    packages = Counter(node.package_name for node in nodes)
    project_id = metadata.get("project_id")
    if isinstance(project_id, str):
        for package in sorted(packages):
            if hashlib.md5(package.encode()).hexdigest() == project_id:
                return package
    if packages:
        return sorted(packages.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    return "dbt"


def _groups(raw_groups: Any) -> dict[str, DbtGroup]:
    groups = {}
    for raw in _mapping(raw_groups).values():
        if not isinstance(raw, dict) or not raw.get("name"):
            continue
        owner = _mapping(raw.get("owner"))
        groups[str(raw["name"])] = DbtGroup(
            name=str(raw["name"]),
            owner_name=str(owner["name"]) if owner.get("name") else None,
            owner_email=str(owner["email"]) if owner.get("email") else None,
        )
    return dict(sorted(groups.items()))


#: Where raw JSON is parked instead of freed, once :func:`keep_raw_json_until_exit` was called
_kept_until_exit: list[Any] | None = None


def keep_raw_json_until_exit() -> None:
    """Park each manifest's raw JSON for the rest of the process instead of freeing it.

    For a process that ends with ``os._exit`` right after the build (the console script):
    freeing a 47 MB manifest's ~1.5 M objects one by one is ~0.08 s of a 5k-model build,
    work the end of the process does at once. It keeps ~10% more memory at the peak.
    """
    global _kept_until_exit
    if _kept_until_exit is None:
        _kept_until_exit = []


def load_manifest(path: str | Path) -> Manifest:
    """Read ``manifest.json`` (dbt schema v4 to v12) into a :class:`Manifest`."""
    return load_manifest_with_json(path)[0]


def load_manifest_with_json(path: str | Path) -> tuple[Manifest, dict[str, Any]]:
    """The :class:`Manifest` and the JSON as dbt wrote it, read once (``dbt_slices`` hands
    parts of it back to dbt)."""
    # The GC stays paused until the raw JSON is gone: re-enabled any earlier, its first
    # passes would walk the million objects orjson just made (most of a plain parse's time).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_manifest(Path(path))
    finally:
        if enabled:
            gc.enable()


def _load_manifest(path: Path) -> tuple[Manifest, dict[str, Any]]:
    raw = _read_json(path, "manifest")
    if _kept_until_exit is not None:
        _kept_until_exit.append(raw)
    if not isinstance(raw, dict):
        raise ManifestError("manifest is not a JSON object", path=str(path))
    metadata = _mapping(raw.get("metadata"))
    schema_version = _schema_version(metadata, path)
    raw_nodes = raw.get("nodes")
    if not isinstance(raw_nodes, dict):
        raise ManifestError("manifest has no 'nodes' object", path=str(path), key="nodes")
    nodes: dict[str, Node] = {}
    # dbt 1.8+ keeps unit tests apart from the other nodes; `dbt build` runs them all the same.
    for section in (raw_nodes, _mapping(raw.get("unit_tests"))):
        for unique_id, raw_node in section.items():
            if not isinstance(raw_node, dict):
                raise ManifestError(
                    "node is not a JSON object", path=str(path), unique_id=unique_id
                )
            node = _node(raw_node, path, unique_id)
            if node is not None:
                nodes[unique_id] = node
    sources = frozenset(_mapping(raw.get("sources")))
    known = {*raw_nodes, *sources}
    for section_name in _DEPENDABLE_SECTIONS:
        known.update(_mapping(raw.get(section_name)))
    _check_parents(nodes, frozenset(known), path)
    manifest = Manifest(
        path=str(path),
        schema_version=schema_version,
        dbt_version=str(metadata.get("dbt_version") or ""),
        project_name=_project_name(metadata, nodes.values()),
        nodes=nodes,
        sources=sources,
        groups=_groups(raw.get("groups")),
    )
    return manifest, raw


def load_run_results(paths: Sequence[str | Path]) -> RunTimes:
    """Collect ``execution_time`` per node from dbt ``run_results.json`` files.

    Only successful or test-failing runs count: a node that errored after a second says
    nothing about how long it takes.
    """
    samples: dict[str, list[float]] = {}
    for path in paths:
        path = Path(path)
        raw = _read_json(path, "run_results")
        results = raw.get("results") if isinstance(raw, dict) else None
        if not isinstance(results, list):
            raise ManifestError("run_results has no 'results' list", path=str(path), key="results")
        for result in results:
            if not isinstance(result, dict):
                continue
            unique_id = result.get("unique_id")
            seconds = result.get("execution_time")
            if not isinstance(unique_id, str) or not isinstance(seconds, (int, float)):
                continue
            if result.get("status") in ("error", "skipped", "runtime error"):
                continue
            samples.setdefault(unique_id, []).append(float(seconds))
    return RunTimes({uid: tuple(values) for uid, values in sorted(samples.items())})
