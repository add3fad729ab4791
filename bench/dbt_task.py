#!/usr/bin/env python3
"""What one generated task costs in dbt: CPU, wall time and peak memory of one ``dbt build``.

Why: every task dagfactory generates runs ``dbt build --select <one node>``. dbt still
loads the whole project's parse state, links the whole graph and (by default) writes
whole-project artifacts, so a task's cost grows with the project, not with its node, and
is paid once per model per run. This measures that cost on a real dbt-duckdb project
(``sample_manifests/synth_project.py``) and what each flag of the generated command saves.

Usage::

    .venv/bin/python bench/dbt_task.py [--sizes 500,2000[,5000]] [--repeats 3] \\
        [--out .bench/dbt_task.json] [--work-dir DIR] [--dbt PATH] [--build-all-up-to N]

For each size: write the project, ``dbt parse`` once (its ``target/partial_parse.msgpack``
is the shared parse state), load the seeds and the chosen node's ancestors into DuckDB
(or ``dbt build`` the whole project when it has at most ``--build-all-up-to`` models),
then run each variant ``--repeats`` times, the variants alternating, and report medians:

====================  ===========================================================
a ``naive``            ``dbt build --select fqn:<node> --indirect-selection cautious``
                       in the project's own target/ (partial parse on)
b ``no_write_json``    a + ``--no-write-json``
c ``fast_test_edges``  b + ``--use-fast-test-edges``
d ``generated``        c + fresh ``--target-path``, parse state read from the shared
                       file via ``DBT_PARTIAL_PARSE_FILE_PATH``, ``--cache-selected-only``:
                       what tasks run
e ``no_parse_state``   d without the shared parse state: a full parse
f ``vars_changed``     d + ``--vars`` that differ from the parse state
g ``env_var_changed``  d + ``DAGFACTORY_RUN_DATE`` changed (read by one model)
h ``ls``               ``dbt ls --select fqn:<node>``: load and select (and, as it
                       turns out, write manifest.json)
i ``generated_no_      d with no Python bytecode (.pyc) available: what a worker
  bytecode``           image installed without compiled bytecode pays per task
j ``ls_no_write_json`` h + ``--no-write-json`` (plain ls writes manifest.json): the
                       real floor
k ``generated_full_    d without ``--cache-selected-only``: dbt lists the relations
  cache``              of every schema of the project before running one node
l ``no_pp_file_diff``  d + ``DBT_PARTIAL_PARSE_FILE_DIFF=false``: dbt trusts the saved
                       parse without reading the project's files. Measured, not used:
                       a stale state runs stale SQL, and a state dbt cannot use (other
                       vars, profile, dbt version) gives an empty project that exits 0
m ``import_floor``     ``python -c "import dbt.cli.main, dbt.adapters.duckdb"``: what
                       every dbt process pays before it reads anything
s ``generated_         what tasks run now that the image has dbt slices (``dagfactory
  slices``             dbt-slices``, written after the set-up parse):
                       ``<slices>/run.py <dbt> build --select fqn:<node>`` + d's flags,
                       env as d. run.py hands dbt the node's slice in-process. A run
                       that does not say ``dagfactory: dbt runs on the slice`` (a
                       silent fallback to plain dbt), or that starts other nodes than
                       a, stops the benchmark
w ``generated_         what tasks run by default: s behind the worker's dbt server
  slices_server``      (``run.py --server=600``), started before the rounds by one
                       unmeasured task. The task's process asks the server, which
                       forks a child (dbt already imported) to run s. CPU: the task's
                       process + the child; memory: the task's peak RSS + the child's
                       own memory (pages not shared with the server, from
                       /proc/<child>/smaps_rollup at its exit): what the task adds to a
                       worker where the server runs. The child's RSS (shared pages
                       too) and the server's are reported beside it
====================  ===========================================================

Every run but i finds dbt's bytecode in a warm ``PYTHONPYCACHEPREFIX`` cache (this
machine sets ``PYTHONDONTWRITEBYTECODE=1`` and its virtualenv has no .pyc files).
CPU is user+sys of the dbt process and its reaped children (``os.wait4``), peak RSS is
its ``ru_maxrss``, both as a small launcher sees them (``bench/peak.py``: a child of this
benchmark would report the benchmark's own peak). Every run gets its own ``--log-path``; its dbt.log tells
whether dbt skipped parsing, partially re-parsed or fully parsed. The partial parse file
in the project's target/ is restored before each run, and the runs that read it
through ``DBT_PARTIAL_PARSE_FILE_PATH`` are checked not to change it.

``run(sizes, repeats, work_dir)`` returns the same dict the command prints.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sample_manifests"))

import synth_project  # noqa: E402
from peak import run_measured  # noqa: E402

PP_FILE = "partial_parse.msgpack"
PROJECT = "synth"
VARIANTS: dict[str, str] = {
    "a": "naive",
    "b": "no_write_json",
    "c": "fast_test_edges",
    "d": "generated",
    "e": "no_parse_state",
    "f": "vars_changed",
    "g": "env_var_changed",
    "h": "ls",
    "i": "generated_no_bytecode",
    "j": "ls_no_write_json",
    "k": "generated_full_cache",
    "l": "no_pp_file_diff",
    "m": "import_floor",
    "s": "generated_slices",
    "w": "generated_slices_server",
}
SHARED_STATE = ("d", "f", "g", "i", "k", "l", "s", "w")  # read the shared parse state read-only
FRESH_TARGET = ("d", "e", "f", "g", "i", "k", "l", "s", "w")
# the generated command and its variations
CACHE_SELECTED_ONLY = ("d", "e", "f", "g", "i", "l", "s", "w")
SLICES_DIR = "dagfactory_slices"  # in the project's target/, as ``dagfactory dbt-slices``
ON_SLICE = "dagfactory: dbt runs on the slice"  # what run.py says when dbt runs on the slice
ON_SLICE_RUNS = ("s", "w")
SERVER_IDLE = 600  # run.py --server=<idle seconds>, as dagfactory generates by default
# what run.py says after a task that ran in a child of the worker's dbt server
_IN_SERVER = re.compile(
    r"dbt ran in a child of the worker's dbt server \(pid \d+\): ([\d.]+) s CPU, "
    r"peak ([\d.]+) MB resident, ([\d.]+) MB of it its own"
)
IMPORTS = "import dbt.cli.main, dbt.adapters.duckdb"
# Inherited variables dropped from every dbt run (with every DBT_* one): they would
# change where dbt reads and writes, how it parses, or whether bytecode is cached.
CLEAR_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", synth_project.RUN_DATE_ENV)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"\d+ of \d+ START (.+?) \.{2,}")


def log(msg: str) -> None:
    print(f"[dbt_task {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Measured:
    """One dbt process: resources, exit code and what its log says about parsing."""

    cpu_s: float
    wall_s: float
    max_rss_mb: float
    returncode: int
    parse: str  # skipped | partial | full
    reasons: list[str]
    changes: list[str]  # "1 files deleted, 0 files added, 2 files changed." on a partial parse
    started: list[str]  # "sql view model main.x", "test not_null_x_id", ...
    stdout: str


def dbt_env(db_path: Path, pycache: Path) -> dict[str, str]:
    """Environment of every dbt run: no usage stats (no network here), no colour codes in
    logs, Python bytecode cached in ``pycache``.

    Why the cache: this machine sets PYTHONDONTWRITEBYTECODE=1 and the virtualenv holds no
    .pyc files, so each dbt start would compile its modules from source (seconds of CPU)
    where a worker image built by pip has bytecode. Variant i measures that case.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_") and k not in CLEAR_ENV}
    env.update(
        PYTHONPYCACHEPREFIX=str(pycache),
        DBT_DUCKDB_PATH=str(db_path),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_USE_COLORS="false",
        DBT_VERSION_CHECK="false",
    )
    return env


def run_dbt(argv: Sequence[str], env: dict[str, str], log_dir: Path, cwd: Path) -> Measured:
    """Run one dbt command to completion and measure its whole process tree."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path = log_dir / "stdout.txt"
    with out_path.open("wb") as out:
        cost = run_measured(
            [*argv, "--log-path", str(log_dir)], env, cwd, stdout=out, stderr=subprocess.STDOUT
        )
    stdout = out_path.read_text(errors="replace")
    log_file = log_dir / "dbt.log"  # missing when dbt fails before it starts logging
    text = _ANSI.sub("", log_file.read_text(errors="replace") if log_file.exists() else "")
    reasons = sorted(set(re.findall(r"Unable to do partial parsing because (.+)", text)))
    if reasons or "Starting full parse" in text:
        parse = "full"
    elif "no changes found, skipping parsing" in text:
        parse = "skipped"
    elif "Partial parsing enabled:" in text:
        parse = "partial"
    else:
        parse = "unknown"
    return Measured(
        cpu_s=cost.cpu_s,
        wall_s=cost.wall_s,
        max_rss_mb=cost.max_rss_mb,
        returncode=cost.returncode,
        parse=parse,
        reasons=reasons,
        changes=re.findall(r"Partial parsing enabled: (.+)", text),
        started=_START.findall(text),
        stdout=stdout,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def choose_node(manifest: dict[str, Any]) -> dict[str, Any]:
    """A mid-graph model: median depth, tested, with a relationships test if one fits."""
    nodes = manifest["nodes"]
    models = {u: n for u, n in nodes.items() if n["resource_type"] == "model"}
    depth: dict[str, int] = {}

    def depth_of(uid: str) -> int:
        if uid not in depth:
            ups = [p for p in nodes[uid]["depends_on"]["nodes"] if p in models]
            depth[uid] = 1 + max((depth_of(p) for p in ups), default=0)
        return depth[uid]

    for uid in sorted(models):
        depth_of(uid)
    tests_of: dict[str, list[str]] = {}
    for uid, n in nodes.items():
        if n["resource_type"] == "test":
            for parent in n["depends_on"]["nodes"]:
                tests_of.setdefault(parent, []).append(uid)
    median = statistics.median_low(depth.values())
    candidates = [
        u
        for u, n in models.items()
        if n["config"]["materialized"] != "ephemeral"
        and not u.split(".")[-1].startswith("stg_")
        and len(tests_of.get(u, [])) >= 2
    ]

    def rank(uid: str) -> tuple[int, int, str]:
        has_rel = any(".relationships_" in t for t in tests_of.get(uid, []))
        return (abs(depth[uid] - median), 0 if has_rel else 1, uid)

    uid = min(candidates, key=rank)
    ancestors: set[str] = set()
    stack = [uid]
    while stack:
        for p in nodes[stack.pop()]["depends_on"]["nodes"]:
            if p in models and p not in ancestors:
                ancestors.add(p)
                stack.append(p)
    return {
        "unique_id": uid,
        "fqn": ".".join(models[uid]["fqn"]),
        "materialized": models[uid]["config"]["materialized"],
        "depth": depth[uid],
        "median_depth": median,
        "max_depth": max(depth.values()),
        "ancestors": len(ancestors),
        "tests": sorted(tests_of.get(uid, [])),
    }


def variant_argv(key: str, dbt: str, project: Path, node_fqn: str, target: Path) -> list[str]:
    """The dbt command line of a variant (``target`` is used by fresh-target variants)."""
    if key in ON_SLICE_RUNS:  # d's dbt arguments behind the slices' run.py
        server = [f"--server={SERVER_IDLE}"] if key == "w" else []
        return [
            str(project / "target" / SLICES_DIR / "run.py"),
            *server,
            *variant_argv("d", dbt, project, node_fqn, target),
        ]
    dirs = ["--project-dir", str(project), "--profiles-dir", str(project)]
    if key == "m":  # the interpreter of the dbt script; run_dbt's --log-path lands in sys.argv
        python = Path(dbt).parent / "python"
        return [str(python) if python.is_file() else "python", "-c", IMPORTS]
    if key in ("h", "j"):
        ls = [dbt, "ls", "--select", f"fqn:{node_fqn}", *dirs]
        return [*ls, "--no-write-json"] if key == "j" else ls
    argv = [dbt, "build", "--select", f"fqn:{node_fqn}", *dirs, "--indirect-selection", "cautious"]
    if key != "a":
        argv.append("--no-write-json")
    if key not in ("a", "b"):
        argv.append("--use-fast-test-edges")
    if key in FRESH_TARGET:
        argv += ["--target-path", str(target)]
    if key in CACHE_SELECTED_ONLY:
        argv.append("--cache-selected-only")
    if key == "f":
        argv += ["--vars", '{"run_date": "2024-01-02"}']
    return argv


def variant_env(key: str, base: dict[str, str], shared_state: Path, empty: Path) -> dict[str, str]:
    env = dict(base)
    if key == "i":  # no bytecode anywhere: every module compiled from source
        env.update(PYTHONPYCACHEPREFIX=str(empty), PYTHONDONTWRITEBYTECODE="1")
    if key in SHARED_STATE:
        env["DBT_PARTIAL_PARSE_FILE_PATH"] = str(shared_state)
    if key == "g":
        env[synth_project.RUN_DATE_ENV] = "2024-01-02"
    if key == "l":
        env["DBT_PARTIAL_PARSE_FILE_DIFF"] = "false"
    return env


def setup_step(name: str, argv: list[str], env: dict[str, str], folder: Path) -> dict[str, Any]:
    log(f"  {name}: {' '.join(argv[1:3])} ...")
    m = run_dbt(argv, env, folder / "setup" / name, cwd=folder)
    if m.returncode:
        raise RuntimeError(f"{name} failed ({m.returncode}):\n{m.stdout[-3000:]}")
    return {"cpu_s": round(m.cpu_s, 2), "wall_s": round(m.wall_s, 2), "parse": m.parse}


def bench_size(
    size: int,
    repeats: int,
    folder: Path,
    dbt: str,
    build_all_up_to: int = 0,
    shape: str = "layered",
) -> dict[str, Any]:
    """Everything measured on one project size."""
    t0 = time.perf_counter()
    load_start = os.getloadavg()  # other work on the machine inflates CPU and wall times
    project = folder / "project"
    shutil.rmtree(folder, ignore_errors=True)
    plan = synth_project.generate(size, project, project=PROJECT, shape=shape)
    env = dbt_env(folder / "synth.duckdb", folder.parent / "pycache")
    runtime = folder / "runtime"  # where variant w's server puts its socket
    runtime.mkdir(mode=0o700, parents=True)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    dirs = ["--project-dir", str(project), "--profiles-dir", str(project)]
    setup: dict[str, Any] = {"generate_s": round(time.perf_counter() - t0, 2)}
    setup["parse"] = setup_step("parse", [dbt, "parse", *dirs], env, folder)
    # Right after the parse, from its manifest.json, as an image build would: the seed and
    # run below rewrite target/manifest.json with compiled nodes.
    setup["slices"] = write_slices(project, dbt, env)
    shared = project / "target" / PP_FILE
    manifest = json.loads((project / "target" / "manifest.json").read_bytes())
    node = choose_node(manifest)
    del manifest
    log(f"  node {node['unique_id']} (depth {node['depth']}, {node['ancestors']} ancestors)")
    if size <= build_all_up_to:
        setup["build_all"] = setup_step("build_all", [dbt, "build", *dirs], env, folder)
    else:
        setup["seed"] = setup_step("seed", [dbt, "seed", *dirs], env, folder)
        sel = ["--select", f"+{node['fqn'].split('.')[-1]}"]
        setup["run_ancestors"] = setup_step("run_ancestors", [dbt, "run", *sel, *dirs], env, folder)
    backup = folder / f"{PP_FILE}.orig"
    shutil.copyfile(shared, backup)
    original = sha256(backup)

    runs: dict[str, list[Measured]] = {k: [] for k in VARIANTS}
    msgpack_written: dict[str, list[bool]] = {k: [] for k in VARIANTS}
    changed_shared_by: set[str] = set()
    server_runs: list[dict[str, float]] = []
    server = start_dbt_server(
        variant_argv("w", dbt, project, node["fqn"], folder / "server-target"),
        variant_env("w", env, shared, folder / "no-pycache"),
        folder,
    )
    for r in range(repeats):
        for key in VARIANTS:
            if sha256(shared) != original:
                shutil.copyfile(backup, shared)
            run_dir = Path(tempfile.mkdtemp(prefix=f"{key}{r}-", dir=folder))
            target = run_dir / "target"
            argv = variant_argv(key, dbt, project, node["fqn"], target)
            run_env = variant_env(key, env, shared, run_dir / "no-pycache")
            m = run_dbt(argv, run_env, run_dir / "logs", cwd=folder)
            if m.returncode:
                raise RuntimeError(f"variant {key} failed ({m.returncode}):\n{m.stdout[-3000:]}")
            if key in ON_SLICE_RUNS:
                check_slice_run(m, runs["a"][-1].started, argv)
                if m.parse == "unknown":  # dbt got its manifest from run.py: no parse
                    m.parse = "slice"
            if key == "w":
                server_runs.append(add_child_in_server(m, argv))
            now = sha256(shared)
            if now != original:
                changed_shared_by.add(key)
            written = (target / PP_FILE).exists() if key in FRESH_TARGET else now != original
            msgpack_written[key].append(written)
            runs[key].append(m)
            shutil.rmtree(run_dir)
            log(
                f"  {key} {VARIANTS[key]:<16} cpu {m.cpu_s:6.2f}s wall {m.wall_s:6.2f}s "
                f"rss {m.max_rss_mb:5.0f}MB parse={m.parse}"
            )
    final_identical = sha256(shared) == original
    server.update(stop_dbt_server(server["pid"]))

    variants: dict[str, Any] = {}
    for key, name in VARIANTS.items():
        ms = runs[key]
        variants[key] = {
            "name": name,
            "argv": variant_argv(key, "dbt", Path("<P>"), node["fqn"], Path("<fresh>")),
            "env": _env_note(key),
            "cpu_s": round(statistics.median(m.cpu_s for m in ms), 3),
            "wall_s": round(statistics.median(m.wall_s for m in ms), 3),
            "max_rss_mb": round(statistics.median(m.max_rss_mb for m in ms), 1),
            "cpu_s_min": round(min(m.cpu_s for m in ms), 3),
            "cpu_s_all": [round(m.cpu_s, 3) for m in ms],
            "full_parse": any(m.parse == "full" for m in ms),
            "parse": sorted({m.parse for m in ms}),
            "full_parse_reasons": sorted({x for m in ms for x in m.reasons}),
            "partial_parse_changes": sorted({x for m in ms for x in m.changes}),
            "wrote_partial_parse_file": any(msgpack_written[key]),
            "started": ms[0].started,
        }
    variants["w"].update(
        {k: round(statistics.median(run[k] for run in server_runs), 3) for k in server_runs[0]},
        memory="task's peak RSS + the child's own memory (pages not shared with the server)",
        server=server,
    )
    return {
        "models": size,
        "plan": plan.counts(),
        "node": node,
        "setup": setup,
        "variants": variants,
        "derived": derive(size, variants),
        "shared_state": {
            "sha256": original,
            "bytes": backup.stat().st_size,
            "changed_by_variants": sorted(changed_shared_by),
            "unchanged_by_shared_state_runs": not changed_shared_by & set(SHARED_STATE),
            "identical_after_all_runs": final_identical,
        },
        "same_nodes_run_a_vs_c": variants["a"]["started"] == variants["c"]["started"],
        # checked on every run of s against the a of its round (a mismatch stops the bench)
        "same_nodes_run_a_vs_s": variants["a"]["started"] == variants["s"]["started"],
        "same_nodes_run_a_vs_w": variants["a"]["started"] == variants["w"]["started"],
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "loadavg_1m_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
    }


def write_slices(project: Path, dbt: str, env: dict[str, str]) -> dict[str, Any]:
    """``dagfactory dbt-slices <project>/target/manifest.json``, timed (variant s uses them).

    run.py's interpreter is the one of ``dbt`` (its shebang), as on a worker whose image
    holds both; dagfactory itself would look ``dbt`` up on PATH. It runs in dbt's
    environment, as in an image build: the slices record the values of the environment
    variables the parse read (the profile's ``DBT_DUCKDB_PATH``).
    """
    import dagfactory
    from dagfactory.dbt_slices import write_dbt_slices

    first = Path(dbt).read_bytes().split(b"\n", 1)[0].decode(errors="replace")
    python = first[2:].strip() if first.startswith("#!") and "python" in first else None
    t0, c0 = time.perf_counter(), time.process_time()
    target = project / "target"
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        report = write_dbt_slices(target / "manifest.json", target / SLICES_DIR, python=python)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    out = {
        "cpu_s": round(time.process_time() - c0, 2),  # in this process: dagfactory, not dbt
        "wall_s": round(time.perf_counter() - t0, 2),
        "slices": report.slices,
        "plain_dbt_tasks": len(report.plain_dbt),
        "refused": report.refused,
        "dagfactory_module": str(Path(dagfactory.__file__).parent),
        "bytes": sum(f.stat().st_size for f in (target / SLICES_DIR).iterdir()),
    }
    log(f"  slices: {out}")
    return out


def check_slice_run(m: Measured, naive_started: list[str], argv: list[str]) -> None:
    """A run of s or w counts only if dbt ran on the slice and ran what naive dbt ran."""
    if ON_SLICE not in m.stdout:
        raise RuntimeError(
            f"a slices variant did not run on the slice (no {ON_SLICE!r}):\n"
            f"{m.stdout[-3000:]}\ncommand: {' '.join(argv)}"
        )
    if m.started != naive_started:
        raise RuntimeError(
            f"a slices variant started other nodes than variant a: {m.started} != "
            f"{naive_started}\ncommand: {' '.join(argv)}"
        )


def _process_cost(pid: int) -> dict[str, float]:
    """CPU seconds so far, resident and proportional memory of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    memory = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Rss", "Pss") and value.strip():
            memory[name.lower() + "_mb"] = round(int(value.split()[0]) / 1024, 1)
    return {"cpu_s": round((int(fields[11]) + int(fields[12])) / ticks, 2), **memory}


def start_dbt_server(argv: list[str], env: dict[str, str], folder: Path) -> dict[str, Any]:
    """Variant w's server, started as on a worker: by a first task (not measured), which
    runs on its own while the server imports dbt. Its pid and cost once it listens."""
    m = run_dbt(argv, env, folder / "setup" / "server", cwd=folder)
    if m.returncode:
        raise RuntimeError(f"the task that starts the dbt server failed:\n{m.stdout[-3000:]}")
    runtime = Path(env["XDG_RUNTIME_DIR"])
    deadline = time.monotonic() + 300
    while not list(runtime.glob("dagfactory-dbt-*/*.sock")):
        if time.monotonic() > deadline:
            logs = "".join(p.read_text() for p in runtime.glob("dagfactory-dbt-*/*.log"))
            raise RuntimeError(f"no dbt server listens after 300 s:\n{logs[-3000:]}")
        time.sleep(0.2)
    (pid_file,) = runtime.glob("dagfactory-dbt-*/*.pid")
    pid = int(pid_file.read_text())
    ready = _process_cost(pid)
    log(f"  dbt server {pid} listens: {ready}")
    return {"pid": pid, "when_ready": ready}


def stop_dbt_server(pid: int) -> dict[str, Any]:
    """The server's cost after the rounds, then SIGTERM (it leaves when its children are)."""
    last = _process_cost(pid)
    os.kill(pid, signal.SIGTERM)
    return {"after_rounds": last}


def add_child_in_server(m: Measured, argv: list[str]) -> dict[str, float]:
    """Count the server's child in a run of w (the run measured the task's process only):
    CPU adds up; memory is the task's peak RSS + the child's own pages."""
    found = _IN_SERVER.search(m.stdout)
    if found is None:
        raise RuntimeError(
            f"variant w did not run in the dbt server:\n{m.stdout[-3000:]}\n"
            f"command: {' '.join(argv)}"
        )
    child_cpu, child_rss, child_own = (float(x) for x in found.groups())
    parts = {
        "task_process_cpu_s": m.cpu_s,
        "task_process_rss_mb": m.max_rss_mb,
        "child_cpu_s": child_cpu,
        "child_rss_mb": child_rss,
        "child_own_mb": child_own,
    }
    m.cpu_s += child_cpu
    m.max_rss_mb += child_own
    return parts


def _env_note(key: str) -> dict[str, str]:
    note = {}
    if key in SHARED_STATE:
        note["DBT_PARTIAL_PARSE_FILE_PATH"] = f"<P>/target/{PP_FILE}"
    if key == "g":
        note[synth_project.RUN_DATE_ENV] = "2024-01-02"
    if key == "i":
        note["PYTHONDONTWRITEBYTECODE"] = "1 (and no .pyc files)"
    if key == "l":
        note["DBT_PARTIAL_PARSE_FILE_DIFF"] = "false"
    return note


def derive(size: int, v: dict[str, Any]) -> dict[str, Any]:
    """Ratios, what each flag saves, and a day of tasks in CPU hours (naive, generated,
    without the parse state, on slices)."""

    def r(a: float, b: float) -> float:
        return round(a / b, 2) if b else float("nan")

    naive, gen = v["a"]["cpu_s"], v["d"]["cpu_s"]
    return {
        "naive_over_generated_cpu": r(naive, gen),
        "naive_over_generated_rss": r(v["a"]["max_rss_mb"], v["d"]["max_rss_mb"]),
        "generated_over_ls_cpu": r(gen, v["h"]["cpu_s"]),
        "generated_over_ls_no_write_json_cpu": r(gen, v["j"]["cpu_s"]),
        # Share of the naive task's CPU each step removes (negative: it costs more).
        "share_saved_no_write_json": r(naive - v["b"]["cpu_s"], naive),
        "share_saved_fast_test_edges": r(v["b"]["cpu_s"] - v["c"]["cpu_s"], naive),
        "share_saved_own_target_shared_state": r(v["c"]["cpu_s"] - v["k"]["cpu_s"], naive),
        "share_saved_cache_selected_only": r(v["k"]["cpu_s"] - gen, naive),
        "no_pp_file_diff_saved_cpu_s": round(gen - v["l"]["cpu_s"], 2),
        "import_floor_cpu_s": v["m"]["cpu_s"],
        "naive_over_ls_no_write_json_cpu": r(naive, v["j"]["cpu_s"]),
        "naive_over_ls_no_write_json_rss": r(v["a"]["max_rss_mb"], v["j"]["max_rss_mb"]),
        "full_parse_extra_cpu_s": round(v["e"]["cpu_s"] - gen, 2),
        "vars_changed_extra_cpu_s": round(v["f"]["cpu_s"] - gen, 2),
        "env_var_changed_extra_cpu_s": round(v["g"]["cpu_s"] - gen, 2),
        "no_bytecode_extra_cpu_s": round(v["i"]["cpu_s"] - gen, 2),
        # Every model of the project run once a day, each as its own task.
        "daily_worker_cpu_hours_naive": round(size * naive / 3600, 2),
        "daily_worker_cpu_hours_generated": round(size * gen / 3600, 2),
        "daily_worker_cpu_hours_full_parse": round(size * v["e"]["cpu_s"] / 3600, 2),
        **derive_slices(size, v),
    }


#: issue #11's Done-means line, checked at this many models
ISSUE_11_MODELS = 2000
ISSUE_11 = {"naive_over_slices_cpu": 3.0, "naive_over_slices_rss": 2.5, "slices_over_ls": 1.3}


def derive_slices(size: int, v: dict[str, Any]) -> dict[str, Any]:
    """Both commands on slices against naive (a): in the task's own process (s, keys
    ``*_slices_*``) and forked from the worker's dbt server (w, the default, ``*_server_*``).
    """
    out: dict[str, Any] = {}
    for key, label in (("s", "slices"), ("w", "server")):
        if key in v:
            out.update(derive_on_slices(size, v, key, label))
    return out


def derive_on_slices(size: int, v: dict[str, Any], key: str, label: str) -> dict[str, Any]:
    """Variant ``key`` against naive (a), generated without slices (d) and the dbt ls
    floor (j), with issue #11's verdict at 2,000 models (``issue_11_<label>``).

    The ratios are kept unrounded as well (``*_exact``) so a verdict is never decided by
    rounding; the verdict is None below 2,000 models, where the line says nothing.
    """
    sl = v[key]

    def q(name: str, field: str, num: dict[str, Any], den: dict[str, Any]) -> dict[str, float]:
        exact = num[field] / den[field] if den[field] else float("nan")
        return {name: round(exact, 2), f"{name}_exact": round(exact, 4)}

    out: dict[str, Any] = {
        **q(f"naive_over_{label}_cpu", "cpu_s", v["a"], sl),
        **q(f"naive_over_{label}_rss", "max_rss_mb", v["a"], sl),
        **q(f"generated_over_{label}_cpu", "cpu_s", v["d"], sl),
        **q(f"generated_over_{label}_rss", "max_rss_mb", v["d"], sl),
        **q(f"{label}_over_ls_no_write_json_cpu", "cpu_s", sl, v["j"]),
        **q(f"{label}_over_ls_no_write_json_rss", "max_rss_mb", sl, v["j"]),
        **q(f"{label}_over_ls_cpu", "cpu_s", sl, v["h"]),  # plain dbt ls (writes manifest.json)
        f"daily_worker_cpu_hours_{label}": round(size * sl["cpu_s"] / 3600, 2),
    }
    verdict: dict[str, Any] | None = None
    if size == ISSUE_11_MODELS:
        checks = {
            "naive_over_slices_cpu": out[f"naive_over_{label}_cpu_exact"]
            >= ISSUE_11["naive_over_slices_cpu"],
            "naive_over_slices_rss": out[f"naive_over_{label}_rss_exact"]
            >= ISSUE_11["naive_over_slices_rss"],
            "slices_over_ls": out[f"{label}_over_ls_no_write_json_cpu_exact"]
            <= ISSUE_11["slices_over_ls"],
        }
        verdict = {
            "variant": key,
            "thresholds": dict(ISSUE_11),
            "checks": checks,
            "pass": all(checks.values()),
            # CPU is what "within 1.3x of dbt ls" compares (ls: --no-write-json, the floor)
            "slices_over_ls_compares": "cpu_s, variant j (dbt ls --no-write-json)",
        }
    out[f"issue_11_{label}"] = verdict
    return out


def find_dbt(explicit: str | None = None) -> str:
    """The dbt next to this Python (the repo's .venv), else the one on PATH."""
    if explicit:
        return explicit
    here = Path(sys.executable).parent / "dbt"
    found = str(here) if here.exists() else shutil.which("dbt")
    if not found:
        raise SystemExit("dbt not found: install dbt-core<1.12 and dbt-duckdb, or pass --dbt")
    return found


def run(
    sizes: Sequence[int],
    repeats: int = 3,
    work_dir: Path | None = None,
    dbt: str | None = None,
    build_all_up_to: int = 0,
    shapes: Sequence[str] = ("layered",),
) -> dict[str, Any]:
    """Measure every variant at every size; returns a JSON-ready dict.

    Results are keyed by size for the layered shape and ``"<size>-<shape>"`` for others.

    ``build_all_up_to``: projects of at most this many models are built whole first (a
    check that the project builds); larger ones load only seeds and the node's ancestors.
    """
    exe = find_dbt(dbt)
    version = subprocess.run(
        [exe, "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, "DBT_VERSION_CHECK": "false"},
    ).stdout
    own = work_dir is None
    base = Path(tempfile.mkdtemp(prefix="dbt-task-")) if own else Path(work_dir)
    out: dict[str, Any] = {
        "dbt": exe,
        "dbt_version": "dbt-core " + (re.findall(r"installed:\s*(\S+)", version) or ["?"])[0],
        "cpus": os.cpu_count(),
        "repeats": repeats,
        "sizes": {},
    }
    try:
        for shape in shapes:
            for size in sizes:
                key = str(size) if shape == "layered" else f"{size}-{shape}"
                log(f"size {key}")
                folder = base / f"size_{key}"
                out["sizes"][key] = bench_size(size, repeats, folder, exe, build_all_up_to, shape)
    finally:
        if own:
            shutil.rmtree(base, ignore_errors=True)
    return out


def table(result: dict[str, Any]) -> str:
    """A plain-text table of the medians, for a terminal or a report."""
    lines = []
    for size, res in result["sizes"].items():
        lines.append(f"{size} models, node {res['node']['unique_id']}")
        lines.append(f"  {'variant':<20} {'cpu s':>7} {'wall s':>7} {'rss MB':>7}  parse")
        for key, v in res["variants"].items():
            lines.append(
                f"  {key} {v['name']:<18} {v['cpu_s']:7.2f} {v['wall_s']:7.2f} "
                f"{v['max_rss_mb']:7.0f}  {'/'.join(v['parse'])}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="500,2000", help="comma-separated model counts")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / ".bench" / "dbt_task.json")
    ap.add_argument("--work-dir", type=Path, help="keep projects here (default: a temp dir)")
    ap.add_argument("--dbt", help="dbt executable (default: next to this python, or PATH)")
    ap.add_argument(
        "--build-all-up-to",
        type=int,
        default=0,
        metavar="N",
        help="dbt build whole projects of at most N models first (default: only ancestors)",
    )
    ap.add_argument(
        "--shapes",
        default="layered",
        help="comma-separated project shapes of synth_project.py (layered, deep)",
    )
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    result = run(sizes, args.repeats, args.work_dir, args.dbt, args.build_all_up_to, shapes)
    text = json.dumps(result, indent=2, sort_keys=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    print(table(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
