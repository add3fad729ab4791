"""Generated tasks run side by side on one worker, sharing one parse state.

Four tasks of one project start at once, as a Celery worker with concurrency 4 runs them,
with the shared parse state only, with the slices as well, and forked from the worker's dbt
server (started by a task before them) on the slices:
each runs the ``bash_command`` dagfactory generated for it (its own ``mktemp`` target folder,
``DBT_PARTIAL_PARSE_FILE_PATH`` at the project's ``target/partial_parse.msgpack`` made by one
``dbt parse``, the cheap flags). Each must succeed, skip parsing (no full parse), write only
to its own folder, and leave the shared file byte for byte as it was.

DuckDB lets one process at a time open a database file, so each task gets its own copy
of the database (a real warehouse takes concurrent sessions). The copies must not change
the profile: dbt hashes the connection values (for dbt-duckdb: database, schema, path,
...) into the parse state and fully re-parses when one differs ("profile has changed").
So every run sees the same relative ``DBT_DUCKDB_PATH`` and each task runs in its own
working directory, next to its own copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    bash_commands,
    dbt_executable,
    dbt_server_sockets,
    load_synth_project,
    stop_dbt_servers,
    wait_until,
)

from dagfactory import generate, load_config
from dagfactory.dbt_slices import write_dbt_slices

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

TASKS = 4
DB = "db.duckdb"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pick(plan, count: int) -> list[str]:
    """Tested, non-ephemeral intermediate models with few ancestors (cheap to load)."""
    by_name = {m.name: m for m in plan.models}

    def ancestors(name: str) -> set[str]:
        seen: set[str] = set()
        stack = [name]
        while stack:
            for p in by_name[stack.pop()].parents:
                if p in by_name and p not in seen:
                    seen.add(p)
                    stack.append(p)
        return seen

    ok = [
        m.name
        for m in plan.models
        if m.layer == "intermediate" and m.tested and not m.ephemeral and not m.reads_run_date
    ]
    return sorted(ok, key=lambda n: (len(ancestors(n)), n))[:count]


@pytest.mark.parametrize(
    ("slices", "server"),
    [(False, False), (True, False), (True, True)],
    ids=["parse-state", "slices", "slices-forked-from-server"],
)
def test_four_generated_tasks_at_once_share_the_parse_state(
    tmp_path: Path, slices: bool, server: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbt = dbt_executable()
    project = tmp_path / "project"
    plan = load_synth_project().generate(100, project)
    models = _pick(plan, TASKS)
    assert len(models) == TASKS
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        DBT_DUCKDB_PATH=DB,  # relative to the working directory
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_USE_COLORS="false",
        PYTHONPYCACHEPREFIX=str(tmp_path / "pycache"),  # later dbt starts reuse bytecode
    )
    dirs = ["--project-dir", str(project), "--profiles-dir", str(project)]

    def setup(*args: str) -> None:
        done = subprocess.run(
            [dbt, *args, *dirs, "--log-path", str(tmp_path / "setup-logs")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:]

    setup("parse")  # the shared parse state
    shared = project / "target" / "partial_parse.msgpack"
    if slices:  # and, in the image build, the slices (tasks then parse nothing at all)
        monkeypatch.setenv("DBT_DUCKDB_PATH", DB)  # the environment the parse ran in
        written = write_dbt_slices(
            project / "target" / "manifest.json", project / "target" / "dagfactory_slices"
        )
        assert written.refused is None and written.slices > TASKS
    before = _sha(shared)
    setup("seed")
    setup("run", "--select", " ".join(f"+{m}" for m in models))  # parents exist in DuckDB

    config = load_config(
        None,
        {
            "routing.force": "celery",
            "dbt.executable": dbt,
            "dbt.project_dir": str(project),
            "dbt.target_base": str(tmp_path / "targets"),
            "dbt.keep_target": True,  # so the test can read each task's dbt.log
            "dbt.server_idle_seconds": 600 if server else 0,
        },
    )
    commands = bash_commands(generate(project / "target" / "manifest.json", config).files)
    if server:  # the worker's first task starts its dbt server; these four fork from it
        stop_dbt_servers()
        first = tmp_path / "first-task"
        first.mkdir()
        shutil.copyfile(tmp_path / DB, first / DB)
        task_env = {**env, "AIRFLOW_CTX_DAG_ID": "synth", "AIRFLOW_CTX_TASK_ID": models[0]}
        done = subprocess.run(
            ["bash", "-c", commands[models[0]]], cwd=first, env=task_env, capture_output=True
        )
        assert done.returncode == 0, done.stdout[-3000:]
        assert wait_until(dbt_server_sockets), "no dbt server started"
    for i in range(TASKS):  # before any task starts: they must all run at once
        (tmp_path / f"task{i}").mkdir()
        shutil.copyfile(tmp_path / DB, tmp_path / f"task{i}" / DB)
    procs: list[tuple[str, Path, subprocess.Popen]] = []
    started = time.monotonic()
    for i, name in enumerate(models):
        task = tmp_path / f"task{i}"
        task_env = {**env, "AIRFLOW_CTX_DAG_ID": "synth", "AIRFLOW_CTX_TASK_ID": name}
        out = (task / "stdout.txt").open("wb")
        command = commands[name]
        assert "DBT_PARTIAL_PARSE_FILE_PATH=" in command and "--no-write-json" in command
        proc = subprocess.Popen(
            ["bash", "-c", command], cwd=task, env=task_env, stdout=out, stderr=subprocess.STDOUT
        )
        procs.append((name, task, proc))
        out.close()
    assert all(p.poll() is None for _, _, p in procs), "a task ended before all had started"
    codes = [p.wait(timeout=300) for _, _, p in procs]
    elapsed = time.monotonic() - started

    folders = set()
    for (name, task, _), code in zip(procs, codes):
        stdout = (task / "stdout.txt").read_text()
        assert code == 0, f"{name}: exit {code}\n{stdout[-3000:]}"
        target = Path(stdout.split("dagfactory: dbt target folder ", 1)[1].splitlines()[0])
        assert target.parent == tmp_path / "targets" and target.name.startswith(f"synth.{name}.")
        folders.add(target)
        log = (target / "dbt.log").read_text()
        assert "Unable to do partial parsing" not in log, name
        assert "Starting full parse" not in log, name
        if slices:  # dbt got its manifest from run.py: it read no parse state, parsed nothing
            assert "dagfactory: dbt runs on the slice" in stdout, name
            assert "Partial parsing enabled" not in log, name
            forked = "dagfactory: dbt ran in a child of the worker's dbt server" in stdout
            assert forked == server, name
        else:
            assert "Partial parsing enabled, no changes found, skipping parsing" in log, name
        assert f"model main.{name}" in log
        assert "PASS=3" in stdout  # the model + its unique and not_null tests
        assert not (target / "partial_parse.msgpack").exists()  # nothing was re-parsed
        assert not (target / "run_results.json").exists()  # --no-write-json
    assert len(folders) == TASKS
    assert _sha(shared) == before
    assert elapsed < 240
