"""Measure what Airflow pays to parse a folder of DAG files. Runs inside an Airflow virtualenv.

Called by ``bench/run.py`` in a fresh process (``AIRFLOW_HOME`` a temp folder, examples off),
prints one JSON object on stdout. One mode per way Airflow (or Python) parses DAG files:

``dagbag FOLDER``
    ``DagBag(FOLDER)`` once, in this process: what ``airflow dags list`` or a test suite pays.
``exec FOLDER [FOLDER ...] --repeats N``
    Per file: a forked child compiles the file's source and executes it as a module, nothing
    else (no DagBag). The parent has Airflow and the file's ``airflow.*`` imports loaded, so
    the time is the file's own: the floor any loader pays for it.
``dagbag-files FOLDER [FOLDER ...] --repeats N``
    Per file: a forked child runs ``DagBag(FILE)`` (import, checks, bagging), the parent as
    for ``exec``: the file's share of ``DagBag(FOLDER)``.
``loop FOLDER [FOLDER ...] --loops N``
    The Airflow 3 DAG processor's loop, with Airflow's own code. The parent is set up like the
    real one (``airflow dag-processor``): the manager, processor and serialization modules are
    imported and ``gc.freeze()`` is called before the first fork (``DagFileProcessorManager.
    before_run``), so a child's collections never walk the parent's heap. Per file the parent
    pre-imports the file's ``airflow.*`` modules (``_pre_import_airflow_modules``, as
    ``DagFileProcessorProcess.start`` does) and forks one child that runs
    ``airflow.dag_processing.processor._parse_file`` (stability check, ``BundleDagBag`` of the
    one file, ``DagSerialization.to_dict`` per DAG) and sends the ``DagFileParsingResult``
    back as JSON over a pipe, which the parent validates with pydantic as the manager does.
    Files are parsed one at a time, so a loop's seconds are its CPU cost; the real processor
    runs ``parsing_processes`` children at once. Folders alternate loop by loop so machine
    noise hits them alike. Writing to the metadata DB is not included.
``taskstart FOLDER REL_FILE DAG_ID TASK_ID [... more groups of four] --repeats N``
    A task start: a forked child parses the one file holding the task (``BundleDagBag`` with
    the arguments ``task_runner.parse`` uses) and looks the task up (``~NAME``: the first
    task whose id contains NAME). Results are keyed by ``FOLDER/REL_FILE``.

Every forked child has a time limit (``--child-timeout``, seconds): a child over it is killed
and its sample recorded as ``null`` (``timed_out`` counts them), so one pathological file
cannot stall the whole benchmark.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import select
import signal
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_CHILD_TIMEOUT = 600.0


def _import_airflow() -> float:
    started = time.perf_counter()
    import airflow.dag_processing.processor  # what the DAG processor has loaded
    import airflow.sdk.execution_time.task_runner  # noqa: F401

    return time.perf_counter() - started


def _import_dag_processor() -> None:
    """What the real DAG processor's parent has imported before it forks its first child.

    ``airflow dag-processor`` runs ``DagFileProcessorManager`` (``manager.py``), which imports
    the processor, the bundle manager, ``collection`` (DB writes) and, through them, the
    serialization modules; children inherit all of it.
    """
    import airflow.dag_processing.collection
    import airflow.dag_processing.manager
    import airflow.dag_processing.processor
    import airflow.sdk.execution_time.task_runner
    import airflow.serialization.serialized_objects  # noqa: F401


@dataclass
class ChildRun:
    """One forked child: what it wrote, how it ended, its CPU seconds (rusage)."""

    data: bytes
    code: int
    cpu: float
    wall: float
    timed_out: bool


def _fork_and_read(child: Callable[[], bytes], timeout: float) -> ChildRun:
    """Run ``child()`` (returning bytes) in a forked process, killed after ``timeout`` s."""
    read_fd, write_fd = os.pipe()
    started = time.perf_counter()
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
    timed_out = False
    deadline = started + timeout
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.perf_counter()
            ready, _, _ = select.select([pipe], [], [], max(0.0, left))
            if not ready:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
            chunk = pipe.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    _, status, usage = os.wait4(pid, 0)
    return ChildRun(
        data=b"".join(chunks),
        code=os.waitstatus_to_exitcode(status),
        cpu=usage.ru_utime + usage.ru_stime,
        wall=time.perf_counter() - started,
        timed_out=timed_out,
    )


def _median(values: list[float | None]) -> float | None:
    """Median of the samples that finished (``None``: timed out)."""
    done = [v for v in values if v is not None]
    return statistics.median(done) if done else None


def _dag_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".py" and p.is_file())


def _pre_import(path: Path) -> None:
    """Import the file's ``airflow.*`` modules here, as the DAG processor's parent does."""
    import structlog
    from airflow.dag_processing.processor import _pre_import_airflow_modules

    _pre_import_airflow_modules(str(path), structlog.get_logger(logger_name="bench"))


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


def _exec_file(path: Path) -> dict[str, Any]:
    """Compile and execute ``path`` as a fresh module; CPU and wall of just that."""
    started, cpu = time.perf_counter(), time.process_time()
    code = compile(path.read_bytes(), str(path), "exec")
    module = types.ModuleType(f"bench_exec_{path.stem}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    exec(code, module.__dict__)
    return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - started}


def _dagbag_file(path: Path) -> dict[str, Any]:
    """``DagBag`` of the one file; CPU and wall of just that, and what it found."""
    from airflow.dag_processing.dagbag import DagBag

    started, cpu = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=str(path), load_op_links=False)
    return {
        "cpu": time.process_time() - cpu,
        "wall": time.perf_counter() - started,
        "dags": len(bag.dags),
        "tasks": sum(len(d.tasks) for d in bag.dags.values()),
        "import_errors": len(bag.import_errors),
        "first_error": next(iter(bag.import_errors.values()), None),
    }


def mode_files(args: argparse.Namespace) -> dict:
    """``exec`` / ``dagbag-files``: each file of each folder in its own forked child."""
    _import_airflow()
    measure = _exec_file if args.mode == "exec" else _dagbag_file
    folders = [Path(f).resolve() for f in args.folders]
    files = {folder: _dag_files(folder) for folder in folders}
    for paths in files.values():
        for path in paths:
            _pre_import(path)
    gc.collect()
    samples: dict[str, dict[str, dict[str, Any]]] = {
        str(f): {p.name: {"cpu_seconds": [], "seconds": []} for p in files[f]} for f in folders
    }
    # File by file, each file of every folder in turn (a file and its twin back to back).
    order = sorted({(p.name, i) for i, f in enumerate(folders) for p in files[f]})
    for _ in range(args.repeats):
        for name, i in order:
            path = folders[i] / name

            def child(path: Path = path) -> bytes:
                return json.dumps(measure(path)).encode()

            run = _fork_and_read(child, args.child_timeout)
            entry = samples[str(folders[i])][name]
            result = json.loads(run.data) if run.code == 0 and run.data else None
            entry["cpu_seconds"].append(result["cpu"] if result else None)
            entry["seconds"].append(result["wall"] if result else None)
            entry["timed_out"] = entry.get("timed_out", 0) + run.timed_out
            entry["failed"] = entry.get("failed", 0) + (result is None and not run.timed_out)
            if result:
                entry.update({k: v for k, v in result.items() if k not in ("cpu", "wall")})
    for per_file in samples.values():
        for entry in per_file.values():
            entry["median_cpu"] = _median(entry["cpu_seconds"])
            entry["median"] = _median(entry["seconds"])
    return samples


def mode_loop(args: argparse.Namespace) -> dict:
    _import_dag_processor()
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
    per_file: dict[str, dict[str, list[float | None]]] = {str(f): {} for f in folders}
    timed_out: dict[str, dict[str, int]] = {str(f): {} for f in folders}
    checks: dict[str, dict] = {}
    gc.collect()
    gc.freeze()  # as DagFileProcessorManager.before_run does, "to prevent COW in forked process"
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

                def child(request: DagFileParseRequest = request) -> bytes:
                    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "client"
                    result = _parse_file(request, log)
                    return result.model_dump_json().encode() if result else b""

                run = _fork_and_read(child, args.child_timeout)
                children_cpu += run.cpu
                per_file[key].setdefault(path.name, []).append(None if run.timed_out else run.cpu)
                if run.timed_out:
                    timed_out[key][path.name] = timed_out[key].get(path.name, 0) + 1
                result = DagFileParsingResult.model_validate_json(run.data) if run.data else None
                if run.code or result is None:
                    errors += 1
                    continue
                dags += len(result.serialized_dags)
                tasks += sum(len(d.data["dag"]["tasks"]) for d in result.serialized_dags)
                if result.import_errors:
                    errors += len(result.import_errors)
                    first_error = first_error or next(iter(result.import_errors.values()))
                del result  # the next child must not inherit this file's parse result
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
                name: _median(samples) for name, samples in sorted(per_file[key].items())
            },
            "file_cpu_seconds": dict(sorted(per_file[key].items())),
            "timed_out": timed_out[key],
            "parent_setup": "dag-processor modules imported, gc.freeze()",
            **checks[key],
        }
        for key, values in loops.items()
    }


def mode_taskstart(args: argparse.Namespace) -> dict:
    _import_airflow()
    from airflow.dag_processing.dagbag import BundleDagBag

    targets = [args.targets[i : i + 4] for i in range(0, len(args.targets), 4)]
    keys = [os.path.join(t[0], t[1]) for t in targets]
    samples: dict[str, list[float | None]] = {k: [] for k in keys}
    cpu: dict[str, list[float | None]] = {k: [] for k in keys}
    found: dict[str, bool] = {}
    timed_out: dict[str, int] = dict.fromkeys(keys, 0)
    for _ in range(args.repeats):
        for key, (folder, rel_file, dag_id, task_id) in zip(keys, targets, strict=True):

            def child(
                folder: str = folder,
                rel_file: str = rel_file,
                dag_id: str = dag_id,
                task_id: str = task_id,
            ) -> bytes:
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

            run = _fork_and_read(child, args.child_timeout)
            samples[key].append(None if run.timed_out else run.wall)
            cpu[key].append(None if run.timed_out else run.cpu)
            timed_out[key] += run.timed_out
            found[key] = run.code == 0 and task_id.lstrip("~").encode() in run.data
    return {
        key: {
            "seconds": values,
            "median": _median(values),
            "cpu_seconds": cpu[key],
            "median_cpu": _median(cpu[key]),
            "found": found[key],
            "timed_out": timed_out[key],
        }
        for key, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--child-timeout",
        type=float,
        default=DEFAULT_CHILD_TIMEOUT,
        help="seconds a forked child may take before it is killed (default %(default)s)",
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("dagbag")
    p.add_argument("folder")
    for name in ("exec", "dagbag-files"):
        p = sub.add_parser(name)
        p.add_argument("folders", nargs="+")
        p.add_argument("--repeats", type=int, default=3)
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
    modes = {
        "dagbag": mode_dagbag,
        "exec": mode_files,
        "dagbag-files": mode_files,
        "loop": mode_loop,
        "taskstart": mode_taskstart,
    }
    result = modes[args.mode](args)
    sys.stdout.write("BENCH_RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
