"""What the Airflow DAG processor costs per hour when nothing changes: recommended settings
against Airflow's defaults, on one folder of generated DAG files.

    .venv/bin/python bench/steady_state.py --dags DIR --seconds 120 [--work DIR] [--json OUT]

Generated DAG files change only when a push replaces them. With Airflow's defaults the DAG
processor re-parses every file every 30 s anyway (``min_file_process_interval``); with the
recommended settings (docs/airflow-settings.md) it parses a file again only when its mtime
moves, or after an hour. For each profile this starts a real ``airflow dag-processor``
(SQLite, fresh ``AIRFLOW_HOME`` under the work folder, examples off), waits until every file
was parsed once and a short settle time passed, then reads the CPU time of the processor and
all its children (``/proc``: utime+stime of the live tree plus what it reaped) over a fixed
window and extrapolates it to an hour. The profiles run one after the other so they do not
compete for the CPU; the load average is recorded because the machines are shared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

AIRFLOW = Path(sys.executable).with_name("airflow")
TICKS = os.sysconf("SC_CLK_TCK")
PARSE_LINE = "Filling up the DagBag from"  # the processor logs it once per parse of a file

# Only what differs from Airflow 3.3's defaults; "defaults" sets nothing.
PROFILES: dict[str, dict[str, str]] = {
    "defaults": {},
    "recommended": {
        "AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE": "modified_time",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
    },
}


def _base_env(home: Path, dags: Path) -> dict[str, str]:
    """A clean Airflow environment: nothing inherited from the caller's AIRFLOW_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
    )
    return env


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and every live descendant, plus the children each has reaped.

    A parse child that already exited is in its parent's cutime/cstime once reaped, so the
    sum only grows; the difference of two readings is the tree's CPU in between.
    """
    stats: dict[int, tuple[int, float]] = {}  # pid -> (ppid, cpu seconds)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        stats[int(entry.name)] = (int(fields[1]), (utime + stime + cutime + cstime) / TICKS)
    children: dict[int, list[int]] = {}
    for child, (parent, _) in stats.items():
        children.setdefault(parent, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += stats[current][1]
            todo.extend(children.get(current, ()))
    return total


def parse_count(home: Path) -> int:
    """Parses so far, counted in the processor's per-file logs (``latest`` is a symlink)."""
    total = 0
    for day in (home / "logs" / "dag_processor").glob("*"):
        if day.is_symlink():
            continue
        for log in day.rglob("*.log"):
            total += log.read_text(errors="replace").count(PARSE_LINE)
    return total


def _files_parsed(home: Path) -> int:
    """DAG files that have a parse result in the DB: a DAG or an import error."""
    uri = f"file:{home / 'airflow.db'}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
            rows = db.execute(
                "SELECT relative_fileloc FROM dag WHERE last_parsed_time IS NOT NULL "
                "UNION SELECT filename FROM import_error"
            ).fetchall()
    except sqlite3.Error:  # tables not written yet
        return 0
    return len(rows)


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):  # parse children left behind
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _migrate(work: Path) -> Path:
    """One ``airflow db migrate``; every profile starts from a copy of this DB."""
    home = work / "template"
    home.mkdir(parents=True)
    subprocess.run(
        [str(AIRFLOW), "db", "migrate"],
        env=_base_env(home, work),
        cwd=home,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return home / "airflow.db"


def measure(
    dags: Path,
    seconds: float,
    home: Path,
    settings: dict[str, str],
    *,
    settle: float = 10,
    first_parse_timeout: float = 900,
) -> dict[str, Any]:
    """Run one ``airflow dag-processor`` with ``settings`` and measure its steady state."""
    files = sum(1 for p in dags.rglob("*.py") if ".objinsync" not in p.parts)
    env = _base_env(home, dags) | settings
    with (home / "dag-processor.log").open("wb") as log:
        process = subprocess.Popen(
            [str(AIRFLOW), "dag-processor"],
            env=env,
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        started = time.monotonic()
        while _files_parsed(home) < files:
            if process.poll() is not None:
                raise RuntimeError(
                    f"dag-processor exited with {process.returncode}; see {log.name}"
                )
            if time.monotonic() - started > first_parse_timeout:
                raise TimeoutError(f"not every file parsed after {first_parse_timeout} s")
            time.sleep(0.5)
        first_parse = time.monotonic() - started
        time.sleep(settle)
        load_before = os.getloadavg()[0]
        cpu0, parses0, t0 = tree_cpu_seconds(process.pid), parse_count(home), time.monotonic()
        while time.monotonic() - t0 < seconds:
            if process.poll() is not None:
                raise RuntimeError(f"dag-processor exited with {process.returncode}")
            time.sleep(1)
        cpu1, parses1, t1 = tree_cpu_seconds(process.pid), parse_count(home), time.monotonic()
    finally:
        _stop(process)
    window = t1 - t0
    cpu = cpu1 - cpu0
    return {
        "settings": settings,
        "dag_files": files,
        "first_parse_seconds": round(first_parse, 1),
        "window_seconds": round(window, 1),
        "cpu_seconds": round(cpu, 2),
        "cpu_seconds_per_hour": round(cpu * 3600 / window, 1),
        "cpu_percent_of_one_core": round(100 * cpu / window, 2),
        "parses_in_window": parses1 - parses0,
        "parses_per_hour": round((parses1 - parses0) * 3600 / window),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def run(
    dag_folder: str | Path,
    seconds: float,
    work_dir: str | Path,
    profiles: tuple[str, ...] = ("defaults", "recommended"),
    settle: float = 10,
) -> dict[str, Any]:
    """Measure each profile on ``dag_folder``; ``work_dir`` holds homes, DBs and logs."""
    dags, work = Path(dag_folder).resolve(), Path(work_dir).resolve()
    if work.exists():
        shutil.rmtree(work)
    template = _migrate(work)
    results: dict[str, Any] = {"dags": str(dags), "seconds": seconds, "profiles": {}}
    for name in profiles:
        home = work / name
        home.mkdir()
        shutil.copyfile(template, home / "airflow.db")
        results["profiles"][name] = measure(dags, seconds, home, PROFILES[name], settle=settle)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dags", required=True, type=Path, help="folder of DAG files")
    parser.add_argument("--seconds", type=float, default=120, help="measured window per profile")
    parser.add_argument("--settle", type=float, default=10, help="wait after the first parse")
    parser.add_argument("--work", type=Path, default=Path(".bench/steady-state"))
    parser.add_argument("--profiles", default="defaults,recommended", help=", ".join(PROFILES))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    profiles = tuple(p for p in args.profiles.split(",") if p)
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown:
        parser.error(f"unknown profile(s) {unknown}; known: {', '.join(PROFILES)}")
    results = run(args.dags, args.seconds, args.work, profiles, settle=args.settle)
    for name, r in results["profiles"].items():
        print(
            f"{name:12} {r['cpu_seconds_per_hour']:8.1f} s CPU/hour "
            f"({r['cpu_percent_of_one_core']:.2f}% of a core), "
            f"{r['parses_per_hour']} parses/hour, {r['dag_files']} files, "
            f"first parse {r['first_parse_seconds']} s, load {r['load_average_1m']}"
        )
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
