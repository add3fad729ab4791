"""Run one task's dbt command on a slice of the manifest, or hand it to plain dbt.

Why: a ``dbt build --select <one node>`` process reads the whole project's parse state and
links the whole graph before it runs its node, so each task costs what the project costs.
``dagfactory dbt-slices`` writes, next to the project in the worker image, one small
manifest per task (its nodes, the nodes they read, every macro); this script gives that
slice to dbt in-process (``dbtRunner(manifest=...)``), so dbt parses and links nothing.

It is copied into the slices folder as ``run.py`` and runs on the worker with the Python
that runs dbt, so it imports only the standard library and dbt. Its command line is
``run.py <dbt executable> <dbt arguments...>``. Whenever the slice might not say what
dbt's own parse would (no slice for this selector, another dbt version, a changed file of
the task's nodes or ``dbt_project.yml``, an environment variable read at parse time that
has another value now, other ``--vars``), it says why on stderr and replaces itself with plain
dbt (``exec``), which then parses as it always does. ``--vars`` must equal the vars the
manifest was parsed with (``dagfactory dbt-slices --vars``): dbt bakes them into configs;
so must the target and ``profiles.yml`` (with the env vars it reads): dbt resolves every
node's database and schema with them. Exit codes are dbt's: 0 success,
1 a node failed, 2 dbt could not run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

FORMAT = 1  # of base.json and the slice files; a mismatch means "written by another version"


def slice_name(selector: str) -> str:
    """The file holding the slice of the task that selects ``selector``."""
    return hashlib.sha256(selector.encode()).hexdigest()[:32] + ".json"


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1 :]
    return None


def _vars(args: list[str]) -> Any:
    """The task's ``--vars`` as a value (dagfactory writes them as JSON); {} without."""
    text = _option(args, "--vars")
    if text is None:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return None  # YAML or broken: never equal to what the slices recorded


def profiles_file(profiles_dir: str | None) -> Path:
    """The ``profiles.yml`` dbt reads: ``--profiles-dir``, ``DBT_PROFILES_DIR``, the working
    folder if it holds one, else ``~/.dbt`` (dbt's own order)."""
    folder = profiles_dir or os.environ.get("DBT_PROFILES_DIR")
    if folder:
        return Path(folder) / "profiles.yml"
    here = Path.cwd() / "profiles.yml"
    return here if here.exists() else Path.home() / ".dbt" / "profiles.yml"


def why_not(base: dict[str, Any], piece: dict[str, Any] | None, args: list[str]) -> str | None:
    """Why this slice cannot stand in for dbt's own parse (None: it can)."""
    if not base:
        return "no readable base.json in the slices folder"
    if base.get("format") != FORMAT:
        return "the slices were written by another dagfactory version"
    if base.get("refused"):
        return f"no slices for this project: {base['refused']}"
    if piece is None:
        return "no slice for this selector"
    if piece.get("selector") != _option(args, "--select"):
        return "the slice is for another selector"
    if _vars(args) != base.get("vars", {}):
        return "--vars differ from the ones the slices were parsed with"
    project = Path(_option(args, "--project-dir") or os.environ.get("DBT_PROJECT_DIR") or ".")
    if file_sha256(project / "dbt_project.yml") != base.get("dbt_project_sha256"):
        return f"{project / 'dbt_project.yml'} differs from the one the slices were made with"
    # dbt resolves schemas and databases with the profile's target at parse time.
    profile = base.get("profile", {})
    target = _option(args, "--target") or os.environ.get("DBT_TARGET")
    if target != profile.get("target"):
        return f"target {target or '(default)'} is not the one the slices were parsed with"
    profiles = profiles_file(_option(args, "--profiles-dir"))
    if file_sha256(profiles) != profile.get("sha256"):
        return f"{profiles} differs from the one the slices were made with"
    for name, value in sorted({**base.get("env", {}), **piece.get("env", {})}.items()):
        if os.environ.get(name) != value:
            return f"environment variable {name} differs from the image build's parse"
    for path, digest in sorted({**base.get("files", {}), **piece.get("files", {})}.items()):
        if file_sha256(project / path) != digest:
            return f"{path} changed since the slices were made"
    return None


def load_manifest(base: dict[str, Any], piece: dict[str, Any]) -> Any:
    """A dbt ``Manifest`` of the slice's nodes and the project's macros."""
    from dbt.artifacts import resources as r
    from dbt.artifacts.resources.types import NodeType
    from dbt.contracts.graph.manifest import Manifest, ManifestMetadata
    from dbt.contracts.graph.nodes import RESOURCE_CLASS_TO_NODE_CLASS

    by_type = {
        NodeType.Model: r.Model,
        NodeType.Seed: r.Seed,
        NodeType.Snapshot: r.Snapshot,
        NodeType.Operation: r.HookNode,
        NodeType.Analysis: r.Analysis,
        NodeType.SqlOperation: r.SqlOperation,
    }

    def node(data: dict[str, Any]) -> Any:
        cls: Any
        kind = data["resource_type"]
        if kind == NodeType.Test:
            cls = r.GenericTest if data.get("test_metadata") else r.SingularTest
        else:
            cls = by_type[NodeType(kind)]
        return RESOURCE_CLASS_TO_NODE_CLASS[cls].from_resource(cls.from_dict(data))

    def each(cls: Any, section: dict[str, Any]) -> dict[str, Any]:
        node_cls = RESOURCE_CLASS_TO_NODE_CLASS.get(cls)
        return {
            uid: (node_cls.from_resource(cls.from_dict(d)) if node_cls else cls.from_dict(d))
            for uid, d in section.items()
        }

    from dbt.contracts.graph.nodes import UnitTestDefinition

    manifest = Manifest(
        nodes={uid: node(d) for uid, d in {**base.get("nodes", {}), **piece["nodes"]}.items()},
        sources=each(r.SourceDefinition, piece.get("sources", {})),
        macros=each(r.Macro, base["macros"]),
        groups=each(r.Group, base.get("groups", {})),
        unit_tests={
            uid: UnitTestDefinition.from_dict(d) for uid, d in piece.get("unit_tests", {}).items()
        },
        metadata=ManifestMetadata.from_dict(base["metadata"]),
    )
    manifest.build_flat_graph()
    return manifest


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def plain_dbt(executable: str, args: list[str], reason: str) -> None:
    print(f"dagfactory: running plain dbt: {reason}", file=sys.stderr, flush=True)
    try:
        os.execvp(executable, [executable, *args])
    except OSError as exc:
        print(f"dagfactory: cannot run {executable}: {exc.strerror}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: run.py <dbt executable> <dbt arguments...>", file=sys.stderr)
        return 2
    executable, args = argv[0], argv[1:]
    folder = Path(__file__).resolve().parent
    base = _read(folder / "base.json") or {}
    selector = _option(args, "--select") or ""
    piece = _read(folder / slice_name(selector)) if selector else None
    reason = why_not(base, piece, args)
    if reason is None:
        import dbt.version

        if dbt.version.__version__ != base.get("dbt_version"):
            reason = f"dbt {dbt.version.__version__} is not the dbt {base.get('dbt_version')} "
            reason += "that wrote the manifest"
    if reason is not None:
        plain_dbt(executable, args, reason)
    assert piece is not None
    try:
        manifest = load_manifest(base, piece)
    except Exception as exc:  # a dbt whose classes read the slice otherwise: dbt decides
        plain_dbt(executable, args, f"this dbt cannot read the slice ({type(exc).__name__})")
    from dbt.cli.main import dbtRunner

    print(f"dagfactory: dbt runs on the slice {slice_name(selector)}", file=sys.stderr)
    result = dbtRunner(manifest=manifest).invoke(args)
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
