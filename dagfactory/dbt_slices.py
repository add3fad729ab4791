"""One small manifest per task, for the workers: each dbt task costs what its nodes cost.

Why: a task's ``dbt build --select <node>`` reads the whole project's parse state and links
the whole graph before it runs one node; at 2,000 models that is most of the task's CPU and
memory (docs/running-dbt.md). ``write_dbt_slices`` runs where ``dbt parse`` runs (the
worker image build) and writes, per task, the nodes it selects, the nodes they read (with
ephemeral ancestors, whose SQL is inlined) and their sources, plus one ``base.json`` with
every macro and hook. The generated command starts ``run.py`` (``dbt_slice_runner``), which
gives the slice to dbt in-process, or runs plain dbt whenever the slice may be stale.

What a slice must never do is run something other than what dbt's own parse would. So no
slice is written for a task whose SQL or called macros read the whole ``graph`` (a slice
holds part of it) or whose files call ``env_var`` with a computed name, none at all for a
project whose own macros read ``graph`` or whose dbt is older than 1.8; and
every slice records the files and parse-time environment variables it was made from, which
``run.py`` checks before it uses it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from dagfactory import buildfolder, dbt_slice_runner
from dagfactory.errors import OutputError
from dagfactory.graph import build_graph
from dagfactory.manifest import Manifest, load_manifest_with_json
from dagfactory.specs import SLICES_SINCE, dbt_at_least

__all__ = ["SliceReport", "write_dbt_slices"]

RUNNER = "run.py"
BASE = "base.json"

#: ``graph`` as a Jinja variable: the whole project's nodes, which a slice holds only part of
_READS_GRAPH = re.compile(r"\bgraph\s*[.\[]")
_DISPATCH = re.compile(r"^dispatch\s*:", re.MULTILINE)
_ENV_VAR_CALL = re.compile(r"\benv_var\s*\(")
_ENV_VAR_LITERAL = re.compile(r"""\benv_var\s*\(\s*(['"])([^'"]+)\1\s*[,)]""")


@dataclass(frozen=True)
class SliceReport:
    """What ``write_dbt_slices`` wrote: the folder, its slices and the tasks left to plain dbt."""

    folder: str
    slices: int
    plain_dbt: Mapping[str, str]  # unique_id -> why its task runs plain dbt
    refused: str | None  # why no task of the project gets a slice


def _dumps(value: Mapping[str, Any]) -> bytes:
    """Our keys sorted, dbt's JSON in dbt's own order: a model's ``columns`` order is the
    column order of its contract's DDL, so sorting them would change the table."""
    return orjson.dumps({key: value[key] for key in sorted(value)})


def _by_id(section: Any) -> dict[str, Any]:
    return {uid: section[uid] for uid in sorted(section or {})}


@dataclass(frozen=True)
class _File:
    digest: str | None  # sha256 of the bytes; None: no such file
    text: str
    env: frozenset[str] | None  # names it passes to env_var; None: one is computed


class _Files:
    """Reads the project's files once each (a folder's YAML is in many slices): their
    digest and the env vars they read."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self._seen: dict[str, _File] = {}

    def get(self, relative: str) -> _File:
        if relative not in self._seen:
            try:
                data = (self.project / relative).read_bytes()
            except OSError:
                self._seen[relative] = _File(None, "", frozenset())
            else:
                text = data.decode("utf-8", errors="replace")
                env = _env_names(text)
                digest = hashlib.sha256(data).hexdigest()
                self._seen[relative] = _File(digest, text, None if env is None else frozenset(env))
        return self._seen[relative]


def _env_names(text: str) -> set[str] | None:
    """Names passed to ``env_var`` as literals; None when one is computed."""
    literal = _ENV_VAR_LITERAL.findall(text)
    if len(literal) != len(_ENV_VAR_CALL.findall(text)):
        return None
    return {name for _, name in literal}


def _env_values(names: Iterable[str]) -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in sorted(names)}


def _own_file(raw: Mapping[str, Any], project_name: str) -> list[str]:
    """Project files whose content a node was parsed from (its SQL, its YAML patch)."""
    if raw.get("package_name") != project_name:
        return []
    files = [str(raw.get("original_file_path") or "")]
    patch = raw.get("patch_path")
    if isinstance(patch, str) and "://" in patch:
        files.append(patch.split("://", 1)[1])
    return [f for f in files if f]


#: what ``dbt compile/run/build`` leave in ``manifest.json``: a node marked compiled keeps its
#: old SQL and is not given its ephemeral parents' CTEs again, so dbt would run broken SQL
_COMPILE_STATE = ("compiled", "compiled_code", "extra_ctes_injected", "extra_ctes")


def _as_parsed(data: Mapping[str, Any]) -> dict[str, Any]:
    """A node as ``dbt parse`` writes it, whichever dbt command wrote the manifest."""
    parsed = {key: value for key, value in data.items() if key not in _COMPILE_STATE}
    if "compiled_path" in parsed:
        parsed["compiled_path"] = None
    return parsed


def _inside(relative: str) -> bool:
    """A path the manifest gives relative to the project, that stays inside it."""
    path = Path(relative)
    return not path.is_absolute() and ".." not in path.parts


def _is_ephemeral(raw: Mapping[str, Any] | None) -> bool:
    return ((raw or {}).get("config") or {}).get("materialized") == "ephemeral"


def _slice_nodes(
    members: Iterable[str], raw_nodes: Mapping[str, Any], raw_units: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """The task's nodes, the nodes they read (through ephemerals) and the sources they read."""

    def raw(uid: str) -> Mapping[str, Any] | None:
        return raw_nodes.get(uid) or raw_units.get(uid)

    def parents(uid: str) -> list[str]:
        return list(((raw(uid) or {}).get("depends_on") or {}).get("nodes") or ())

    members = set(members)
    keep: set[str] = set(members)
    stack = [p for m in members for p in parents(m)]
    while stack:
        uid = stack.pop()
        if uid in keep or raw(uid) is None:
            continue
        keep.add(uid)
        if _is_ephemeral(raw(uid)):
            stack.extend(parents(uid))  # inlined into its readers: its own refs resolve too
    # Sources of what dbt compiles: the task's nodes and the ephemerals inlined into them.
    readers = [uid for uid in keep if uid in members or _is_ephemeral(raw(uid))]
    sources = {p for uid in readers for p in parents(uid) if p.startswith("source.")}
    nodes: dict[str, Any] = {}
    units: dict[str, Any] = {}
    for uid in sorted(keep):
        data = _as_parsed(raw(uid) or {})
        # dbt links every node's parents; a context node's own parents are not in the slice.
        depends = dict(data.get("depends_on") or {})
        depends["nodes"] = [p for p in parents(uid) if p in keep or p in sources]
        data["depends_on"] = depends
        (units if uid in raw_units else nodes)[uid] = data
    return nodes, units, sources


def _refusal(manifest: Manifest) -> str | None:
    if not dbt_at_least(manifest, SLICES_SINCE):
        return "slices need a manifest of dbt 1.8 or later"
    return None


def _graph_readers(macros: Mapping[str, Any], adapter: str, project_name: str) -> set[str]:
    """Macros that read ``graph`` and are not dbt's or the adapter's own.

    dbt's and the adapter's macros read it only about the selected nodes and their parents
    (dbt-duckdb: external upstreams, foreign-key dependents it must refuse to drop), which
    a slice holds; every other package (dbt_utils & co.) and the project are checked.
    """
    trusted = {"dbt", f"dbt_{adapter}"} - {project_name}
    return {
        uid
        for uid, macro in macros.items()
        if macro.get("package_name") not in trusted
        and _READS_GRAPH.search(str(macro.get("macro_sql") or ""))
    }


def _project_wide(
    readers: set[str], macros: Mapping[str, Any], project: str, yml: str
) -> str | None:
    """A graph-reading macro that any task may run without naming it: one of the project's
    own (they override dbt's by name) or, with a ``dispatch:`` config, any package's."""
    dispatch = _DISPATCH.search(yml) is not None
    for uid in sorted(readers):
        if dispatch or macros[uid].get("package_name") == project:
            return f"macro {uid} reads `graph`, the whole project, which a slice holds part of"
    return None


def _calls(start: Iterable[Mapping[str, Any]], macros: Mapping[str, Any]) -> set[str]:
    """Every macro the nodes call, directly or through other macros (dbt's static record)."""
    seen: set[str] = set()
    stack = [m for data in start for m in ((data.get("depends_on") or {}).get("macros") or ())]
    while stack:
        uid = stack.pop()
        if uid in seen:
            continue
        seen.add(uid)
        stack.extend(((macros.get(uid) or {}).get("depends_on") or {}).get("macros") or ())
    return seen


def _profiles(project: Path, profiles_dir: str | Path | None) -> Path:
    """The ``profiles.yml`` ``dbt parse`` read: given, ``DBT_PROFILES_DIR``, the project's
    (where dagfactory's tasks look by default), else dbt's own lookup."""
    if profiles_dir or os.environ.get("DBT_PROFILES_DIR"):
        return dbt_slice_runner.profiles_file(str(profiles_dir) if profiles_dir else None)
    if (project / "profiles.yml").is_file():
        return project / "profiles.yml"
    return dbt_slice_runner.profiles_file(None)


def _shebang(python: str | None) -> str:
    """The interpreter of ``run.py``: given, else the one that runs ``dbt`` here."""
    if python:
        return python
    dbt = shutil.which("dbt")
    if dbt:
        try:
            first = Path(dbt).read_bytes().split(b"\n", 1)[0].decode()
        except (OSError, UnicodeDecodeError):
            first = ""
        if first.startswith("#!") and "python" in first:
            return first[2:].strip()
    return sys.executable


def slice_files(
    manifest_path: str | Path,
    project_dir: str | Path,
    python: str | None = None,
    vars: Mapping[str, Any] | None = None,
    profiles_dir: str | Path | None = None,
    target: str | None = None,
) -> tuple[dict[str, bytes], SliceReport]:
    """The folder's files (name -> bytes) and a report; nothing is written."""
    manifest, raw = load_manifest_with_json(manifest_path)
    graph = build_graph(manifest)
    project = Path(project_dir)
    files = _Files(project)
    project_yml = files.get("dbt_project.yml")
    if project_yml.digest is None:
        raise OutputError("no dbt_project.yml in the project folder", path=str(project))
    raw_metadata: Mapping[str, Any] = raw.get("metadata") or {}
    raw_nodes: Mapping[str, Any] = raw.get("nodes") or {}
    raw_units: Mapping[str, Any] = raw.get("unit_tests") or {}
    raw_sources: Mapping[str, Any] = raw.get("sources") or {}
    macros: Mapping[str, Any] = raw.get("macros") or {}
    refused = _refusal(manifest)
    profiles = _profiles(project, profiles_dir)
    profile = files.get(str(profiles))  # an absolute path stays itself under the project
    profile_env = profile.env
    if profile_env is None:
        refused = refused or f"{profiles} calls env_var with a computed name"
    adapter = str(raw_metadata.get("adapter_type") or "")
    readers = _graph_readers(macros, adapter, manifest.project_name)
    refused = refused or _project_wide(readers, macros, manifest.project_name, project_yml.text)
    if project_yml.env is None:
        refused = refused or "dbt_project.yml calls env_var with a computed name"
    hooks = {
        u: _as_parsed(n) for u, n in raw_nodes.items() if n.get("resource_type") == "operation"
    }
    own_macro_files = sorted(
        {
            str(m.get("original_file_path"))
            for m in macros.values()
            if m.get("package_name") == manifest.project_name and m.get("original_file_path")
        }
    )
    base: dict[str, Any] = {
        "format": dbt_slice_runner.FORMAT,
        "dbt_version": manifest.dbt_version,
        "dbt_project_sha256": project_yml.digest,
        "refused": refused,
        "vars": dict(vars or {}),
        "profile": {
            "sha256": profile.digest,
            "target": target or os.environ.get("DBT_TARGET"),
        },
    }
    out: dict[str, bytes] = {}
    plain: dict[str, str] = {}
    if refused is None:
        metadata = dict(raw_metadata)
        for volatile in ("generated_at", "invocation_id", "invocation_started_at"):
            metadata.pop(volatile, None)  # same parse, same bytes
        macro_env: set[str] = {*(project_yml.env or ()), *(profile_env or ())}
        for path in own_macro_files:
            names = files.get(path).env
            if names is None:
                refused = f"macro file {path} calls env_var with a computed name"
                break
            macro_env |= names
        base.update(
            metadata=metadata,
            macros=_by_id(macros),
            groups=_by_id(raw.get("groups")),
            nodes=_by_id(hooks),
            env=_env_values(macro_env),
            files={p: files.get(p).digest for p in own_macro_files},
            refused=refused,
        )
    if refused is None:
        for unit in graph.units.values():
            nodes, units, sources = _slice_nodes(unit.members, raw_nodes, raw_units)
            source_data = {s: raw_sources[s] for s in sorted(sources)}
            read_from = (*nodes.values(), *units.values(), *source_data.values())
            node_files = sorted({f for d in read_from for f in _own_file(d, manifest.project_name)})
            env: set[str] = set()
            why = None
            compiled = [d for u, d in nodes.items() if u in unit.members or _is_ephemeral(d)]
            for data in (*compiled, *units.values()):  # what dbt renders for this task
                if _READS_GRAPH.search(str(data.get("raw_code") or "")):
                    why = "its SQL reads `graph`, the whole project"
            if readers:
                called = sorted(readers & _calls((*compiled, *units.values()), macros))
                if called:
                    why = f"it calls macro {called[0]}, which reads `graph`, the whole project"
            if any(not _inside(path) for path in node_files):
                why = "a node's file path leaves the project folder"
                node_files = []
            for path in node_files:
                names = files.get(path).env
                if names is None:
                    why = f"{path} calls env_var with a computed name"
                else:
                    env |= names
            if why is not None:
                plain[unit.unique_id] = why
                continue
            piece = {
                "format": dbt_slice_runner.FORMAT,
                "selector": unit.selector,
                "nodes": nodes,
                "unit_tests": units,
                "sources": source_data,
                "files": {p: files.get(p).digest for p in node_files},
                "env": _env_values(env),
            }
            out[dbt_slice_runner.slice_name(unit.selector)] = _dumps(piece)
    out[BASE] = _dumps(base)
    runner = Path(dbt_slice_runner.__file__).read_text()
    out[RUNNER] = f"#!{_shebang(python)}\n{runner}".encode()
    report = SliceReport("", len(out) - 2, plain, refused)
    return out, report


def _find_project(manifest_path: Path) -> Path:
    """The folder of ``dbt_project.yml``: the manifest's own (a copy kept in the project),
    else the one above it (dbt's ``target/``)."""
    folder = manifest_path.resolve().parent
    for candidate in (folder, folder.parent):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    raise OutputError(
        "no dbt_project.yml beside the manifest or in the folder above; pass --project-dir",
        path=str(manifest_path),
    )


def _check_slices_folder(out: Path) -> None:
    if out.exists() and any(out.iterdir()) and not (out / BASE).is_file():
        raise OutputError(
            "refusing to replace a folder that holds no dagfactory slices", path=str(out)
        )


def write_dbt_slices(
    manifest_path: str | Path,
    out_dir: str | Path,
    *,
    project_dir: str | Path | None = None,
    python: str | None = None,
    vars: Mapping[str, Any] | None = None,
    profiles_dir: str | Path | None = None,
    target: str | None = None,
) -> SliceReport:
    """Write the slices folder whole (a previous one is replaced in one step).

    ``project_dir`` defaults to the folder of ``dbt_project.yml``: the manifest's, or the one
    above it (``<project>/target/manifest.json``);
    ``vars``, ``profiles_dir`` and ``target`` are what ``dbt parse`` ran with (default: no
    vars; dbt's own profiles lookup, the project folder first; the profile's default target):
    a task with others runs plain dbt. Environment variables read at parse time are taken
    from this process, so run it in the environment ``dbt parse`` ran in.
    A folder that exists and is not a slices folder is refused, never replaced.
    """
    manifest_path = Path(manifest_path)
    project = Path(project_dir) if project_dir else _find_project(manifest_path)
    files, report = slice_files(manifest_path, project, python, vars, profiles_dir, target)

    def fill(folder: Path) -> None:
        for name, data in files.items():
            (folder / name).write_bytes(data)
        (folder / RUNNER).chmod(0o755)
        folder.chmod(0o755)

    out = buildfolder.swap_folder(out_dir, fill, _check_slices_folder)
    return SliceReport(str(out), report.slices, report.plain_dbt, report.refused)
