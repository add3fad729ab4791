"""What a dbt change changes in the DAGs: compare two previews (two builds' sidecars).

The comparison reads only the facts a :class:`~dagfactory.preview.Preview` holds, so the
previous state comes from a build folder's or a bucket's sidecar, never from running a
generated file. Two views, both sorted:

* per model (the reviewer's question): added, removed, moved to another DAG, re-routed;
* per DAG: added, removed, and inside a DAG both builds have: tasks added or removed, edges
  between tasks both builds have, upstream DAGs, and changed facts with before -> after.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagfactory.errors import ConfigError, one_line
from dagfactory.preview import (
    SIDECAR_SUFFIX,
    DagView,
    Preview,
    TaskView,
    from_sidecar,
    md,
    sidecar_name,
)

__all__ = ["DagChange", "Diff", "ModelChange", "compare", "load_preview", "load_previous"]


@dataclass(frozen=True)
class Change:
    """One fact that differs: ``what`` went from ``before`` to ``after``."""

    what: str
    before: str
    after: str

    def text(self) -> str:
        return f"{self.what}: {self.before} -> {self.after}"


@dataclass(frozen=True)
class ModelChange:
    unique_id: str
    kind: str  # added | removed | moved | re-routed
    before: str = ""  # "dag.task" or the route, by kind
    after: str = ""

    def text(self) -> str:
        if self.kind == "added":
            return f"added {self.unique_id} (in {self.after})"
        if self.kind == "removed":
            return f"removed {self.unique_id} (was in {self.before})"
        return f"{self.kind} {self.unique_id}: {self.before} -> {self.after}"


@dataclass(frozen=True)
class DagChange:
    dag_id: str
    tasks_added: tuple[str, ...] = ()
    tasks_removed: tuple[str, ...] = ()
    edges_added: tuple[str, ...] = ()  # "upstream_task -> task"
    edges_removed: tuple[str, ...] = ()
    upstream_dags_added: tuple[str, ...] = ()
    upstream_dags_removed: tuple[str, ...] = ()
    facts: tuple[Change, ...] = ()  # the DAG's own: starts, owner, tags, group
    tasks: tuple[Change, ...] = ()  # "route of <task>", "command of <task>"

    def lines(self) -> list[str]:
        out = [f"task added: {t}" for t in self.tasks_added]
        out += [f"task removed: {t}" for t in self.tasks_removed]
        out += [f"edge added: {e}" for e in self.edges_added]
        out += [f"edge removed: {e}" for e in self.edges_removed]
        out += [f"upstream DAG added: {d}" for d in self.upstream_dags_added]
        out += [f"upstream DAG removed: {d}" for d in self.upstream_dags_removed]
        out += [c.text() for c in (*self.facts, *self.tasks)]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "tasks_added": list(self.tasks_added),
            "tasks_removed": list(self.tasks_removed),
            "edges_added": list(self.edges_added),
            "edges_removed": list(self.edges_removed),
            "upstream_dags_added": list(self.upstream_dags_added),
            "upstream_dags_removed": list(self.upstream_dags_removed),
            "changed": [
                {"what": c.what, "before": c.before, "after": c.after}
                for c in (*self.facts, *self.tasks)
            ],
        }


@dataclass(frozen=True)
class Diff:
    against: str  # what the current build was compared with (a folder or URL, as given)
    models: tuple[ModelChange, ...] = ()
    dags_added: tuple[str, ...] = ()
    dags_removed: tuple[str, ...] = ()
    dags_changed: tuple[DagChange, ...] = ()
    project: tuple[Change, ...] = field(default=())  # the dbt command every task shares

    @property
    def empty(self) -> bool:
        return not (
            self.models or self.dags_added or self.dags_removed or self.dags_changed or self.project
        )

    def summary(self) -> str:
        if self.empty:
            return f"no changes against {self.against}"
        counts: dict[str, int] = {}
        for change in self.models:
            counts[change.kind] = counts.get(change.kind, 0) + 1
        parts = [f"{n} {kind}" for kind, n in sorted(counts.items())]
        models = f"models: {', '.join(parts)}; " if parts else ""
        return (
            f"changes against {self.against}: {models}DAGs: {len(self.dags_added)} added, "
            f"{len(self.dags_removed)} removed, {len(self.dags_changed)} changed"
        )

    def format_text_lines(self) -> list[str]:
        lines = [one_line(self.summary())]
        items: list[Change | ModelChange] = [*self.project, *self.models]
        lines.extend(one_line(f"  {item.text()}") for item in items)
        for dag_id in self.dags_added:
            lines.append(one_line(f"  DAG added: {dag_id}"))
        for dag_id in self.dags_removed:
            lines.append(one_line(f"  DAG removed: {dag_id}"))
        for dag in self.dags_changed:
            lines.append(one_line(f"  DAG changed: {dag.dag_id}"))
            lines.extend(one_line(f"    {line}") for line in dag.lines())
        return lines

    def format_text(self) -> str:
        return "\n".join(self.format_text_lines())

    def format_markdown(self, limit: int = 60) -> list[str]:
        """A bullet list, at most ``limit`` lines of detail, then "and N more"."""
        lines = [f"#### {md(self.summary())}"]
        if self.empty:
            return lines
        lines.append("")
        items = [md(c.text()) for c in self.project]
        items += [md(c.text()) for c in self.models]
        items += [f"DAG added: {md(d)}" for d in self.dags_added]
        items += [f"DAG removed: {md(d)}" for d in self.dags_removed]
        for dag in self.dags_changed:
            items.append(f"DAG changed: {md(dag.dag_id)}")
            items += [f"  - {md(line)}" for line in dag.lines()]
        for item in items[:limit]:
            lines.append(item if item.startswith("  - ") else f"- {item}")
        if len(items) > limit:
            lines.append(f"- and {len(items) - limit} more")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "against": self.against,
            "empty": self.empty,
            "project": [
                {"what": c.what, "before": c.before, "after": c.after} for c in self.project
            ],
            "models": [
                {"unique_id": m.unique_id, "kind": m.kind, "before": m.before, "after": m.after}
                for m in self.models
            ],
            "dags_added": list(self.dags_added),
            "dags_removed": list(self.dags_removed),
            "dags_changed": [d.to_dict() for d in self.dags_changed],
        }


# --------------------------------------------------------------------------- comparing


def _route(task: TaskView, mode: str) -> str:
    runner = task.runner
    if runner == "kubernetes":
        runner = "kubernetes executor" if mode == "executor" else "kubernetes pod"
    size = f", size {task.size}" if task.size else ""
    return f"{runner} ({task.reason}{size})"


def _where(preview: Preview) -> dict[str, tuple[DagView, TaskView]]:
    """Each model's task: the primary node of every task (its folded tests go with it)."""
    return {
        task.models[0]: (dag, task) for dag in preview.dags for task in dag.tasks if task.models
    }


def _model_changes(old: Preview, new: Preview) -> list[ModelChange]:
    before, after = _where(old), _where(new)
    changes = []
    for uid in sorted(before.keys() | after.keys()):
        if uid not in after:
            dag, task = before[uid]
            changes.append(ModelChange(uid, "removed", before=f"{dag.dag_id}.{task.task_id}"))
            continue
        if uid not in before:
            dag, task = after[uid]
            changes.append(ModelChange(uid, "added", after=f"{dag.dag_id}.{task.task_id}"))
            continue
        (old_dag, old_task), (new_dag, new_task) = before[uid], after[uid]
        if old_dag.dag_id != new_dag.dag_id:
            changes.append(ModelChange(uid, "moved", old_dag.dag_id, new_dag.dag_id))
        if old_task.runner != new_task.runner:
            changes.append(
                ModelChange(
                    uid,
                    "re-routed",
                    _route(old_task, old.kubernetes_mode),
                    _route(new_task, new.kubernetes_mode),
                )
            )
    return changes


def _edges(dag: DagView, keep: set[str]) -> set[str]:
    return {
        f"{up} -> {task.task_id}"
        for task in dag.tasks
        if task.task_id in keep
        for up in task.upstream
        if up in keep
    }


def _fact(what: str, before: Any, after: Any) -> list[Change]:
    if before == after:
        return []
    return [Change(what, str(before), str(after))]


def _dag_change(old: DagView, new: DagView, old_mode: str, new_mode: str) -> DagChange | None:
    old_tasks = {t.task_id: t for t in old.tasks}
    new_tasks = {t.task_id: t for t in new.tasks}
    common = old_tasks.keys() & new_tasks.keys()
    old_edges, new_edges = _edges(old, common), _edges(new, common)
    facts = [
        *_fact("starts", old.starts, new.starts),
        *_fact("owner", old.owner, new.owner),
        *_fact("tags", ", ".join(old.tags) or "none", ", ".join(new.tags) or "none"),
        *_fact("group", old.group, new.group),
    ]
    tasks: list[Change] = []
    for task_id in sorted(common):
        a, b = old_tasks[task_id], new_tasks[task_id]
        tasks += _fact(f"route of {task_id}", _route(a, old_mode), _route(b, new_mode))
        tasks += _fact(
            f"command of {task_id}",
            f"{a.command} --select {a.selector}",
            f"{b.command} --select {b.selector}",
        )
        tasks += _fact(f"models of {task_id}", ", ".join(a.models), ", ".join(b.models))
    change = DagChange(
        dag_id=new.dag_id,
        tasks_added=tuple(sorted(new_tasks.keys() - old_tasks.keys())),
        tasks_removed=tuple(sorted(old_tasks.keys() - new_tasks.keys())),
        edges_added=tuple(sorted(new_edges - old_edges)),
        edges_removed=tuple(sorted(old_edges - new_edges)),
        upstream_dags_added=tuple(sorted(set(new.upstream_dags) - set(old.upstream_dags))),
        upstream_dags_removed=tuple(sorted(set(old.upstream_dags) - set(new.upstream_dags))),
        facts=tuple(facts),
        tasks=tuple(tasks),
    )
    return change if change.lines() else None


def compare(old: Preview, new: Preview, *, against: str) -> Diff:
    """What ``new`` changes compared with ``old`` (the previous build)."""
    old_dags = {d.dag_id: d for d in old.dags}
    new_dags = {d.dag_id: d for d in new.dags}
    changed = []
    for dag_id in sorted(old_dags.keys() & new_dags.keys()):
        change = _dag_change(
            old_dags[dag_id], new_dags[dag_id], old.kubernetes_mode, new.kubernetes_mode
        )
        if change is not None:
            changed.append(change)
    project = [
        *_fact(
            "every dbt command ends with",
            shlex.join(old.dbt_flags),
            shlex.join(new.dbt_flags),
        ),
        *_fact("dbt executable", shlex.join(old.dbt_executable), shlex.join(new.dbt_executable)),
        *_fact("kubernetes mode", old.kubernetes_mode, new.kubernetes_mode),
    ]
    return Diff(
        against=against,
        models=tuple(_model_changes(old, new)),
        dags_added=tuple(sorted(new_dags.keys() - old_dags.keys())),
        dags_removed=tuple(sorted(old_dags.keys() - new_dags.keys())),
        dags_changed=tuple(changed),
        project=tuple(project),
    )


# --------------------------------------------------------------------------- reading


def _sidecar_in(folder: Path) -> Path:
    """The one sidecar of a build folder (its name follows the project, so look for it)."""
    found = sorted(folder.glob(f"*{SIDECAR_SUFFIX}"))
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise ConfigError(
            f"{what} *{SIDECAR_SUFFIX} build summary in this folder; compare with a folder "
            "written by `dagfactory build` (version 0.2 or later)",
            path=str(folder),
        )
    return found[0]


def load_preview(folder: str | Path) -> Preview:
    """The preview of a build folder, read from its sidecar."""
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError("no such build folder", path=str(path))
    sidecar = _sidecar_in(path)
    try:
        data = sidecar.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the build summary: {exc.strerror}", path=str(sidecar)
        ) from exc
    return from_sidecar(data, path=str(sidecar))


def load_previous(
    against: str,
    *,
    team: str,
    project: str,
    endpoint_url: str | None = None,
) -> Preview | None:
    """The previous state: a build folder, or what a push left at ``s3://...``/``file://...``.

    A URL is the one ``push`` was given; the sidecar is read from the project's prefix there,
    with one GET (read-only). None when nothing was pushed there yet.
    """
    if "://" not in against:
        return load_preview(against)
    from dagfactory.publish import open_publisher, parse_target

    target = parse_target(against, team, project)
    publisher = open_publisher(target, endpoint_url=endpoint_url)
    key = target.prefix + sidecar_name(project)
    data = publisher.get(key)
    if data is None:
        return None
    return from_sidecar(data, path=f"{target.url}{sidecar_name(project)}")


def empty_preview(like: Preview) -> Preview:
    """Nothing deployed yet: every DAG of ``like`` shows as added."""
    return Preview(
        like.project, like.team, like.kubernetes_mode, like.dbt_executable, like.dbt_flags, ()
    )
