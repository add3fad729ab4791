"""dagfactory benchmarks: build speed against the JSON-parse floor, Airflow parse cost against
hand-written DAG files (and cosmos when it installs), push request counts.

Two manifest layouts (``sample_manifests/synth.py``): ``dbt-groups`` (many dbt groups, so many
small DAGs; 1k, 5k, 20k models) and ``layered`` (dbt's staging / intermediate / marts folders,
no groups, folder grouping: a handful of big DAGs; 1k, 5k models). For the layered builds each
generated file is measured on its own (exec, DagBag, DAG-processor loop, task start) against
its ``schedule=None`` twin and one cosmos ``DbtDag`` over the same manifest (issue #10).

    make bench                       # full run, ~15-20 min on 2 cores (see BENCHMARKS.md)
    make bench BENCH_ARGS=--quick    # 1k-only smoke run, results under .bench/
    make bench BENCH_ARGS='--layouts layered --sizes 5000'   # one part only
    .venv/bin/python bench/run.py --help

Every measured program runs as a fresh process; competing variants alternate run by run and
the medians are compared, because the machines this runs on are shared and noisy. Results go
to ``bench/results.json`` and ``BENCHMARKS.md`` (``--quick``: ``.bench/``). See BENCHMARKS.md
for what each number means.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from peak import run_measured  # noqa: E402
from references import write_cosmos, write_handwritten, write_schedule_none_twin  # noqa: E402
from report import write_markdown  # noqa: E402

VENV = ROOT / ".venv"
COSMOS_VENV = ROOT / ".venv-bench-cosmos"
COSMOS_PACKAGES = [
    "astronomer-cosmos",
    "apache-airflow==3.3.2",
    "apache-airflow-providers-standard",
    "dbt-core<1.12",  # 1.12 pulls a parser whose install downloads from outside the registries
    "dbt-duckdb",
    "orjson",
]
PROJECT_DIR = "/opt/airflow/dbt/synth"  # where the generated files say the dbt project lives

FLOOR_CODE = "import sys, orjson\nwith open(sys.argv[1], 'rb') as f:\n    orjson.loads(f.read())\n"
FLOOR_NOGC_CODE = "import gc\ngc.disable()\n" + FLOOR_CODE

LAYOUTS = ("dbt-groups", "layered")
#: how the layered builds are grouped: by folder (also dagfactory's default without dbt groups)
GROUP_BY_FOLDER = ("--group-by", "folder")

#: Per mode: sizes, build repeats per size, and (DagBag runs, loops, task starts) per size
#: for the parse measurements (sizes not listed: no parse measurement). Parse loops of 5k
#: models take about half a minute each on 2 cores, hence fewer of them. ``layered_*``: the
#: layered layout's sizes, build repeats, and repeats of each per-file probe (exec, DagBag,
#: loop, task start) for the generated files and their twins, and for cosmos. The 5k builds
#: get more rounds: their lines (#7, #10) sit near their bars, and this machine's speed swings
#: by +-20% within a minute, so the median of 7 pairs moves by +-0.1x from run to run.
PLANS: dict[str, dict[str, Any]] = {
    "full": {
        "sizes": [1000, 5000, 20000],
        "build_repeats": {1000: 7, 5000: 11, 20000: 3},
        "parse": {1000: (3, 5, 7), 5000: (1, 2, 3)},
        "cosmos": {1000: (1, 3, 3), 5000: (1, 2, 3)},
        "layered_sizes": [1000, 5000],
        "layered_build_repeats": {1000: 3, 5000: 15},
        "layered_parse": {1000: 3, 5000: 3},
        "layered_cosmos": {1000: 3, 5000: 3},
    },
    "quick": {
        "sizes": [1000],
        "build_repeats": {},
        "parse": {},
        "default_parse": (1, 2, 3),
        "cosmos": {},
        "default_cosmos": (1, 1, 1),
        "layered_sizes": [1000],
        "layered_build_repeats": {},
        "layered_parse": {},
        "default_layered_parse": 1,
        "layered_cosmos": {},
        "default_layered_cosmos": 1,
    },
}
DEFAULT_BUILD_REPEATS = 3
#: a forked parse that takes longer is killed and recorded as timed out (parse_probe.py)
DEFAULT_CHILD_TIMEOUT = 600.0

#: the issue each done criterion comes from
DONE_ISSUES = {
    "build_wall_le_1_5x_floor_at_5k": "#7",
    "build_rss_le_1_5x_floor_at_5k": "#7",
    "build_20k_finished": "#7",
    "parse_loop_le_1_2x_handwritten": "#7",
    "noop_push_zero_puts": "#7",
    "layered_5k_every_file_exec_le_1_5x_schedule_none_twin": "#10",
    "layered_5k_every_file_exec_lt_5s_cpu": "#10",
    "layered_5k_build_le_1_4x_floor": "#10",
    "loop_below_cosmos_at_1k": "#10",
    "loop_le_0_7x_cosmos_at_5k": "#10",
    "taskstart_most_expensive_file_ge_20x_cheaper_than_cosmos": "#10",
}
#: measured against a bar of an issue's, but not one of its Done-means lines: shown apart
INFORMATIONAL = {
    "layered_5k_taskstart_most_expensive_file_ge_20x_cheaper_than_cosmos": (
        "#10 asks task start >= 20x cheaper than cosmos with dbt groups (the line above); the "
        "layered files hold 1.4-3k tasks each, and their task start costs what their "
        "schedule=None twins cost (see the layered table): a file's size, which the "
        "build-time budget warning names"
    ),
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` rounded; None when either is missing (a timed-out measurement) or b is 0."""
    return round(a / b, 3) if a is not None and b else None


# --------------------------------------------------------------------------- environment


def base_env(work: Path) -> dict[str, str]:
    """The environment of every measured process: bytecode caches on (as in any install),
    a throwaway AIRFLOW_HOME, examples off, cosmos at its best settings, no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    env.update(
        {
            "AIRFLOW_HOME": str(work / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__COSMOS__ENABLE_ORJSON_PARSER": "True",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "1",
            "SCARF_ANALYTICS": "false",
            "PYTHONHASHSEED": "0",
        }
    )
    return env


def machine_facts() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        mem_gb = round(int(first.split()[1]) / 1024 / 1024, 1)

    def version(python: Path, module: str) -> str | None:
        code = f"import importlib.metadata as m; print(m.version({module!r}))"
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
        return done.stdout.strip() or None

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "dagfactory", "templates"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    py = VENV / "bin" / "python"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "airflow": version(py, "apache-airflow"),
        "orjson": version(py, "orjson"),
        "networkx": version(py, "networkx"),
        "dagfactory_commit": commit + ("+dirty" if dirty else ""),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_start": os.getloadavg()[0],
    }


def setup_cosmos(work: Path) -> dict[str, Any]:
    """Install cosmos next to Airflow 3.3 in its own virtualenv (cosmos pins differ from ours)."""
    python = COSMOS_VENV / "bin" / "python"
    stamp = COSMOS_VENV / ".bench-stamp"
    want = "\n".join(COSMOS_PACKAGES)
    uv = VENV / "bin" / "uv"
    if not (stamp.is_file() and stamp.read_text() == want and python.exists()):
        log(f"installing cosmos into {COSMOS_VENV.name} ...")
        try:
            if not python.exists():
                subprocess.run(
                    [str(uv), "venv", "-q", "-p", str(VENV / "bin" / "python"), str(COSMOS_VENV)],
                    check=True,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
            subprocess.run(
                [str(uv), "pip", "install", "-q", "--python", str(python), *COSMOS_PACKAGES],
                check=True,
                capture_output=True,
                text=True,
                timeout=900,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            return {"available": False, "reason": f"cosmos did not install: {detail[-500:]}"}
        stamp.write_text(want)
    done = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m; print(m.version('astronomer-cosmos'))",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        return {"available": False, "reason": f"cosmos does not import: {done.stderr[-500:]}"}
    return {"available": True, "version": done.stdout.strip(), "venv": str(COSMOS_VENV)}


# --------------------------------------------------------------------------- processes


def measure(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> dict[str, float]:
    """Run ``argv`` to completion; wall seconds, CPU seconds and peak RSS of that process."""
    with tempfile.TemporaryFile() as err:
        cost = run_measured(argv, env, cwd, stdout=subprocess.DEVNULL, stderr=err)
        if cost.returncode:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{argv[:3]} failed ({cost.returncode}):\n{tail}")
    return {"wall": cost.wall_s, "cpu": cost.cpu_s, "rss_mb": cost.max_rss_mb}


@dataclass(frozen=True)
class Prober:
    """Runs ``bench/parse_probe.py`` with one interpreter (ours or cosmos's) and environment."""

    python: Path
    env: dict[str, str]
    child_timeout: float = DEFAULT_CHILD_TIMEOUT

    def __call__(self, *args: str) -> tuple[dict[str, Any], float]:
        """One fresh probe process; its JSON result and the process's wall seconds."""
        argv = [str(self.python), str(HERE / "parse_probe.py")]
        argv += ["--child-timeout", str(self.child_timeout), *args]
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=ROOT)
        wall = time.perf_counter() - started
        for line in reversed(done.stdout.splitlines()):
            if line.startswith("BENCH_RESULT "):
                return json.loads(line[len("BENCH_RESULT ") :]), wall
        raise RuntimeError(f"parse_probe {args[:2]} failed:\n{done.stderr[-3000:]}")


# --------------------------------------------------------------------------- steps


def synthesize(size: int, folder: Path, layout: str = "groups") -> Path:
    """``sample_manifests/synth.py`` once per size and layout (kept in the work folder)."""
    manifest = folder / "manifest.json"
    if not manifest.exists():
        folder.mkdir(parents=True, exist_ok=True)
        log(f"synthesizing a {size}-model manifest ({layout} layout)")
        subprocess.run(
            [
                str(VENV / "bin" / "python"),
                str(ROOT / "sample_manifests" / "synth.py"),
                *("--models", str(size), "--out", str(manifest), "--layout", layout),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return manifest


def build_argv(manifest: Path, out: Path, *extra: str) -> list[str]:
    # --runner celery: every task a BashOperator, like the hand-written reference.
    return [
        str(VENV / "bin" / "dagfactory"),
        "build",
        "--manifest",
        str(manifest),
        "--out",
        str(out),
        "--runner",
        "celery",
        *extra,
    ]


def bench_build(
    manifest: Path, folder: Path, repeats: int, env: dict[str, str], extra: tuple[str, ...] = ()
) -> dict:
    """Whole-process build against a fresh-process ``orjson.loads`` of the same file."""
    out = folder / "out"
    # An earlier run's parse probes imported the files there: dagfactory refuses to replace a
    # folder holding what it did not write, and their bytecode is all that is left of them.
    shutil.rmtree(out / "__pycache__", ignore_errors=True)
    python = str(VENV / "bin" / "python")
    variants = {
        "build": build_argv(manifest, out, *extra),
        "floor": [python, "-c", FLOOR_CODE, str(manifest)],
        "floor_gc_off": [python, "-c", FLOOR_NOGC_CODE, str(manifest)],
    }
    for argv in variants.values():  # warm-up: page cache, bytecode caches
        measure(argv, env)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, argv in variants.items():
            runs[name].append(measure(argv, env))
    result: dict[str, Any] = {"repeats": repeats, "manifest_mb": manifest.stat().st_size / 1e6}
    for name, samples in runs.items():
        result[name] = {
            "wall_s": [round(s["wall"], 4) for s in samples],
            "cpu_s": [round(s["cpu"], 4) for s in samples],
            "rss_mb": [round(s["rss_mb"], 1) for s in samples],
            "median_wall_s": round(median([s["wall"] for s in samples]), 4),
            "median_cpu_s": round(median([s["cpu"] for s in samples]), 4),
            "median_rss_mb": round(median([s["rss_mb"] for s in samples]), 1),
        }
    build, floor = result["build"], result["floor"]
    result["wall_ratio"] = ratio(build["median_wall_s"], floor["median_wall_s"])
    result["cpu_ratio"] = ratio(build["median_cpu_s"], floor["median_cpu_s"])
    result["rss_ratio"] = ratio(build["median_rss_mb"], floor["median_rss_mb"])
    # Per-pair ratios too: each pair ran back to back, so they share the machine's mood.
    pairs = [b["wall"] / f["wall"] for b, f in zip(runs["build"], runs["floor"], strict=True)]
    result["wall_ratio_pairs_median"] = round(median(pairs), 3)
    return result


def build_summary(
    manifest: Path, folder: Path, env: dict[str, str], extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Build into ``folder/out`` once more, with the JSON summary of every DAG and task."""
    done = subprocess.run(
        build_argv(manifest, folder / "out", *extra, "--format", "json"),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    return json.loads(done.stdout)


def generated_facts(summary: dict[str, Any]) -> dict[str, Any]:
    """The counts of a build that the report shows beside its timings."""
    return {
        "dag_count": summary["dag_count"],
        "task_count": summary["task_count"],
        "cross_dag_edges": summary["cross_dag_edges"],
        "estimated_parse_loop_seconds": summary["estimated_parse_loop_seconds"],
    }


def task_in(summary: dict[str, Any], file: str) -> tuple[str, str, str]:
    """(file, DAG id, task id) of a model's task in ``file`` (any task if it holds no model)."""
    dag = next(d for d in summary["dags"] if d["file"] == file)
    tasks = [t for t in dag["tasks"] if t["resource_type"] == "model"] or dag["tasks"]
    return file, dag["dag_id"], tasks[len(tasks) // 2]["task_id"]


def most_expensive(file_cpu: dict[str, float | None]) -> str:
    """The file with the highest per-file loop CPU (a timed-out file counts as the highest).

    Task start is measured on this file: the file a worker pays most for at every task it
    starts, which need not be the file with the most tasks (a big DAG on no assets is cheap).
    """
    return max(
        file_cpu,
        key=lambda name: (float("inf") if file_cpu[name] is None else file_cpu[name], name),
    )


def bench_parse(
    folders: dict[str, Path],
    summary: dict[str, Any],
    prober: Prober,
    *,
    loops: int,
    taskstarts: int,
    dagbag_runs: int,
    task_for: dict[str, tuple[str, str, str]] | None = None,
) -> dict[str, Any]:
    """3a, 3b and 3c for each folder, alternating folders run by run.

    (c) runs on the first folder's most expensive file by (b) CPU, and on the file of the same
    name in the others (the hand-written twin), unless ``task_for`` names another target.
    """
    names = list(folders)
    result: dict[str, Any] = {name: {} for name in names}
    # (a) DagBag in a fresh process
    for _ in range(dagbag_runs):
        for name in names:
            data, wall = prober("dagbag", str(folders[name]))
            entry = result[name].setdefault(
                "dagbag", {"dagbag_s": [], "dagbag_cpu_s": [], "process_wall_s": []}
            )
            entry["dagbag_s"].append(round(data["dagbag_seconds"], 4))
            entry["dagbag_cpu_s"].append(round(data["dagbag_cpu_seconds"], 4))
            entry["process_wall_s"].append(round(wall, 3))
            entry.update(
                dags=data["dags"],
                tasks=data["tasks"],
                import_errors=data["import_errors"],
                first_error=data["first_error"],
            )
    for name in names:
        entry = result[name]["dagbag"]
        entry["median_dagbag_s"] = round(median(entry["dagbag_s"]), 4)
        entry["median_dagbag_cpu_s"] = round(median(entry["dagbag_cpu_s"]), 4)
        entry["median_process_wall_s"] = round(median(entry["process_wall_s"]), 3)
    # (b) the DAG processor's loop, alternating inside one parent
    data, _ = prober("loop", *(str(folders[n]) for n in names), "--loops", str(loops))
    for name in names:
        result[name]["loop"] = _rounded_loop(data[str(folders[name].resolve())])
    # (c) task start: parse the one file holding a task, the most expensive one
    task = task_in(summary, most_expensive(result[names[0]]["loop"]["file_cpu_medians"]))
    targets: list[str] = []
    for name in names:
        rel, dag_id, task_id = (task_for or {}).get(name, task)
        targets += [str(folders[name]), rel, dag_id, task_id]
    data, _ = prober("taskstart", *targets, "--repeats", str(taskstarts))
    for name in names:
        rel = (task_for or {}).get(name, task)[0]
        start = _rounded(data[os.path.join(str(folders[name]), rel)])
        start["task"] = list((task_for or {}).get(name, task))
        start["task_file"] = "most expensive in (b)" if name not in (task_for or {}) else "given"
        result[name]["taskstart"] = start
    return result


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _rounded(sample: dict[str, Any]) -> dict[str, Any]:
    """A probe's per-target samples and medians, rounded for the results file."""
    for key in ("seconds", "cpu_seconds"):
        if key in sample:
            sample[key] = [_round(s) for s in sample[key]]
    for key in ("median", "median_cpu"):
        sample[key] = _round(sample[key])
    return sample


def _rounded_loop(loop: dict[str, Any]) -> dict[str, Any]:
    for key in ("loop_seconds", "loop_cpu_seconds"):
        loop[key] = [round(s, 4) for s in loop[key]]
    loop["median"] = round(loop["median"], 4)
    loop["median_cpu"] = round(loop["median_cpu"], 4)
    loop["file_cpu_medians"] = {k: _round(v) for k, v in loop["file_cpu_medians"].items()}
    loop["file_cpu_seconds"] = {
        k: [_round(s) for s in v] for k, v in loop.get("file_cpu_seconds", {}).items()
    }
    return loop


def parse_ratios(parse: dict[str, Any], name: str, reference: str) -> dict[str, float | None]:
    """``name`` over ``reference``: CPU seconds (the cost) and wall seconds (noisier)."""
    a, b = parse[name], parse[reference]
    return {
        "dagbag": ratio(a["dagbag"]["median_dagbag_cpu_s"], b["dagbag"]["median_dagbag_cpu_s"]),
        "loop": ratio(a["loop"]["median_cpu"], b["loop"]["median_cpu"]),
        "taskstart": ratio(a["taskstart"]["median_cpu"], b["taskstart"]["median_cpu"]),
        "dagbag_wall": ratio(a["dagbag"]["median_dagbag_s"], b["dagbag"]["median_dagbag_s"]),
        "loop_wall": ratio(a["loop"]["median"], b["loop"]["median"]),
        "taskstart_wall": ratio(a["taskstart"]["median"], b["taskstart"]["median"]),
    }


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float] | None:
    """Gaussian elimination with partial pivoting (3x3 normal equations)."""
    n = len(rhs)
    a = [[*row, value] for row, value in zip(matrix, rhs, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(n):
            if r != col:
                factor = a[r][col] / a[col][col]
                a[r] = [x - factor * y for x, y in zip(a[r], a[col], strict=True)]
    return [a[i][n] / a[i][i] for i in range(n)]


def dependency_names(dag: dict[str, Any]) -> int:
    """Tasks named in a file's ``set_upstream`` calls: each call's task plus its parents.

    Airflow 3 hashes the DAG once per task named in a dependency call (``_set_relatives``), so
    this, not the task count, is the model's second variable (``dagfactory/costs.py``).
    """
    return sum(
        1 + len(t["upstream"]) + len(t.get("wait_for", ()))
        for t in dag["tasks"]
        if t["upstream"] or t.get("wait_for")
    )


def file_costs(summary: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per generated file: (tasks, task names in dependency calls), the estimate's variables."""
    return {
        dag["file"]: (len(dag["tasks"]) + len(dag.get("sensors", ())), dependency_names(dag))
        for dag in summary["dags"]
    }


def calibrate(points: list[tuple[int, int, float]], parent_per_file: float) -> dict[str, Any]:
    """Least squares over files: seconds ~ per_file + tasks * per_task + names * per_dependency.

    ``points`` are (tasks, dependency names, child CPU seconds) per file; the parent's own CPU
    per file (pre-imports, validating the result) is added to the per-file term. The model is
    the one ``dagfactory/costs.py`` estimates with (its asset term only applies to schedules
    whose hash walks the assets, which these builds do not write).
    """
    rows = [(1.0, float(t), float(e)) for t, e, _ in points]
    ys = [y for _, _, y in points]
    normal = [[sum(r[i] * r[j] for r in rows) for j in range(3)] for i in range(3)]
    rhs = [sum(r[i] * y for r, y in zip(rows, ys, strict=True)) for i in range(3)]
    solved = _solve(normal, rhs)
    if solved is None:
        return {"points": len(points)}
    per_file, per_task, per_dependency = solved
    predicted = [sum(c * x for c, x in zip(solved, r, strict=True)) for r in rows]
    total, fitted = sum(ys), sum(predicted)
    return {
        "per_file_s": round(per_file + parent_per_file, 4),
        "per_task_s": round(per_task, 6),
        "per_dependency_s": round(per_dependency, 8),
        "files": len(points),
        "total_cpu_s": round(total, 3),
        "total_fitted_s": round(fitted, 3),
        "worst_file_error_s": round(max(abs(p - y) for p, y in zip(predicted, ys, strict=True)), 3),
    }


def one_task_folder(folder: Path, files: int) -> Path:
    """``files`` hand-written one-task DAG files: what a file costs apart from its tasks."""
    summary = {
        "dags": [
            {
                "dag_id": f"one_task_{i:03d}",
                "file": f"one_task_{i:03d}.py",
                "schedule": "@daily",
                "schedule_assets": [],
                "tasks": [
                    {
                        "task_id": "run",
                        "resource_type": "model",
                        "selector": f"fqn:p.m{i}",
                        "upstream": [],
                        "outlets": [],
                    }
                ],
            }
            for i in range(files)
        ]
    }
    write_handwritten(summary, folder, PROJECT_DIR)
    return folder


# --------------------------------------------------------------------------- layered layout

#: the per-file measurements of the layered builds, in report order
FILE_METRICS = ("exec", "dagbag", "loop", "taskstart")


def per_file_probes(
    prober: Prober,
    folders: dict[str, Path],
    targets: dict[str, dict[str, tuple[str, str, str]]],
    repeats: int,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every metric of :data:`FILE_METRICS` for every file of every folder (alternating).

    ``targets``: per folder name, per file, the (file, DAG id, task id) a task start looks up.
    Returns ``{metric: {folder name: {file: {"median_cpu", "median", "timed_out", ...}}}}``.
    """
    paths = [str(f) for f in folders.values()]
    out: dict[str, dict[str, dict[str, Any]]] = {m: {} for m in FILE_METRICS}
    for metric, mode in (("exec", "exec"), ("dagbag", "dagbag-files")):
        data, _ = prober(mode, *paths, "--repeats", str(repeats))
        for name, folder in folders.items():
            out[metric][name] = {f: _rounded(v) for f, v in data[str(folder.resolve())].items()}
    data, _ = prober("loop", *paths, "--loops", str(repeats))
    for name, folder in folders.items():
        loop = _rounded_loop(data[str(folder.resolve())])
        out["loop"][name] = {
            f: {
                "median_cpu": cpu,
                "cpu_seconds": loop["file_cpu_seconds"].get(f, []),
                "timed_out": loop["timed_out"].get(f, 0),
            }
            for f, cpu in loop["file_cpu_medians"].items()
        }
        out["loop"][name]["_folder"] = {
            k: loop[k] for k in ("median_cpu", "median", "files", "dags", "tasks", "import_errors")
        }
    argv: list[str] = []  # file by file, a file and its twin back to back
    for file in sorted({f for per_folder in targets.values() for f in per_folder}):
        for name, folder in folders.items():
            if file in targets[name]:
                argv += [str(folder), *targets[name][file]]
    data, _ = prober("taskstart", *argv, "--repeats", str(repeats))
    for name, folder in folders.items():
        out["taskstart"][name] = {
            file: {**_rounded(data[os.path.join(str(folder), file)]), "task": list(target)}
            for file, target in targets[name].items()
        }
    return out


def bench_layered(
    size: int,
    work: Path,
    plan: dict[str, Any],
    env: dict[str, str],
    cosmos: dict[str, Any],
    child_timeout: float,
) -> dict[str, Any]:
    """The layered layout: build against the floor, then each generated file's parse cost.

    Per file: exec, DagBag, DAG-processor loop CPU and task start, against (a) the same file
    with ``schedule=None`` (the floor for its tasks and edges) and (b) one cosmos ``DbtDag``
    over the same manifest, both measured in this run.
    """
    folder = work / f"layered{size}"
    manifest = synthesize(size, folder, layout="layered")
    repeats = plan["layered_build_repeats"].get(size, DEFAULT_BUILD_REPEATS)
    log(f"layered {size}: build vs orjson.loads floor, {repeats} alternating runs")
    entry: dict[str, Any] = {"build": bench_build(manifest, folder, repeats, env, GROUP_BY_FOLDER)}
    summary = build_summary(manifest, folder, env, GROUP_BY_FOLDER)
    entry["generated"] = generated_facts(summary)
    b = entry["build"]
    log(
        f"layered {size}: build {b['build']['median_wall_s']:.2f}s / floor "
        f"{b['floor']['median_wall_s']:.2f}s = {b['wall_ratio']}x wall; "
        f"{summary['dag_count']} DAGs"
    )
    generated, twin = folder / "out", folder / "schedule_none"
    write_schedule_none_twin(generated, twin)
    files = sorted(d["file"] for d in summary["dags"])
    targets = {name: {f: task_in(summary, f) for f in files} for name in ("generated", "twin")}
    probes = plan["layered_parse"].get(size, plan.get("default_layered_parse", 1))
    log(f"layered {size}: per-file parse cost, generated vs schedule=None twin, {probes} each")
    prober = Prober(VENV / "bin" / "python", env, child_timeout)
    measured = per_file_probes(prober, {"generated": generated, "twin": twin}, targets, probes)
    loop_cpu = {f: measured["loop"]["generated"][f]["median_cpu"] for f in files}
    costly = most_expensive(loop_cpu)
    entry["most_expensive_file"] = costly
    entry["folders"] = {
        name: measured["loop"][name].pop("_folder") for name in ("generated", "twin")
    }

    cosmos_plan = plan["layered_cosmos"].get(size, plan.get("default_layered_cosmos"))
    reference: dict[str, dict[str, Any]] = {}
    if cosmos.get("available") and cosmos_plan:
        log(f"layered {size}: cosmos DbtDag over the same manifest, {cosmos_plan} each")
        cosmos_dir = folder / "cosmos"
        dag_id = write_cosmos(
            cosmos_dir, manifest, summary["project"], str(COSMOS_VENV / "bin" / "dbt")
        )
        task = ("cosmos_dag.py", dag_id, f"~{targets['generated'][costly][2]}_")
        cprober = Prober(COSMOS_VENV / "bin" / "python", env, child_timeout)
        cmeasured = per_file_probes(
            cprober, {"cosmos": cosmos_dir}, {"cosmos": {task[0]: task}}, cosmos_plan
        )
        entry["cosmos_folder"] = cmeasured["loop"]["cosmos"].pop("_folder")
        reference = {m: cmeasured[m]["cosmos"]["cosmos_dag.py"] for m in FILE_METRICS}
        entry["cosmos"] = reference
    else:
        entry["cosmos"] = {"skipped": cosmos.get("reason", "no cosmos in this plan")}

    entry["files"] = {}
    for dag in sorted(summary["dags"], key=lambda d: d["file"]):
        name = dag["file"]
        row: dict[str, Any] = {
            "dag_id": dag["dag_id"],
            "tasks": len(dag["tasks"]),
            "schedule_assets": len(dag["schedule_assets"]),
            "in_dag_edges": sum(len(t["upstream"]) for t in dag["tasks"]),
            "dependency_names": dependency_names(dag),
        }
        for metric in FILE_METRICS:
            mine = measured[metric]["generated"][name]
            floor = measured[metric]["twin"][name]
            ref = reference.get(metric, {})
            row[metric] = {
                "cpu_s": mine["median_cpu"],
                "wall_s": mine.get("median"),
                "timed_out": mine.get("timed_out", 0),
                "twin_cpu_s": floor["median_cpu"],
                "cosmos_cpu_s": ref.get("median_cpu"),
                "vs_twin": ratio(mine["median_cpu"], floor["median_cpu"]),
                "vs_cosmos": ratio(mine["median_cpu"], ref.get("median_cpu")),
                "samples_cpu_s": mine.get("cpu_seconds", []),
                "twin_samples_cpu_s": floor.get("cpu_seconds", []),
            }
            if metric in ("exec", "dagbag"):
                row[metric]["failed"] = mine.get("failed", 0) + floor.get("failed", 0)
            if metric == "dagbag":
                row[metric]["import_errors"] = mine.get("import_errors")
                row[metric]["twin_import_errors"] = floor.get("import_errors")
            if metric == "taskstart":
                row[metric]["found"] = mine.get("found")
                row[metric]["twin_found"] = floor.get("found")
                row[metric]["task"] = mine.get("task")
        entry["files"][name] = row
        log(
            f"layered {size}: {name}: "
            + ", ".join(
                f"{m} {_fmt_s(row[m]['cpu_s'])} (x{row[m]['vs_twin']} twin, "
                f"x{row[m]['vs_cosmos']} cosmos)"
                for m in FILE_METRICS
            )
        )
    return entry


def _fmt_s(value: float | None) -> str:
    return "timed out" if value is None else f"{value:.2f}s"


def bench_push(out_dir: Path, work: Path) -> dict[str, Any]:
    """A first push and a no-op push to moto_server, PUTs counted at a proxy in front of it."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import boto3
        from s3servers import ACCESS_KEY, REGION, SECRET_KEY, S3Proxy, start_moto_server

        from dagfactory.publish import push
    except ImportError as exc:
        return {"skipped": f"push not available: {exc}"}
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION
    )
    server_dir = work / "moto"
    shutil.rmtree(server_dir, ignore_errors=True)
    server_dir.mkdir(parents=True)
    try:
        server = start_moto_server(server_dir)
    except BaseException as exc:  # pytest.skip(...) when moto_server is missing
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"skipped": f"moto_server did not start: {exc}"}
    proxy = S3Proxy(server.endpoint).start()
    try:
        boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ).create_bucket(Bucket="bench-dags")
        result: dict[str, Any] = {
            "server": "moto_server",
            "files": sum(1 for p in out_dir.iterdir() if p.is_file()),
        }
        for step in ("first", "noop"):
            proxy.reset()
            started = time.perf_counter()
            pushed = push(out_dir, "s3://bench-dags/dags/", endpoint_url=proxy.endpoint)
            seconds = time.perf_counter() - started
            counts = pushed.to_dict()["plan"]["counts"]
            result[step] = {
                "seconds": round(seconds, 3),
                "puts_at_server": proxy.count("PUT"),
                "requests_at_server": len(proxy.requests()),
                "by_method": {m: proxy.count(m) for m in ("GET", "HEAD", "PUT", "POST", "DELETE")},
                "plan_counts": counts,
            }
        return result
    finally:
        proxy.stop()
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k models only, fewer repeats")
    parser.add_argument("--sizes", help="comma-separated model counts (overrides the plan)")
    parser.add_argument(
        "--layouts",
        default=",".join(LAYOUTS),
        help=f"comma-separated manifest layouts to measure (default {','.join(LAYOUTS)})",
    )
    parser.add_argument(
        "--child-timeout",
        type=float,
        default=DEFAULT_CHILD_TIMEOUT,
        help="seconds one forked parse may take before it is killed and recorded as timed out",
    )
    parser.add_argument("--work", type=Path, default=ROOT / ".bench", help="scratch folder")
    parser.add_argument(
        "--results",
        type=Path,
        help="results JSON path (default: bench/results.json for the full plan, else in --work)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        help="BENCHMARKS.md path (default: BENCHMARKS.md for the full plan, else in --work)",
    )
    parser.add_argument("--no-cosmos", action="store_true", help="skip the cosmos reference")
    parser.add_argument("--no-push", action="store_true", help="skip the push step")
    parser.add_argument(
        "--markdown-from",
        type=Path,
        metavar="RESULTS",
        help="only rewrite the markdown from a results file (no measuring)",
    )
    args = parser.parse_args(argv)
    if args.markdown_from:
        results = json.loads(args.markdown_from.read_text())
        for part in ("sizes", "layered"):
            results[part] = dict(sorted(results.get(part, {}).items(), key=lambda kv: int(kv[0])))
        write_markdown(results, args.markdown or ROOT / "BENCHMARKS.md")
        return 0

    mode = "quick" if args.quick else "full"
    plan = dict(PLANS[mode])
    layouts = [name.strip() for name in args.layouts.split(",") if name.strip()]
    if unknown := set(layouts) - set(LAYOUTS):
        parser.error(f"unknown layout(s) {', '.join(sorted(unknown))}; valid: {', '.join(LAYOUTS)}")
    given = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    sizes = (given or plan["sizes"]) if "dbt-groups" in layouts else []
    layered_sizes = (given or plan["layered_sizes"]) if "layered" in layouts else []
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    # Only the whole plan replaces the committed results; a part run writes beside its work.
    part = "quick" if args.quick else ("" if not args.sizes and len(layouts) == 2 else "part")
    results_path = args.results or (
        work / f"results-{part}.json" if part else HERE / "results.json"
    )
    markdown_path = args.markdown or (
        work / f"BENCHMARKS-{part}.md" if part else ROOT / "BENCHMARKS.md"
    )
    command = "make bench" + (f" BENCH_ARGS='{' '.join(sys.argv[1:])}'" if sys.argv[1:] else "")
    env = base_env(work)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": command,
        "mode": mode,
        "machine": machine_facts(),
        "layouts": layouts,
        "sizes": {},
        "layered": {},
    }
    cosmos = {"available": False, "reason": "--no-cosmos"} if args.no_cosmos else setup_cosmos(work)
    results["cosmos"] = cosmos
    calibration_points: list[tuple[int, int, float]] = []
    parent_per_file: list[float] = []

    for size in sizes:
        folder = work / f"m{size}"
        manifest = synthesize(size, folder)
        repeats = plan["build_repeats"].get(size, DEFAULT_BUILD_REPEATS)
        log(f"{size} models: build vs orjson.loads floor, {repeats} alternating runs")
        entry: dict[str, Any] = {"build": bench_build(manifest, folder, repeats, env)}
        summary = build_summary(manifest, folder, env)
        entry["generated"] = generated_facts(summary)
        b = entry["build"]
        log(
            f"{size}: build {b['build']['median_wall_s']:.2f}s / floor "
            f"{b['floor']['median_wall_s']:.2f}s = {b['wall_ratio']}x wall, "
            f"{b['rss_ratio']}x RSS"
        )
        parse_plan = plan["parse"].get(size, plan.get("default_parse"))
        cosmos_plan = plan["cosmos"].get(size, plan.get("default_cosmos"))
        if parse_plan:
            dagbag_runs, loops, taskstarts = parse_plan
            hand = folder / "handwritten"
            write_handwritten(summary, hand, PROJECT_DIR)
            log(f"{size}: Airflow parse cost, generated vs hand-written")
            parse = bench_parse(
                {"generated": folder / "out", "handwritten": hand},
                summary,
                Prober(VENV / "bin" / "python", env, args.child_timeout),
                loops=loops,
                taskstarts=taskstarts,
                dagbag_runs=dagbag_runs,
            )
            parse["ratios_vs_handwritten"] = parse_ratios(parse, "generated", "handwritten")
            entry["parse"] = parse
            gen_loop = parse["generated"]["loop"]
            costs = file_costs(summary)
            for name, cpu in gen_loop["file_cpu_medians"].items():
                if cpu is not None:  # a timed-out file has no sample to fit
                    calibration_points.append((*costs[name], cpu))
            children = sum(v for v in gen_loop["file_cpu_medians"].values() if v is not None)
            parent_per_file.append((gen_loop["median_cpu"] - children) / gen_loop["files"])
            log(f"{size}: parse ratios vs hand-written {parse['ratios_vs_handwritten']}")
            if cosmos.get("available") and cosmos_plan:
                log(f"{size}: cosmos DbtDag vs generated, in the cosmos virtualenv")
                cosmos_dir = folder / "cosmos"
                dag_id = write_cosmos(
                    cosmos_dir, manifest, summary["project"], str(COSMOS_VENV / "bin" / "dbt")
                )
                # The same model's task in the cosmos DAG (cosmos adds a suffix to its name):
                # the model of the generated file that was most expensive in the loop above.
                task = tuple(parse["generated"]["taskstart"]["task"])
                cosmos_task = ("cosmos_dag.py", dag_id, f"~{task[2]}_")
                cparse = bench_parse(
                    {"generated": folder / "out", "cosmos": cosmos_dir},
                    summary,
                    Prober(COSMOS_VENV / "bin" / "python", env, args.child_timeout),
                    dagbag_runs=cosmos_plan[0],
                    loops=cosmos_plan[1],
                    taskstarts=cosmos_plan[2],
                    task_for={"cosmos": cosmos_task},
                )
                cparse["ratios_cosmos_vs_generated"] = parse_ratios(cparse, "cosmos", "generated")
                cparse["ratios_generated_vs_cosmos"] = parse_ratios(cparse, "generated", "cosmos")
                entry["cosmos"] = cparse
                log(f"{size}: generated / cosmos {cparse['ratios_generated_vs_cosmos']}")
        results["sizes"][str(size)] = entry

    for size in layered_sizes:
        layered = bench_layered(size, work, plan, env, cosmos, args.child_timeout)
        results["layered"][str(size)] = layered
        rows = layered["files"].values()
        fitted = [(r["tasks"], r["dependency_names"], r["loop"]["cpu_s"]) for r in rows]
        calibration_points += [p for p in fitted if p[2] is not None]
        children = sum(p[2] for p in fitted if p[2] is not None)
        whole = layered["folders"]["generated"]
        parent_per_file.append((whole["median_cpu"] - children) / whole["files"])

    # Calibrate the estimate dagfactory prints (dagfactory/costs.py) over every generated
    # file of both layouts, plus one-task files for the per-file cost.
    if calibration_points:
        ones = one_task_folder(work / "one-task-files", 20)
        prober = Prober(VENV / "bin" / "python", env, args.child_timeout)
        data, _ = prober("loop", str(ones), "--loops", "3")
        one = data[str(ones.resolve())]
        calibration_points += [
            (1, 0, cpu) for cpu in one["file_cpu_medians"].values() if cpu is not None
        ]
        results["parse_calibration"] = calibrate(calibration_points, median(parent_per_file))

    if not args.no_push:  # the biggest dbt-groups build (most files), else the biggest layered
        push_size = max(sizes or layered_sizes)
        push_dir = work / (f"m{push_size}" if sizes else f"layered{push_size}") / "out"
        log(f"push of the {push_size}-model build ({push_dir.parent.name}) to moto_server")
        results["push"] = {
            "size": push_size,
            "layout": "dbt-groups" if sizes else "layered",
            **bench_push(push_dir, work),
        }
    done = done_criteria(results)
    results["informational"] = {
        key: {"holds": done.pop(key), "why": why}
        for key, why in INFORMATIONAL.items()
        if key in done
    }
    results["done"] = done
    results["done_issues"] = {key: DONE_ISSUES.get(key, "") for key in results["done"]}
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_markdown(results, markdown_path)
    log(f"wrote {results_path} and {markdown_path} in {results['elapsed_s']:.0f}s")
    return 0


def done_criteria(results: dict[str, Any]) -> dict[str, Any]:
    """The issues' done criteria (#7, #10), checked against this run's numbers.

    A criterion whose numbers this run did not measure is left out, not passed.
    """
    done: dict[str, Any] = {}
    five = results["sizes"].get("5000")
    if five:
        done["build_wall_le_1_5x_floor_at_5k"] = five["build"]["wall_ratio"] <= 1.5
        done["build_rss_le_1_5x_floor_at_5k"] = five["build"]["rss_ratio"] <= 1.5
    if "20000" in results["sizes"]:
        done["build_20k_finished"] = True
    loops = [
        e["parse"]["ratios_vs_handwritten"]["loop"]
        for e in results["sizes"].values()
        if "parse" in e
    ]
    if loops:
        done["parse_loop_le_1_2x_handwritten"] = all(r is not None and r <= 1.2 for r in loops)
    push = results.get("push", {})
    if "noop" in push:
        done["noop_push_zero_puts"] = push["noop"]["puts_at_server"] == 0
    done.update(_done_issue_10(results))
    return done


def _at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def _done_issue_10(results: dict[str, Any]) -> dict[str, bool]:
    """Issue #10: the big folder-grouped DAGs parse like their schedule=None floor."""
    done: dict[str, bool] = {}
    layered = results.get("layered", {}).get("5000")
    if layered:
        rows = layered["files"].values()
        done["layered_5k_every_file_exec_le_1_5x_schedule_none_twin"] = all(
            _at_most(r["exec"]["vs_twin"], 1.5) for r in rows
        )
        done["layered_5k_every_file_exec_lt_5s_cpu"] = all(
            r["exec"]["cpu_s"] is not None and r["exec"]["cpu_s"] < 5.0 for r in rows
        )
        done["layered_5k_build_le_1_4x_floor"] = _at_most(layered["build"]["wall_ratio"], 1.4)
        if "skipped" not in layered["cosmos"]:
            start = layered["files"][layered["most_expensive_file"]]["taskstart"]
            done["layered_5k_taskstart_most_expensive_file_ge_20x_cheaper_than_cosmos"] = _at_most(
                start["vs_cosmos"], 1 / 20
            )  # informational: moved out of the criteria by main()
    sizes = results["sizes"]
    vs_cosmos = {
        size: e["cosmos"]["ratios_generated_vs_cosmos"]
        for size, e in sizes.items()
        if "cosmos" in e
    }
    if "1000" in vs_cosmos:
        loop = vs_cosmos["1000"]["loop"]
        done["loop_below_cosmos_at_1k"] = loop is not None and loop < 1.0
    if "5000" in vs_cosmos:
        done["loop_le_0_7x_cosmos_at_5k"] = _at_most(vs_cosmos["5000"]["loop"], 0.7)
    if vs_cosmos:
        done["taskstart_most_expensive_file_ge_20x_cheaper_than_cosmos"] = all(
            _at_most(r["taskstart"], 1 / 20) for r in vs_cosmos.values()
        )
    return done


if __name__ == "__main__":
    sys.exit(main())
