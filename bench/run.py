"""dagfactory benchmarks: build speed against the JSON-parse floor, Airflow parse cost against
hand-written DAG files (and cosmos when it installs), push request counts.

    make bench                       # full run (1k, 5k, 20k models), ~10-15 min on 2 cores
    make bench BENCH_ARGS=--quick    # 1k-only smoke run, results under .bench/
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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from references import write_cosmos, write_handwritten  # noqa: E402
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

#: Per mode: sizes, build repeats per size, and (DagBag runs, loops, task starts) per size
#: for the parse measurements (sizes not listed: no parse measurement). Parse loops of 5k
#: models take about a minute each on 2 cores, hence fewer of them.
PLANS: dict[str, dict[str, Any]] = {
    "full": {
        "sizes": [1000, 5000, 20000],
        "build_repeats": {1000: 7, 5000: 7, 20000: 3},
        "parse": {1000: (3, 5, 7), 5000: (1, 2, 3)},
        "cosmos": {1000: (1, 3, 3)},
    },
    "quick": {
        "sizes": [1000],
        "build_repeats": {},
        "parse": {},
        "default_parse": (1, 2, 3),
        "cosmos": {},
        "default_cosmos": (1, 1, 1),
    },
}
DEFAULT_BUILD_REPEATS = 3


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


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
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{argv[:3]} failed ({proc.returncode}):\n{tail}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,  # Linux reports kilobytes
    }


def probe(python: Path, args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """Run ``bench/parse_probe.py`` in a fresh process; its JSON result and the process's wall."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), str(HERE / "parse_probe.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT ") :]), wall
    raise RuntimeError(f"parse_probe {args[:2]} failed:\n{done.stderr[-3000:]}")


# --------------------------------------------------------------------------- steps


def synthesize(size: int, folder: Path) -> Path:
    manifest = folder / "manifest.json"
    if not manifest.exists():
        folder.mkdir(parents=True, exist_ok=True)
        log(f"synthesizing a {size}-model manifest")
        subprocess.run(
            [
                str(VENV / "bin" / "python"),
                str(ROOT / "sample_manifests" / "synth.py"),
                "--models",
                str(size),
                "--out",
                str(manifest),
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


def bench_build(manifest: Path, folder: Path, repeats: int, env: dict[str, str]) -> dict:
    """Whole-process build against a fresh-process ``orjson.loads`` of the same file."""
    out = folder / "out"
    python = str(VENV / "bin" / "python")
    variants = {
        "build": build_argv(manifest, out),
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


def build_summary(manifest: Path, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        build_argv(manifest, folder / "out", "--format", "json"),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    return json.loads(done.stdout)


def pick_task(summary: dict[str, Any]) -> tuple[str, str, str]:
    """A model's task in the biggest generated file that holds models (the worst case)."""
    dags = [d for d in summary["dags"] if any(t["resource_type"] == "model" for t in d["tasks"])]
    dag = max(dags, key=lambda d: (len(d["tasks"]), d["dag_id"]))
    models = [t for t in dag["tasks"] if t["resource_type"] == "model"]
    return dag["file"], dag["dag_id"], models[len(models) // 2]["task_id"]


def bench_parse(
    folders: dict[str, Path],
    task: tuple[str, str, str],
    python: Path,
    env: dict[str, str],
    *,
    loops: int,
    taskstarts: int,
    dagbag_runs: int,
    task_for: dict[str, tuple[str, str, str]] | None = None,
) -> dict[str, Any]:
    """3a, 3b and 3c for each folder, alternating folders run by run."""
    names = list(folders)
    result: dict[str, Any] = {name: {} for name in names}
    # (a) DagBag in a fresh process
    for _ in range(dagbag_runs):
        for name in names:
            data, wall = probe(python, ["dagbag", str(folders[name])], env)
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
    data, _ = probe(python, ["loop", *(str(folders[n]) for n in names), "--loops", str(loops)], env)
    for name in names:
        loop = data[str(folders[name].resolve())]
        for key in ("loop_seconds", "loop_cpu_seconds"):
            loop[key] = [round(s, 4) for s in loop[key]]
        loop["median"] = round(loop["median"], 4)
        loop["median_cpu"] = round(loop["median_cpu"], 4)
        result[name]["loop"] = loop
    # (c) task start: parse the one file holding a task
    targets: list[str] = []
    for name in names:
        rel, dag_id, task_id = (task_for or {}).get(name, task)
        targets += [str(folders[name]), rel, dag_id, task_id]
    data, _ = probe(python, ["taskstart", *targets, "--repeats", str(taskstarts)], env)
    for name in names:
        start = data[str(folders[name])]
        for key in ("seconds", "cpu_seconds"):
            start[key] = [round(s, 4) for s in start[key]]
        start["median"] = round(start["median"], 4)
        start["median_cpu"] = round(start["median_cpu"], 4)
        start["task"] = list((task_for or {}).get(name, task))
        result[name]["taskstart"] = start
    return result


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


def file_costs(summary: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per generated file: (tasks, in-DAG edges x schedule assets).

    Airflow 3.3 hashes the whole DAG twice on every ``>>``, and a DAG's hash hashes every
    schedule ``Asset`` (``json.dumps`` each): that product is most of a file's parse time.
    """
    costs = {}
    for dag in summary["dags"]:
        edges = sum(len(t["upstream"]) + len(t.get("wait_for", ())) for t in dag["tasks"])
        tasks = len(dag["tasks"]) + len(dag.get("sensors", ()))
        costs[dag["file"]] = (tasks, edges * len(dag["schedule_assets"]))
    return costs


def calibrate(points: list[tuple[int, int, float]], parent_per_file: float) -> dict[str, Any]:
    """Least squares over files: seconds ~ per_file + tasks * per_task + edge_assets * c.

    ``points`` are (tasks, edges x schedule assets, child CPU seconds) per file; the parent's
    own CPU per file (pre-imports, validating the result) is added to the per-file term.
    """
    rows = [(1.0, float(t), float(e)) for t, e, _ in points]
    ys = [y for _, _, y in points]
    normal = [[sum(r[i] * r[j] for r in rows) for j in range(3)] for i in range(3)]
    rhs = [sum(r[i] * y for r, y in zip(rows, ys, strict=True)) for i in range(3)]
    solved = _solve(normal, rhs)
    if solved is None:
        return {"points": len(points)}
    per_file, per_task, per_edge_asset = solved
    predicted = [sum(c * x for c, x in zip(solved, r, strict=True)) for r in rows]
    total, fitted = sum(ys), sum(predicted)
    return {
        "per_file_s": round(per_file + parent_per_file, 4),
        "per_task_s": round(per_task, 6),
        "per_edge_asset_s": round(per_edge_asset, 8),
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
    parser.add_argument("--work", type=Path, default=ROOT / ".bench", help="scratch folder")
    parser.add_argument("--results", type=Path, help="results JSON path")
    parser.add_argument("--markdown", type=Path, help="BENCHMARKS.md path")
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
        results["sizes"] = dict(sorted(results["sizes"].items(), key=lambda kv: int(kv[0])))
        write_markdown(results, args.markdown or ROOT / "BENCHMARKS.md")
        return 0

    mode = "quick" if args.quick else "full"
    plan = dict(PLANS[mode])
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else plan["sizes"]
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results_path = args.results or (
        work / "results-quick.json" if args.quick else HERE / "results.json"
    )
    markdown_path = args.markdown or (
        work / "BENCHMARKS-quick.md" if args.quick else ROOT / "BENCHMARKS.md"
    )
    command = "make bench" + (f" BENCH_ARGS='{' '.join(sys.argv[1:])}'" if sys.argv[1:] else "")
    env = base_env(work)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": command,
        "mode": mode,
        "machine": machine_facts(),
        "sizes": {},
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
        entry["generated"] = {
            "dag_count": summary["dag_count"],
            "task_count": summary["task_count"],
            "cross_dag_edges": summary["cross_dag_edges"],
            "estimated_parse_loop_seconds": summary["estimated_parse_loop_seconds"],
        }
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
            task = pick_task(summary)
            log(f"{size}: Airflow parse cost, generated vs hand-written")
            parse = bench_parse(
                {"generated": folder / "out", "handwritten": hand},
                task,
                VENV / "bin" / "python",
                env,
                loops=loops,
                taskstarts=taskstarts,
                dagbag_runs=dagbag_runs,
            )
            parse["ratios_vs_handwritten"] = parse_ratios(parse, "generated", "handwritten")
            entry["parse"] = parse
            gen_loop = parse["generated"]["loop"]
            costs = file_costs(summary)
            for name, cpu in gen_loop["file_cpu_medians"].items():
                calibration_points.append((*costs[name], cpu))
            children = sum(gen_loop["file_cpu_medians"].values())
            parent_per_file.append((gen_loop["median_cpu"] - children) / gen_loop["files"])
            log(f"{size}: parse ratios vs hand-written {parse['ratios_vs_handwritten']}")
            if cosmos.get("available") and cosmos_plan:
                log(f"{size}: cosmos DbtDag vs generated, in the cosmos virtualenv")
                cosmos_dir = folder / "cosmos"
                dag_id = write_cosmos(
                    cosmos_dir, manifest, summary["project"], str(COSMOS_VENV / "bin" / "dbt")
                )
                # The same model's task in the cosmos DAG (cosmos adds a suffix to its name).
                cosmos_task = ("cosmos_dag.py", dag_id, f"~{task[2]}_")
                cparse = bench_parse(
                    {"generated": folder / "out", "cosmos": cosmos_dir},
                    task,
                    COSMOS_VENV / "bin" / "python",
                    env,
                    dagbag_runs=cosmos_plan[0],
                    loops=cosmos_plan[1],
                    taskstarts=cosmos_plan[2],
                    task_for={"cosmos": cosmos_task},
                )
                cparse["ratios_cosmos_vs_generated"] = parse_ratios(cparse, "cosmos", "generated")
                entry["cosmos"] = cparse
                log(f"{size}: cosmos / generated {cparse['ratios_cosmos_vs_generated']}")
        results["sizes"][str(size)] = entry

    # Calibrate the estimate dagfactory prints: add one-task files for the per-file cost.
    if calibration_points:
        ones = one_task_folder(work / "one-task-files", 20)
        data, _ = probe(VENV / "bin" / "python", ["loop", str(ones), "--loops", "3"], env)
        one = data[str(ones.resolve())]
        calibration_points += [(1, 0, cpu) for cpu in one["file_cpu_medians"].values()]
        results["parse_calibration"] = calibrate(calibration_points, median(parent_per_file))

    if not args.no_push:
        push_size = max(sizes)
        log(f"push of the {push_size}-model build to moto_server")
        results["push"] = {"size": push_size, **bench_push(work / f"m{push_size}" / "out", work)}
    results["done"] = done_criteria(results)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_markdown(results, markdown_path)
    log(f"wrote {results_path} and {markdown_path} in {results['elapsed_s']:.0f}s")
    return 0


def done_criteria(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's done criteria, checked against this run's numbers."""
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
    return done


if __name__ == "__main__":
    sys.exit(main())
