"""A real Airflow 3 DAG processor re-parses a generated DAG file only when a push changes it.

Generated DAG files are static: they change only when a push replaces them, and objinsync
replaces a file by writing a temporary file in ``<dags>/.objinsync/`` and renaming it into
place. With ``[dag_processor] file_parsing_sort_mode = modified_time`` Airflow re-queues a
file whose mtime is newer than its last parse even inside ``min_file_process_interval``
(``DagFileProcessorManager.prepare_file_queue`` / ``_sort_by_mtime`` in
``airflow/dag_processing/manager.py``), so a long interval costs nothing in freshness.

These tests start a real ``airflow dag-processor`` (SQLite, a temporary ``AIRFLOW_HOME``, no
sockets) over the sample project's generated files and read what it did from the metadata DB
(``dag.last_parsed_time``, ``dag.owners``, ``dag.is_stale``, ``serialized_dag.data``) and
from its per-file logs (one "Filling up the DagBag" line per parse). The processor is stopped
by process group at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SHOP
from test_airflow_scheduler import AIRFLOW, _Airflow, _airflow_env, _free_port, _wait

from dagfactory.config import load_config
from dagfactory.pipeline import build

pytestmark = [
    pytest.mark.slow,
    pytest.mark.airflow,
    pytest.mark.skipif(not AIRFLOW.exists(), reason="no airflow executable beside python"),
]

INTERVAL = 3600  # [dag_processor] min_file_process_interval: far longer than any test
REFRESH = 5  # [dag_processor] refresh_interval: how often the folder is listed again
UNCHANGED_WATCH = 35  # seconds: longer than Airflow's default 30 s interval
CONTROL_WATCH = 20
STARTUP_DEADLINE = 120
CHANGE_DEADLINE = 30
CHANGED = "shop_team__marketing"  # the DAG whose file a push changes
DELETED = "shop_team__sales"  # the DAG whose file a push deletes
NEW_OWNER = "Growth Marketing (new owner)"
PARSE_LINE = "Filling up the DagBag from"  # logged once per parse of a file


def _recommended(sort_mode: str = "modified_time") -> dict[str, str]:
    return {
        "AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE": sort_mode,
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(INTERVAL),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(REFRESH),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def _build(manifest: Path, out: Path) -> dict[str, bytes]:
    """Generate the DAG files (Celery runners only: no Kubernetes import to wait for)."""
    config = load_config(SHOP / "dagfactory.yml", {"routing.force": "celery"})
    build(manifest, out, config)
    return {p.stem: p.read_bytes() for p in sorted(out.glob("*.py"))}


def objinsync_put(dags: Path, dag_id: str, content: bytes) -> dt.datetime:
    """Replace ``<dag_id>.py`` as objinsync does; returns the wall-clock time of the rename.

    objinsync downloads into ``<dags>/.objinsync/<md5 of the local path>``, renames that onto
    the target (same file system, so atomic) and removes its working folder after the pull.
    """
    target = dags / f"{dag_id}.py"
    work = dags / ".objinsync"
    work.mkdir(exist_ok=True)
    tmp = work / hashlib.md5(str(target).encode()).hexdigest()
    tmp.write_bytes(content)
    os.replace(tmp, target)
    renamed = dt.datetime.now(dt.timezone.utc)
    shutil.rmtree(work)
    return renamed


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)


def last_parsed(airflow: _Airflow) -> dict[str, dt.datetime]:
    rows = airflow.query(
        "SELECT dag_id, last_parsed_time FROM dag WHERE last_parsed_time IS NOT NULL"
    )
    return {dag_id: _utc(when) for dag_id, when in rows}


def parse_counts(airflow: _Airflow) -> dict[str, int]:
    """Parses per DAG file, counted in the processor's per-file logs (all days)."""
    counts: dict[str, int] = {}
    for day in (airflow.home / "logs" / "dag_processor").glob("*"):
        if day.is_symlink():  # "latest" points at today's folder
            continue
        for log in day.glob("dags-folder/*.py.log"):
            name = log.name.removesuffix(".py.log")
            counts[name] = counts.get(name, 0) + log.read_text(errors="replace").count(PARSE_LINE)
    return counts


def serialized(airflow: _Airflow, dag_id: str) -> dict[str, Any]:
    """The newest serialized form of ``dag_id``, as the scheduler and UI read it."""
    (data,) = airflow.query(
        "SELECT data FROM serialized_dag WHERE dag_id = ? ORDER BY last_updated DESC LIMIT 1",
        dag_id,
    )[0]
    return json.loads(data)["dag"]


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory) -> Path:
    """One ``airflow db migrate`` for the module; each test runs on a copy of it."""
    home = tmp_path_factory.mktemp("airflow-template")
    template = _Airflow(home, _airflow_env(home, home / "dags", _free_port()))
    template.cli("db", "migrate", timeout=300)
    return home / "airflow.db"


@pytest.fixture
def shop_build(tmp_path: Path, shop_manifest: Path) -> tuple[Path, dict[str, bytes]]:
    dags = tmp_path / "dags"
    return dags, _build(shop_manifest, dags)


@pytest.fixture
def start_processor(
    tmp_path: Path, migrated_db: Path, shop_build: tuple[Path, dict[str, bytes]]
) -> Iterator[Callable[[dict[str, str]], _Airflow]]:
    """Start ``airflow dag-processor`` over the build with extra env; stopped at teardown."""
    started: list[_Airflow] = []

    def start(settings: dict[str, str]) -> _Airflow:
        home = tmp_path / "airflow-home"
        home.mkdir()
        shutil.copyfile(migrated_db, home / "airflow.db")
        env = _airflow_env(home, shop_build[0], _free_port())
        env.update(settings)
        airflow = _Airflow(home, env)
        started.append(airflow)
        airflow.start("dag-processor", "dag-processor")
        return airflow

    try:
        yield start
    finally:
        for airflow in started:
            airflow.stop()


def _first_parse_done(airflow: _Airflow, dag_ids: set[str]) -> None:
    """Wait until every file was parsed once: the DB and the per-file logs both show it."""

    def done() -> bool:
        with contextlib.suppress(Exception):  # tables may not be readable yet
            return set(last_parsed(airflow)) == set(parse_counts(airflow)) == dag_ids
        return False

    started = time.monotonic()
    _wait("the first parse of every file", done, airflow, started + STARTUP_DEADLINE)
    print(f"first parse of {len(dag_ids)} files: {time.monotonic() - started:.1f} s after start")


def _wait_for_reparse(
    airflow: _Airflow, dag_id: str, after: dt.datetime, deadline: float
) -> dt.datetime:
    def moved() -> dt.datetime | None:
        when = last_parsed(airflow).get(dag_id)
        return when if when and when > after else None

    return _wait(f"{dag_id} to be parsed again", moved, airflow, deadline, every=0.2)


def test_unchanged_files_wait_for_the_interval_and_pushed_changes_are_parsed_at_once(
    start_processor, shop_build, edited_manifest, tmp_path
):
    dags, files = shop_build
    dag_ids = set(files)
    assert {CHANGED, DELETED} <= dag_ids
    airflow = start_processor(_recommended())
    _first_parse_done(airflow, dag_ids)
    time.sleep(2)  # results still in flight would show up as a "re-parse" below
    first, counts = last_parsed(airflow), parse_counts(airflow)
    assert counts == dict.fromkeys(dag_ids, 1)

    # 1. Nothing changes: nothing is parsed again, even past Airflow's default 30 s interval.
    end = time.monotonic() + UNCHANGED_WATCH
    while time.monotonic() < end:
        airflow.check_alive()
        time.sleep(1)
    assert last_parsed(airflow) == first
    assert parse_counts(airflow) == counts

    # 2. A push changes one file (a new owner for the marketing group), objinsync renames it in.
    def new_owner(raw: dict[str, Any]) -> None:
        raw["groups"]["group.shop.marketing"]["owner"]["name"] = NEW_OWNER

    rebuilt = _build(edited_manifest(new_owner), tmp_path / "rebuilt")
    changed = {dag_id for dag_id in files if rebuilt[dag_id] != files[dag_id]}
    assert changed == {CHANGED}
    renamed = objinsync_put(dags, CHANGED, rebuilt[CHANGED])
    parsed_at = _wait_for_reparse(
        airflow, CHANGED, first[CHANGED], time.monotonic() + CHANGE_DEADLINE
    )
    latency = (parsed_at - renamed).total_seconds()
    print(f"changed file parsed {latency:.2f} s after the rename")
    assert airflow.query("SELECT owners FROM dag WHERE dag_id = ?", CHANGED) == [(NEW_OWNER,)]
    assert NEW_OWNER in serialized(airflow, CHANGED)["doc_md"]
    now = last_parsed(airflow)
    assert {d: now[d] for d in dag_ids - {CHANGED}} == {d: first[d] for d in dag_ids - {CHANGED}}
    # the per-file log may trail the DB by a moment; a third parse would never match
    expected = {**counts, CHANGED: 2}
    _wait(
        "the log to show the one re-parse",
        lambda: parse_counts(airflow) == expected,
        airflow,
        time.monotonic() + 5,
    )

    # 3. A push deletes a file: its DAG goes stale at the next listing of the folder.
    (dags / f"{DELETED}.py").unlink()
    deleted = time.monotonic()

    def stale() -> bool:
        return airflow.query("SELECT is_stale FROM dag WHERE dag_id = ?", DELETED) == [(1,)]

    _wait(f"{DELETED} to go stale", stale, airflow, deleted + CHANGE_DEADLINE, every=0.2)
    print(f"deleted file's DAG stale {time.monotonic() - deleted:.2f} s after the delete")
    assert airflow.query("SELECT dag_id FROM dag WHERE is_stale") == [(DELETED,)]

    # 4. A push adds a file: parsed as soon as a listing finds it, and active again.
    added = objinsync_put(dags, DELETED, files[DELETED])
    parsed_at = _wait_for_reparse(
        airflow, DELETED, first[DELETED], time.monotonic() + CHANGE_DEADLINE
    )
    print(f"added file parsed {(parsed_at - added).total_seconds():.2f} s after the rename")
    assert airflow.query("SELECT dag_id FROM dag WHERE is_stale") == []


def test_control_without_modified_time_a_changed_file_waits_for_the_interval(
    start_processor, shop_build
):
    """``alphabetical`` (like ``random_seeded_by_host``) never looks at mtimes: the change
    waits for ``min_file_process_interval``. (Airflow's default mode is ``modified_time``.)
    """
    dags, files = shop_build
    airflow = start_processor(_recommended(sort_mode="alphabetical"))
    _first_parse_done(airflow, set(files))
    time.sleep(2)
    first, counts = last_parsed(airflow), parse_counts(airflow)
    old_owner = airflow.query("SELECT owners FROM dag WHERE dag_id = ?", CHANGED)

    objinsync_put(dags, CHANGED, files[CHANGED].replace(b"Growth Marketing", b"Someone Else"))
    end = time.monotonic() + CONTROL_WATCH
    while time.monotonic() < end:
        airflow.check_alive()
        time.sleep(1)
    assert last_parsed(airflow) == first
    assert parse_counts(airflow) == counts
    assert airflow.query("SELECT owners FROM dag WHERE dag_id = ?", CHANGED) == old_owner
