"""Measure what Airflow pays to parse a folder of DAG files. Runs inside an Airflow virtualenv.

Called by ``bench/run.py`` in a fresh process (``AIRFLOW_HOME`` a temp folder, examples off),
prints one JSON object on stdout. Three modes, one per way Airflow parses DAG files:

``dagbag FOLDER``
    ``DagBag(FOLDER)`` once: what ``airflow dags list`` or a test suite pays.
``loop FOLDER [FOLDER ...] --loops N``
    The Airflow 3 DAG processor's loop, with Airflow's own code: the parent (Airflow imported,
    as in the DAG processor) pre-imports the Airflow modules a file names, forks one child per
    file; the child runs ``airflow.dag_processing.processor._parse_file`` (stability check,
    ``BundleDagBag`` of the one file, ``DagSerialization.to_dict`` per DAG) and sends the
    ``DagFileParsingResult`` back as JSON over a pipe, which the parent validates with pydantic
    as the manager does. Files are parsed one at a time, so a loop's seconds are its CPU cost;
    the real processor runs ``parsing_processes`` children at once. Folders alternate loop by
    loop so machine noise hits them alike. Writing to the metadata DB is not included.
``taskstart FOLDER REL_FILE DAG_ID TASK_ID [... more groups of four] --repeats N``
    A task start: a forked child parses the one file holding the task (``BundleDagBag`` with
    the arguments ``task_runner.parse`` uses) and looks the task up (``~NAME``: the first
    task whose id contains NAME).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path


def _import_airflow() -> float:
    started = time.perf_counter()
    import airflow.dag_processing.processor  # what the DAG processor has loaded
    import airflow.sdk.execution_time.task_runner  # noqa: F401

    return time.perf_counter() - started


def _fork_and_read(child) -> tuple[bytes, int, float]:
    """Run ``child()`` (returning bytes) in a forked process: its output, exit code, CPU seconds."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        code = 0
        try:
            data = child()
            with os.fdopen(write_fd, "wb") as out:
                out.write(data)
        except BaseException as exc:  # report, never fall back into the parent's code
            sys.stderr.write(f"child failed: {exc!r}\n")
            code = 1
        os._exit(code)
    os.close(write_fd)
    chunks = []
    with os.fdopen(read_fd, "rb") as pipe:
        while chunk := pipe.read(1 << 20):
            chunks.append(chunk)
    _, status, usage = os.wait4(pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    return b"".join(chunks), os.waitstatus_to_exitcode(status), cpu


def _dag_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".py" and p.is_file())


def mode_dagbag(args: argparse.Namespace) -> dict:
    import_seconds = _import_airflow()
    from airflow.dag_processing.dagbag import DagBag

    started, cpu_started = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=args.folder, load_op_links=False)
    seconds = time.perf_counter() - started
    return {
        "import_seconds": import_seconds,
        "dagbag_seconds": seconds,
        "dagbag_cpu_seconds": time.process_time() - cpu_started,
        "dags": len(bag.dags),
        "tasks": sum(len(d.tasks) for d in bag.dags.values()),
        "import_errors": len(bag.import_errors),
        "first_error": next(iter(bag.import_errors.values()), None),
    }


def mode_loop(args: argparse.Namespace) -> dict:
    _import_airflow()
    import structlog
    from airflow.dag_processing.processor import (
        DagFileParseRequest,
        DagFileParsingResult,
        _parse_file,
        _pre_import_airflow_modules,
    )

    log = structlog.get_logger(logger_name="bench")
    folders = [Path(f).resolve() for f in args.folders]
    files = {str(f): _dag_files(f) for f in folders}
    loops: dict[str, list[float]] = {str(f): [] for f in folders}
    cpu_loops: dict[str, list[float]] = {str(f): [] for f in folders}
    per_file: dict[str, dict[str, list[float]]] = {str(f): {} for f in folders}
    checks: dict[str, dict] = {}
    for _ in range(args.loops):
        for folder in folders:
            key = str(folder)
            dags = tasks = errors = 0
            first_error = None
            started, cpu = time.perf_counter(), time.process_time()
            children_cpu = 0.0
            for path in files[key]:
                _pre_import_airflow_modules(str(path), log)  # the parent does this per file
                request = DagFileParseRequest(
                    file=str(path), bundle_path=folder, bundle_name="bench", callback_requests=[]
                )

                def child(request=request) -> bytes:
                    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "client"
                    result = _parse_file(request, log)
                    return result.model_dump_json().encode() if result else b""

                data, code, child_cpu = _fork_and_read(child)
                children_cpu += child_cpu
                per_file[key].setdefault(path.name, []).append(child_cpu)
                result = DagFileParsingResult.model_validate_json(data) if data else None
                if code or result is None:
                    errors += 1
                    continue
                dags += len(result.serialized_dags)
                tasks += sum(len(d.data["dag"]["tasks"]) for d in result.serialized_dags)
                if result.import_errors:
                    errors += len(result.import_errors)
                    first_error = first_error or next(iter(result.import_errors.values()))
            loops[key].append(time.perf_counter() - started)
            cpu_loops[key].append(time.process_time() - cpu + children_cpu)
            checks[key] = {
                "files": len(files[key]),
                "dags": dags,
                "tasks": tasks,
                "import_errors": errors,
                "first_error": first_error,
            }
    return {
        key: {
            "loop_seconds": values,
            "median": statistics.median(values),
            "loop_cpu_seconds": cpu_loops[key],
            "median_cpu": statistics.median(cpu_loops[key]),
            "file_cpu_medians": {
                name: statistics.median(values) for name, values in sorted(per_file[key].items())
            },
            **checks[key],
        }
        for key, values in loops.items()
    }


def mode_taskstart(args: argparse.Namespace) -> dict:
    _import_airflow()
    from airflow.dag_processing.dagbag import BundleDagBag

    targets = [args.targets[i : i + 4] for i in range(0, len(args.targets), 4)]
    samples: dict[str, list[float]] = {t[0]: [] for t in targets}
    cpu: dict[str, list[float]] = {t[0]: [] for t in targets}
    found: dict[str, bool] = {}
    for _ in range(args.repeats):
        for folder, rel_file, dag_id, task_id in targets:

            def child(folder=folder, rel_file=rel_file, dag_id=dag_id, task_id=task_id) -> bytes:
                bag = BundleDagBag(
                    dag_folder=os.path.join(folder, rel_file),
                    safe_mode=False,
                    load_op_links=False,
                    bundle_path=Path(folder),
                    bundle_name="bench",
                )
                tasks = bag.dags[dag_id].task_dict
                if task_id.startswith("~"):  # a name the task id contains (cosmos adds suffixes)
                    task_id = next(t for t in sorted(tasks) if task_id[1:] in t)
                return tasks[task_id].task_id.encode()

            started = time.perf_counter()
            data, code, child_cpu = _fork_and_read(child)
            samples[folder].append(time.perf_counter() - started)
            cpu[folder].append(child_cpu)
            found[folder] = code == 0 and task_id.lstrip("~").encode() in data
    return {
        folder: {
            "seconds": values,
            "median": statistics.median(values),
            "cpu_seconds": cpu[folder],
            "median_cpu": statistics.median(cpu[folder]),
            "found": found[folder],
        }
        for folder, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("dagbag")
    p.add_argument("folder")
    p = sub.add_parser("loop")
    p.add_argument("folders", nargs="+")
    p.add_argument("--loops", type=int, default=3)
    p = sub.add_parser("taskstart")
    p.add_argument("targets", nargs="+", help="FOLDER REL_FILE DAG_ID TASK_ID, repeated")
    p.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.mode == "taskstart" and len(args.targets) % 4:
        parser.error("taskstart takes groups of FOLDER REL_FILE DAG_ID TASK_ID")
    gc.collect()
    result = {"dagbag": mode_dagbag, "loop": mode_loop, "taskstart": mode_taskstart}[args.mode](
        args
    )
    sys.stdout.write("BENCH_RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
