"""What a build contains, for people: a terminal tree, Markdown, JSON and one HTML page.

A :class:`Preview` holds the facts a reviewer of a dbt change asks about (which DAGs exist,
which models sit in which DAG, how DAGs feed each other, where each model runs and why, each
DAG's schedule and owner, each task's dbt command), made from a build's public ``DagSpec``s.
Every build writes the same facts beside its DAG files as a sidecar (:data:`SIDECAR_SUFFIX`),
so a later preview can compare with what was built or pushed before without executing a
generated file (``dagfactory.diff``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagfactory.errors import ConfigError, one_line

if TYPE_CHECKING:
    from dagfactory.config import Config
    from dagfactory.diff import Diff
    from dagfactory.pipeline import BuildResult
    from dagfactory.render import RenderedFile
    from dagfactory.specs import DagSpec, TaskSpec

__all__ = [
    "SIDECAR_FORMAT",
    "SIDECAR_SUFFIX",
    "DagView",
    "Edge",
    "Preview",
    "PreviewResult",
    "TaskView",
    "format_markdown",
    "format_text",
    "from_build",
    "from_sidecar",
    "preview",
    "render_html",
    "sidecar_file",
    "sidecar_name",
    "write_page",
]

#: the sidecar's name ends with this; it must not end in ``.py`` (Airflow would parse it)
SIDECAR_SUFFIX = ".dagfactory.json"
SIDECAR_FORMAT = 1
#: Markdown stays small enough for a pull-request comment (GitHub allows 65,536 characters)
MERMAID_MAX_DAGS = 30
MERMAID_MAX_EDGES = 60
MARKDOWN_MAX_ROWS = 50
MARKDOWN_MAX_CHANGES = 60

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class TaskView:
    task_id: str
    models: tuple[str, ...]  # dbt unique ids, the primary node first
    resource_type: str
    runner: str  # celery | kubernetes
    reason: str
    size: str | None
    command: str  # dbt sub-command: build | test
    selector: str
    upstream: tuple[str, ...]  # task ids in the same DAG
    inlets: tuple[str, ...]  # asset URIs read from other DAGs
    outlets: tuple[str, ...]  # asset URIs other DAGs read

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "inlets": list(self.inlets),
            "models": list(self.models),
            "outlets": list(self.outlets),
            "reason": self.reason,
            "resource_type": self.resource_type,
            "runner": self.runner,
            "selector": self.selector,
            "size": self.size,
            "upstream": list(self.upstream),
        }


@dataclass(frozen=True)
class DagView:
    dag_id: str
    file: str
    group: str
    owner: str
    schedule: str | None  # the cron or preset; None for asset-only and manual DAGs
    trigger: str  # schedule | assets | asset_or_time
    sensors: int  # ExternalTaskSensors (cross_dag: sensors)
    tags: tuple[str, ...]
    upstream_dags: tuple[str, ...]
    tasks: tuple[TaskView, ...]

    @property
    def starts(self) -> str:
        """How the DAG starts, in words: ``@daily``, ``assets``, ``assets or @daily``."""
        if self.trigger == "assets":
            return "assets"
        if self.trigger == "asset_or_time":
            return f"assets or {self.schedule}"
        text = self.schedule or "manual"
        return f"{text} + sensors" if self.sensors else text

    def runners(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.tasks:
            counts[task.runner] = counts.get(task.runner, 0) + 1
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "group": self.group,
            "owner": self.owner,
            "schedule": self.schedule,
            "sensors": self.sensors,
            "tags": list(self.tags),
            "tasks": {task.task_id: task.to_dict() for task in self.tasks},
            "trigger": self.trigger,
            "upstream_dags": list(self.upstream_dags),
        }


@dataclass(frozen=True)
class Edge:
    """One DAG feeding another: the upstream tasks (models) whose assets the downstream reads."""

    upstream: str  # dag id
    downstream: str  # dag id
    models: tuple[str, ...]  # upstream task ids, sorted


@dataclass(frozen=True)
class Preview:
    project: str
    team: str
    kubernetes_mode: str  # pod_operator | executor: what a kubernetes route becomes
    dbt_executable: tuple[str, ...]
    dbt_flags: tuple[str, ...]  # what every task's dbt command line ends with
    dags: tuple[DagView, ...]

    @property
    def task_count(self) -> int:
        return sum(len(dag.tasks) for dag in self.dags)

    def dag(self, dag_id: str) -> DagView | None:
        for dag in self.dags:
            if dag.dag_id == dag_id:
                return dag
        return None

    def argv(self, task: TaskView) -> tuple[str, ...]:
        """The task's exact dbt command line (not yet quoted for a shell)."""
        return (*self.dbt_executable, task.command, "--select", task.selector, *self.dbt_flags)

    def edges(self) -> tuple[Edge, ...]:
        """Cross-DAG edges, from the assets tasks produce and other DAGs' tasks read."""
        producer: dict[str, tuple[str, str]] = {}
        for dag in self.dags:
            for task in dag.tasks:
                for uri in task.outlets:
                    producer[uri] = (dag.dag_id, task.task_id)
        carried: dict[tuple[str, str], set[str]] = {}
        for dag in self.dags:
            for task in dag.tasks:
                for uri in task.inlets:
                    if uri in producer:
                        up_dag, up_task = producer[uri]
                        carried.setdefault((up_dag, dag.dag_id), set()).add(up_task)
        return tuple(
            Edge(up, down, tuple(sorted(models))) for (up, down), models in sorted(carried.items())
        )

    def to_dict(self) -> dict[str, Any]:
        """The sidecar's content: every DAG's summary, sorted, so one change moves few lines."""
        return {
            "dags": {dag.dag_id: dag.to_dict() for dag in self.dags},
            "dbt": {"executable": list(self.dbt_executable), "flags": list(self.dbt_flags)},
            "format": SIDECAR_FORMAT,
            "generator": "dagfactory",
            "kubernetes_mode": self.kubernetes_mode,
            "project": self.project,
            "team": self.team,
        }


# --------------------------------------------------------------------------- making one


def _dbt_argv(result: BuildResult) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What every task's dbt command line starts and ends with: (executable, flags)."""
    if not result.dags:
        return ("dbt",), ()
    run = result.dags[0].dbt_run
    return tuple(run.executable), tuple(run.flags)


def _check_argv(
    spec: DagSpec, task: TaskSpec, executable: tuple[str, ...], flags: tuple[str, ...]
) -> None:
    """Never show a command the task does not run."""
    expected = (*executable, task.dbt_command, "--select", task.selector, *flags)
    if tuple(task.argv) != expected:
        raise ConfigError(
            f"task {spec.dag_id}.{task.task_id} runs {list(task.argv)!r}, which the "
            "preview cannot describe",
            key="dbt",
        )


def from_build(result: BuildResult) -> Preview:
    """The facts of a build, from its public specs only."""
    executable, flags = _dbt_argv(result)
    dags = []
    for spec in sorted(result.dags, key=lambda d: d.dag_id):
        tasks = []
        for task in sorted(spec.tasks, key=lambda t: t.task_id):
            _check_argv(spec, task, executable, flags)
            tasks.append(
                TaskView(
                    task_id=task.task_id,
                    models=tuple(task.unique_ids),
                    resource_type=task.resource_type,
                    runner=task.route.runner,
                    reason=task.route.reason,
                    size=task.route.size,
                    command=task.dbt_command,
                    selector=task.selector,
                    upstream=tuple(sorted(task.upstream)),
                    inlets=tuple(sorted(task.inlets)),
                    outlets=tuple(sorted(task.outlets)),
                )
            )
        dags.append(
            DagView(
                dag_id=spec.dag_id,
                file=spec.file_name,
                group=spec.group,
                owner=spec.owner,
                schedule=spec.schedule,
                trigger=spec.trigger,
                sensors=len(spec.sensors),
                tags=tuple(sorted(spec.tags)),
                upstream_dags=tuple(sorted(spec.upstream_dags)),
                tasks=tuple(tasks),
            )
        )
    return Preview(
        project=result.project,
        team=result.team,
        kubernetes_mode=result.config.routing.kubernetes.mode,
        dbt_executable=executable,
        dbt_flags=flags,
        dags=tuple(dags),
    )


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} is not a list of strings")
    return tuple(value)


def _str(value: Any, where: str, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where} is not a string")
    return value


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} is not an object")
    return value


def from_sidecar(data: bytes, *, path: str) -> Preview:
    """Read a sidecar written by :func:`sidecar_file`; a bad one is a one-line ConfigError."""
    import orjson

    try:
        raw = _obj(orjson.loads(data), "the sidecar")
        if raw.get("generator") != "dagfactory" or raw.get("format") != SIDECAR_FORMAT:
            raise ValueError(f"not a dagfactory summary of format {SIDECAR_FORMAT}")
        dbt = _obj(raw.get("dbt"), "dbt")
        dags = []
        for dag_id, dag in sorted(_obj(raw.get("dags"), "dags").items()):
            dag = _obj(dag, f"dags.{dag_id}")
            tasks = []
            for task_id, task in sorted(_obj(dag.get("tasks"), f"dags.{dag_id}.tasks").items()):
                where = f"dags.{dag_id}.tasks.{task_id}"
                task = _obj(task, where)
                tasks.append(
                    TaskView(
                        task_id=task_id,
                        models=_strs(task.get("models"), f"{where}.models"),
                        resource_type=_str(task.get("resource_type"), f"{where}.resource_type"),
                        runner=_str(task.get("runner"), f"{where}.runner"),
                        reason=_str(task.get("reason"), f"{where}.reason"),
                        size=_str(task.get("size"), f"{where}.size", optional=True),
                        command=_str(task.get("command"), f"{where}.command"),
                        selector=_str(task.get("selector"), f"{where}.selector"),
                        upstream=_strs(task.get("upstream"), f"{where}.upstream"),
                        inlets=_strs(task.get("inlets"), f"{where}.inlets"),
                        outlets=_strs(task.get("outlets"), f"{where}.outlets"),
                    )
                )
            sensors = dag.get("sensors", 0)
            if not isinstance(sensors, int):
                raise ValueError(f"dags.{dag_id}.sensors is not a number")
            dags.append(
                DagView(
                    dag_id=dag_id,
                    file=_str(dag.get("file"), f"dags.{dag_id}.file"),
                    group=_str(dag.get("group"), f"dags.{dag_id}.group"),
                    owner=_str(dag.get("owner"), f"dags.{dag_id}.owner"),
                    schedule=_str(dag.get("schedule"), f"dags.{dag_id}.schedule", optional=True),
                    trigger=_str(dag.get("trigger"), f"dags.{dag_id}.trigger"),
                    sensors=sensors,
                    tags=_strs(dag.get("tags"), f"dags.{dag_id}.tags"),
                    upstream_dags=_strs(dag.get("upstream_dags"), f"dags.{dag_id}.upstream_dags"),
                    tasks=tuple(tasks),
                )
            )
        return Preview(
            project=_str(raw.get("project"), "project"),
            team=_str(raw.get("team"), "team"),
            kubernetes_mode=_str(raw.get("kubernetes_mode"), "kubernetes_mode"),
            dbt_executable=_strs(dbt.get("executable"), "dbt.executable"),
            dbt_flags=_strs(dbt.get("flags"), "dbt.flags"),
            dags=tuple(dags),
        )
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
        raise ConfigError(
            f"cannot read the build summary: {one_line(str(exc))}", path=path
        ) from exc


def sidecar_name(project: str) -> str:
    """``<project>.dagfactory.json``: a flat, safe file name that never ends in ``.py``."""
    return (_UNSAFE_NAME.sub("_", project).strip("._") or "project") + SIDECAR_SUFFIX


def sidecar_bytes(preview: Preview) -> bytes:
    """Sorted, indented JSON: a change to one model changes only the lines of its facts."""
    import orjson

    return (
        orjson.dumps(preview.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )


def _sidecar_data(result: BuildResult) -> dict[str, Any]:
    """``from_build(result).to_dict()``, made straight from the specs.

    Every build writes it: no view objects, no copies of the specs' tuples (orjson writes a
    tuple as a list, and sorts the keys). The specs are sorted by ``assemble`` already, so
    each ``sorted`` here is one linear pass; a unit test keeps the two shapes equal.
    """
    executable, flags = _dbt_argv(result)
    dags: dict[str, Any] = {}
    for spec in sorted(result.dags, key=lambda d: d.dag_id):  # the first error as before
        tasks: dict[str, Any] = {}
        for task in sorted(spec.tasks, key=lambda t: t.task_id):
            _check_argv(spec, task, executable, flags)
            route = task.route
            tasks[task.task_id] = {
                "command": task.dbt_command,
                "inlets": sorted(task.inlets),
                "models": task.unique_ids,
                "outlets": sorted(task.outlets),
                "reason": route.reason,
                "resource_type": task.resource_type,
                "runner": route.runner,
                "selector": task.selector,
                "size": route.size,
                "upstream": sorted(task.upstream),
            }
        dags[spec.dag_id] = {
            "file": spec.file_name,
            "group": spec.group,
            "owner": spec.owner,
            "schedule": spec.schedule,
            "sensors": len(spec.sensors),
            "tags": sorted(spec.tags),
            "tasks": tasks,
            "trigger": spec.trigger,
            "upstream_dags": sorted(spec.upstream_dags),
        }
    return {
        "dags": dags,
        "dbt": {"executable": executable, "flags": flags},
        "format": SIDECAR_FORMAT,
        "generator": "dagfactory",
        "kubernetes_mode": result.config.routing.kubernetes.mode,
        "project": result.project,
        "team": result.team,
    }


def sidecar_file(result: BuildResult) -> RenderedFile:
    """The summary every build writes beside its DAG files (and a push uploads with them)."""
    import orjson

    from dagfactory.render import RenderedFile

    data = orjson.dumps(_sidecar_data(result), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    return RenderedFile(name=sidecar_name(result.project), text=data.decode() + "\n", dag_id="")


# --------------------------------------------------------------------------- text


def command_pattern(preview: Preview) -> str:
    """``dbt <build|test> --select <selector> <flags>``: what every task's command line is."""
    flags = f" {shlex.join(preview.dbt_flags)}" if preview.dbt_flags else ""
    return f"{shlex.join(preview.dbt_executable)} <build|test> --select <selector>{flags}"


def _runner_label(runner: str, mode: str) -> str:
    if runner == "kubernetes":
        return "kubernetes executor" if mode == "executor" else "kubernetes pod"
    return runner


def _route_text(task: TaskView, mode: str) -> str:
    size = f", size {task.size}" if task.size else ""
    return f"{_runner_label(task.runner, mode)} ({task.reason}{size})"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _headline(preview: Preview, edges: Sequence[Edge]) -> str:
    runners: dict[str, int] = {}
    for dag in preview.dags:
        for runner, n in dag.runners().items():
            runners[runner] = runners.get(runner, 0) + n
    counts = ", ".join(f"{runner} {n}" for runner, n in sorted(runners.items()))
    return (
        f"{preview.project} (team {preview.team}): {_plural(len(preview.dags), 'DAG')}, "
        f"{_plural(preview.task_count, 'task')}, {_plural(len(edges), 'link')} between DAGs"
        + (f"; runners: {counts}" if counts else "")
    )


def format_text(preview: Preview, diff: Diff | None = None) -> str:
    """A terminal tree: each DAG with its facts, feeds, and tasks with runner and command."""
    edges = preview.edges()
    feeds: dict[str, list[Edge]] = {}
    for edge in edges:
        feeds.setdefault(edge.downstream, []).append(edge)
    mode = preview.kubernetes_mode
    lines = [one_line(_headline(preview, edges))]
    lines.append(one_line(f"every dbt command: {command_pattern(preview)}"))
    for dag in preview.dags:
        lines.append("")
        tags = f"; tags {', '.join(dag.tags)}" if dag.tags else ""
        lines.append(
            one_line(
                f"{dag.dag_id}: {_plural(len(dag.tasks), 'task')}; starts {dag.starts}; "
                f"owner {dag.owner}{tags}"
            )
        )
        for edge in feeds.get(dag.dag_id, ()):
            lines.append(one_line(f"  <- {edge.upstream}: {', '.join(edge.models)}"))
        for i, task in enumerate(dag.tasks):
            last = i == len(dag.tasks) - 1
            branch, stem = ("└─ ", "   ") if last else ("├─ ", "│  ")
            after = f" after {', '.join(task.upstream)}" if task.upstream else ""
            lines.append(one_line(f"  {branch}{task.task_id}: {_route_text(task, mode)}{after}"))
            lines.append(one_line(f"  {stem}   {task.command} --select {task.selector}"))
    if diff is not None:
        lines.append("")
        lines.append(diff.format_text())
    return "\n".join(lines)


# --------------------------------------------------------------------------- markdown

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<#+!|~&])")


def md(text: str) -> str:
    """User text as inert Markdown: one line, markup and HTML escaped, no @mentions."""
    return _MD_SPECIAL.sub(r"\\\1", one_line(text)).replace("@", "&#64;")


def code(text: str) -> str:
    """An id as a code span; ids are sanitised (letters, digits, ``_``), so no backtick."""
    return f"`{text}`" if re.fullmatch(r"[A-Za-z0-9_.]+", text) else md(text)


def _mermaid_label(text: str) -> str:
    """A Mermaid node or edge label: quoted, with quotes and markup turned into entities."""
    out = []
    for ch in one_line(text):
        out.append(ch if ch.isalnum() or ch in " _.-:/" else f"#{ord(ch)};")
    return "".join(out)


def _mermaid(preview: Preview, edges: Sequence[Edge]) -> list[str]:
    shown = [dag.dag_id for dag in preview.dags[:MERMAID_MAX_DAGS]]
    ids = {dag_id: f"d{i}" for i, dag_id in enumerate(shown)}
    lines = ["```mermaid", "flowchart LR"]
    for dag_id in shown:
        lines.append(f'  {ids[dag_id]}["{_mermaid_label(dag_id)}"]')
    drawn = 0
    for edge in edges:
        if edge.upstream in ids and edge.downstream in ids and drawn < MERMAID_MAX_EDGES:
            label = ", ".join(edge.models[:2])
            if len(edge.models) > 2:
                label += f" and {len(edge.models) - 2} more"
            lines.append(
                f'  {ids[edge.upstream]} -->|"{_mermaid_label(label)}"| {ids[edge.downstream]}'
            )
            drawn += 1
    hidden_dags = len(preview.dags) - len(shown)
    hidden_edges = len(edges) - drawn
    if hidden_dags or hidden_edges:
        parts = []
        if hidden_dags:
            parts.append(_plural(hidden_dags, "DAG"))
        if hidden_edges:
            parts.append(_plural(hidden_edges, "edge"))
        lines.append(f'  more["and {" and ".join(parts)} more"]')
    lines.append("```")
    return lines


def format_markdown(preview: Preview, diff: Diff | None = None) -> str:
    """A pull-request comment: the change list, a summary table and a Mermaid graph (capped)."""
    edges = preview.edges()
    lines = [f"### dagfactory preview: {md(preview.project)}", ""]
    lines.append(md(_headline(preview, edges)))
    lines.append("")
    if diff is not None:
        lines.extend(diff.format_markdown(MARKDOWN_MAX_CHANGES))
        lines.append("")
    lines.append("| DAG | tasks | upstream DAGs | starts | owner | runners |")
    lines.append("|---|---:|---:|---|---|---|")
    for dag in preview.dags[:MARKDOWN_MAX_ROWS]:
        runners = ", ".join(f"{k} {v}" for k, v in dag.runners().items())
        lines.append(
            f"| {code(dag.dag_id)} | {len(dag.tasks)} | {len(dag.upstream_dags)} | "
            f"{md(dag.starts)} | {md(dag.owner)} | {md(runners)} |"
        )
    if len(preview.dags) > MARKDOWN_MAX_ROWS:
        lines.append(f"| and {len(preview.dags) - MARKDOWN_MAX_ROWS} more | | | | | |")
    lines.append("")
    lines.extend(_mermaid(preview, edges))
    off_celery = [
        (dag, task) for dag in preview.dags for task in dag.tasks if task.runner != "celery"
    ]
    if off_celery:
        lines.append("")
        lines.append("<details><summary>Tasks not on Celery</summary>")
        lines.append("")
        for dag, task in off_celery[:MARKDOWN_MAX_ROWS]:
            lines.append(
                f"- {code(f'{dag.dag_id}.{task.task_id}')}: "
                f"{md(_route_text(task, preview.kubernetes_mode))}"
            )
        if len(off_celery) > MARKDOWN_MAX_ROWS:
            lines.append(f"- and {len(off_celery) - MARKDOWN_MAX_ROWS} more")
        lines.append("")
        lines.append("</details>")
    return "\n".join(lines)


# --------------------------------------------------------------------------- json


def to_json(preview: Preview, diff: Diff | None = None) -> dict[str, Any]:
    """``--format json``: the sidecar's facts, the cross-DAG edges, and the changes."""
    data = preview.to_dict()
    data["edges"] = [
        {"upstream": e.upstream, "downstream": e.downstream, "models": list(e.models)}
        for e in preview.edges()
    ]
    if diff is not None:
        data["changes"] = diff.to_dict()
    return data


# --------------------------------------------------------------------------- html

_COL_WIDTH = 300
_ROW_HEIGHT = 34


def _layers(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layer of each node; nodes left on a cycle go one layer past the rest."""
    children: dict[str, set[str]] = {n: set() for n in nodes}
    indegree = dict.fromkeys(nodes, 0)
    for up, down in edges:
        if up in children and down in children and down not in children[up] and up != down:
            children[up].add(down)
            indegree[down] += 1
    layer = dict.fromkeys(nodes, 0)
    ready = sorted(n for n in nodes if indegree[n] == 0)
    done = set()
    while ready:
        node = ready.pop()
        done.add(node)
        for child in sorted(children[node]):
            layer[child] = max(layer[child], layer[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    last = max(layer.values(), default=0) + 1
    for node in nodes:
        if node not in done:
            layer[node] = last
    return layer


def layout(
    nodes: Sequence[str], edges: Sequence[tuple[str, str]], col_width: int = _COL_WIDTH
) -> dict[str, tuple[int, int]]:
    """Deterministic layered layout: ``node -> (x, y)``, columns by layer, rows by barycenter."""
    layer = _layers(nodes, edges)
    columns: dict[int, list[str]] = {}
    for node in sorted(nodes):
        columns.setdefault(layer[node], []).append(node)
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for up, down in edges:
        if up in parents and down in parents:
            parents[down].append(up)
    row: dict[str, float] = {}
    for col in sorted(columns):
        for i, node in enumerate(columns[col]):
            row[node] = i
    for col in sorted(columns)[1:]:  # one sweep: each node near the mean row of its parents
        members = columns[col]
        keys = {
            n: (sum(row[p] for p in parents[n]) / len(parents[n]) if parents[n] else row[n], n)
            for n in members
        }
        members.sort(key=lambda n: keys[n])
        for i, node in enumerate(members):
            row[node] = i
    return {
        node: (col * col_width, i * _ROW_HEIGHT)
        for col, members in columns.items()
        for i, node in enumerate(members)
    }


def _script_json(data: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``</`` or ``<!--``."""
    import orjson

    text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def html_data(preview: Preview, diff: Diff | None = None) -> dict[str, Any]:
    """What the page's script draws: compact arrays, positions of the DAG-of-DAGs included."""
    edges = preview.edges()
    # node boxes as wide as the longest label needs (about 7 px a character), at most 250
    longest = max((len(f"{d.dag_id} · {len(d.tasks)}") for d in preview.dags), default=10)
    node_width = min(250, 7 * longest + 24)
    positions = layout(
        [d.dag_id for d in preview.dags],
        [(e.upstream, e.downstream) for e in edges],
        col_width=node_width + 110,  # room for an edge label between columns
    )
    index = {dag.dag_id: i for i, dag in enumerate(preview.dags)}
    dags = []
    for dag in preview.dags:
        task_index = {task.task_id: i for i, task in enumerate(dag.tasks)}
        x, y = positions[dag.dag_id]
        dags.append(
            {
                "id": dag.dag_id,
                "x": x,
                "y": y,
                "group": dag.group,
                "owner": dag.owner,
                "starts": dag.starts,
                "tags": list(dag.tags),
                "file": dag.file,
                "up": [index[u] for u in dag.upstream_dags if u in index],
                "tasks": [
                    [
                        task.task_id,
                        task.runner,
                        task.reason,
                        task.size or "",
                        task.command,
                        task.selector,
                        list(task.models),
                        [task_index[u] for u in task.upstream if u in task_index],
                        len(task.inlets),
                    ]
                    for task in dag.tasks
                ],
            }
        )
    return {
        "project": preview.project,
        "team": preview.team,
        "mode": preview.kubernetes_mode,
        "nodeW": node_width,
        "exe": list(preview.dbt_executable),
        "flags": list(preview.dbt_flags),
        "dags": dags,
        "edges": [[index[e.upstream], index[e.downstream], list(e.models)] for e in edges],
        "changes": diff.format_text_lines() if diff is not None else None,
    }


def render_html(preview: Preview, diff: Diff | None = None) -> str:
    """One self-contained page: inline CSS and script, data as JSON, no network at view time."""
    import base64
    import hashlib
    from importlib import resources

    import jinja2
    from markupsafe import Markup

    templates = resources.files("dagfactory").joinpath("templates")
    source = templates.joinpath("preview.html.j2").read_text("utf-8")
    script = templates.joinpath("preview.js").read_text("utf-8")
    # The policy allows this one script by its hash: no inline handler or injected script runs.
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    env = jinja2.Environment(autoescape=True, keep_trailing_newline=True)
    template = env.from_string(source)
    return template.render(
        title=f"dagfactory preview: {preview.project}",
        headline=_headline(preview, preview.edges()),
        data=Markup(_script_json(html_data(preview, diff))),
        script=Markup(script),
        script_hash=f"sha256-{digest}",
    )


# --------------------------------------------------------------------------- the facade


def write_page(path: str | Path, html: str) -> None:
    """Write the page whole (temp file, then rename), so a reader never sees half of it."""
    import os
    import tempfile

    from dagfactory.errors import OutputError

    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(
            f"cannot write the preview page: {exc.strerror}", path=str(target)
        ) from exc


@dataclass(frozen=True)
class PreviewResult:
    preview: Preview
    diff: Diff | None = None

    def render(self, fmt: str) -> str:
        """``text`` | ``markdown`` | ``json`` | ``html``."""
        if fmt == "markdown":
            return format_markdown(self.preview, self.diff)
        if fmt == "html":
            return render_html(self.preview, self.diff)
        if fmt == "json":
            import orjson

            data = to_json(self.preview, self.diff)
            return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
        return format_text(self.preview, self.diff)


def preview(
    manifest_path: str | Path,
    config: Config | None = None,
    *,
    run_results: Sequence[str | Path] = (),
    against: str | None = None,
    endpoint_url: str | None = None,
) -> PreviewResult:
    """What ``dagfactory build`` would produce (nothing is written), and what it changes
    against a previous build folder or a push URL (read-only)."""
    from dagfactory import diff as diffs
    from dagfactory.pipeline import generate

    current = from_build(generate(manifest_path, config, run_results=run_results))
    if against is None:
        return PreviewResult(current)
    previous = diffs.load_previous(
        against, team=current.team, project=current.project, endpoint_url=endpoint_url
    )
    label = against if previous is not None else f"{against} (nothing there yet)"
    previous = previous if previous is not None else diffs.empty_preview(current)
    return PreviewResult(current, diffs.compare(previous, current, against=label))
