"""`diff.compare` as a table: one edit of a build's facts -> the change lines it reports.

Each row starts from the same small build (three DAGs: `a` feeds `b`; `c` stands alone),
edits one fact and lists every line the comparison prints under its summary line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from dagfactory.diff import compare
from dagfactory.preview import DagView, Preview, TaskView


def task(task_id: str, *, upstream=(), inlets=(), outlets=(), runner="celery", reason="default"):
    return TaskView(
        task_id=task_id,
        models=(f"model.p.{task_id}",),
        resource_type="model",
        runner=runner,
        reason=reason,
        size="small" if runner == "kubernetes" else None,
        command="build",
        selector=f"fqn:p.{task_id}",
        upstream=tuple(upstream),
        inlets=tuple(inlets),
        outlets=tuple(outlets),
    )


def dag(dag_id: str, *tasks: TaskView, upstream_dags=(), owner="o", schedule="@daily") -> DagView:
    return DagView(
        dag_id, f"{dag_id}.py", dag_id, owner, schedule, "schedule", 0, ("dbt",),
        tuple(upstream_dags), tuple(tasks),
    )  # fmt: skip


def base() -> Preview:
    return Preview(
        "p",
        "t",
        "pod_operator",
        ("dbt",),
        ("--flag",),
        (
            dag("a", task("x", outlets=["x-dbt://p/x"]), task("y", upstream=["x"])),
            dag("b", task("z", inlets=["x-dbt://p/x"]), upstream_dags=["a"]),
            dag("c", task("w")),
        ),
    )


def edit_dag(dag_id: str, **changes) -> Callable[[Preview], Preview]:
    def edit(preview: Preview) -> Preview:
        dags = tuple(
            dataclasses.replace(d, **changes) if d.dag_id == dag_id else d for d in preview.dags
        )
        return dataclasses.replace(preview, dags=dags)

    return edit


def edit_task(dag_id: str, task_id: str, **changes) -> Callable[[Preview], Preview]:
    def edit(preview: Preview) -> Preview:
        d = next(d for d in preview.dags if d.dag_id == dag_id)
        tasks = tuple(
            dataclasses.replace(t, **changes) if t.task_id == task_id else t for t in d.tasks
        )
        return edit_dag(dag_id, tasks=tasks)(preview)

    return edit


def add_dag(preview: Preview) -> Preview:
    return dataclasses.replace(preview, dags=(*preview.dags, dag("d", task("v"))))


def drop_dag(preview: Preview) -> Preview:
    return dataclasses.replace(preview, dags=tuple(d for d in preview.dags if d.dag_id != "c"))


CASES = {
    "nothing": (lambda p: p, []),
    "a DAG added": (add_dag, ["  added model.p.v (in d.v)", "  DAG added: d"]),
    "a DAG removed": (drop_dag, ["  removed model.p.w (was in c.w)", "  DAG removed: c"]),
    "a task's edge removed": (
        edit_task("a", "y", upstream=()),
        ["  DAG changed: a", "    edge removed: x -> y"],
    ),
    "an upstream DAG added": (
        edit_dag("c", upstream_dags=("a",)),
        ["  DAG changed: c", "    upstream DAG added: a"],
    ),
    "owner and schedule": (
        edit_dag("c", owner="Ops", schedule="@hourly"),
        ["  DAG changed: c", "    starts: @daily -> @hourly", "    owner: o -> Ops"],
    ),
    "re-routed by a tag": (
        edit_task("c", "w", runner="kubernetes", reason="tag heavy", size="small"),
        [
            "  re-routed model.p.w: celery (default) -> kubernetes pod (tag heavy, size small)",
            "  DAG changed: c",
            "    route of w: celery (default) -> kubernetes pod (tag heavy, size small)",
        ],
    ),
    "same runner, new reason": (
        edit_task("c", "w", reason="meta"),
        ["  DAG changed: c", "    route of w: celery (default) -> celery (meta)"],
    ),
    "a new selector": (
        edit_task("c", "w", selector="path:models/w.sql"),
        [
            "  DAG changed: c",
            "    command of w: build --select fqn:p.w -> build --select path:models/w.sql",
        ],
    ),
    "the shared dbt flags": (
        lambda p: dataclasses.replace(p, dbt_flags=("--flag", "--target", "prod")),
        ["  every dbt command ends with: --flag -> --flag --target prod"],
    ),
}


@pytest.mark.parametrize(("edit", "lines"), CASES.values(), ids=list(CASES))
def test_one_edit_reports_exactly_its_change(edit, lines):
    change = compare(base(), edit(base()), against="old")
    assert change.format_text_lines()[1:] == lines
    assert change.empty == (not lines)


def test_a_model_moved_between_dags_is_one_model_change_and_two_dag_changes():
    moved = task("w")
    new = dataclasses.replace(
        base(),
        dags=(
            dag("a", task("x", outlets=["x-dbt://p/x"]), task("y", upstream=["x"]), moved),
            dag("b", task("z", inlets=["x-dbt://p/x"]), upstream_dags=["a"]),
        ),
    )
    assert compare(base(), new, against="old").format_text_lines()[1:] == [
        "  moved model.p.w: c -> a",
        "  DAG removed: c",
        "  DAG changed: a",
        "    task added: w",
    ]
