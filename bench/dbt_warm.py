#!/usr/bin/env python3
"""What one task would cost if a warm dbt process forked a child per task (issue #11 probe).

Why: a fresh dbt process per task pays importing dbt, reading the parse state and linking
the graph before it runs anything (``bench/dbt_task.py``), so the generated command cannot
get far below ``dbt ls``. A long-lived process per worker that has dbt imported and the
``Manifest`` loaded could fork one child per task and pay only what the child adds. This
measures that child, against the naive and the generated commands in the same run. It
measures a design; it is not the design (see docs/running-dbt.md).

Usage::

    .venv/bin/python bench/dbt_warm.py [--sizes 2000] [--shape layered|deep] [--repeats 3] \\
        [--out bench/dbt_warm.json] [--work-dir DIR]

Per size: write the project, ``dbt parse``, load the seeds and the chosen node's ancestors
(all through ``bench/dbt_task.py``). Then start a *warm parent*: a separate Python process
that imports dbt and runs ``dbtRunner().invoke(["parse", ...])`` once, with the generated
command's flags, keeping the returned ``Manifest``. Each repeat runs, alternating, the naive
command (dbt_task variant a), the generated command (variant d), and two forked children of
the warm parent, each ``dbtRunner(manifest=m).invoke(["build", "--select", "fqn:<node>",
...])``: ``fork`` as is, and ``fork_frozen`` with ``gc.freeze()`` in the parent before the
fork (the collector then leaves the parent's objects alone, so fewer shared pages are
copied). Before every run the node's relation is dropped, and after it must exist again.

CPU is user+sys of the reaped process (``os.wait4``). For a child, ``ru_maxrss`` counts
every page it maps, most of them the parent's and shared; the child also reads
``/proc/self/smaps_rollup`` just before it exits: USS (pages only it holds) is what each
extra concurrent child costs the machine, PSS splits shared pages between sharers. The
ratios use USS for the child (end-of-task, not peak: smaps has no high-water mark).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dbt_task

ROOT = dbt_task.ROOT
FLAGS = (
    "--indirect-selection",
    "cautious",
    "--use-fast-test-edges",
    "--no-write-json",
    "--cache-selected-only",
)
RUNS = ("naive", "generated", "fork", "fork_frozen")


def log(msg: str) -> None:
    print(f"[dbt_warm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _memory() -> dict[str, float]:
    """This process's RSS, PSS and USS now, in MB (from /proc/self/smaps_rollup)."""
    kb: dict[str, int] = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        kb[name.rstrip(":")] = int(value)
    uss = kb["Private_Clean"] + kb["Private_Dirty"] + kb.get("Private_Hugetlb", 0)
    return {"rss_mb": kb["Rss"] / 1024, "pss_mb": kb["Pss"] / 1024, "uss_mb": uss / 1024}


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# --- the warm parent (runs as its own process: ``dbt_warm.py --serve``) ---------------------


def serve(project: Path, node_fqn: str, work: Path, reply_fd: int) -> None:
    """Import dbt, parse once, then fork one child per ``<run_dir> <frozen>`` line on stdin."""
    reply = os.fdopen(reply_fd, "w", buffering=1)
    t0, cpu0 = time.perf_counter(), _cpu_self()
    import dbt.adapters.duckdb  # noqa: F401
    from dbt.cli.main import dbtRunner  # the import is what is measured

    t1, cpu1 = time.perf_counter(), _cpu_self()
    dirs = ["--project-dir", str(project), "--profiles-dir", str(project)]
    parsed = dbtRunner().invoke(
        ["parse", *dirs, *FLAGS, "--target-path", str(work / "target"), "--log-path", str(work)]
    )
    if not parsed.success:
        reply.write(json.dumps({"error": f"parse failed: {parsed.exception!r}"}) + "\n")
        return
    manifest = parsed.result
    t2, cpu2 = time.perf_counter(), _cpu_self()
    ready = {
        "import_cpu_s": cpu1 - cpu0,
        "import_wall_s": t1 - t0,
        "parse_cpu_s": cpu2 - cpu1,
        "parse_wall_s": t2 - t1,
        "process_cpu_s": cpu2,  # with interpreter start-up
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **_memory(),
    }
    reply.write(json.dumps(ready) + "\n")
    for line in sys.stdin:
        run_dir, frozen = Path(line.split()[0]), line.split()[1] == "1"
        run_dir.mkdir(parents=True, exist_ok=True)
        argv = ["build", "--select", f"fqn:{node_fqn}", *dirs, *FLAGS]
        argv += ["--target-path", str(run_dir / "target"), "--log-path", str(run_dir / "logs")]
        if frozen:
            gc.freeze()
        sys.stdout.flush()
        sys.stderr.flush()
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            _child(manifest, argv, run_dir)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
        if frozen:
            gc.unfreeze()
        child = json.loads((run_dir / "child.json").read_text()) if status == 0 else {}
        result = {
            "returncode": os.waitstatus_to_exitcode(status),
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "wall_s": wall,
            "max_rss_mb": usage.ru_maxrss / 1024,
            **child,
        }
        reply.write(json.dumps(result) + "\n")


def _child(manifest: Any, argv: list[str], run_dir: Path) -> None:
    """The forked task: build one node from the parent's manifest, report, exit."""
    code = 1
    try:
        out = os.open(run_dir / "stdout.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(out, 2)
        from dbt.cli.main import dbtRunner  # already imported by the parent

        res = dbtRunner(manifest=manifest).invoke(argv)
        statuses = sorted((r.node.unique_id, str(r.status)) for r in (res.result or []))
        ok = res.success and bool(statuses) and all(s in ("success", "pass") for _, s in statuses)
        report = {"results": statuses, "exception": repr(res.exception), **_memory()}
        (run_dir / "child.json").write_text(json.dumps(report))
        code = 0 if ok else 1
    except BaseException as exc:  # the child must never return into the parent
        (run_dir / "child_error.txt").write_text(repr(exc))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# --- the orchestrator ---------------------------------------------------------------------


class WarmParent:
    """The ``--serve`` process: started once per size, asked for one child per run."""

    def __init__(self, project: Path, node_fqn: str, work: Path, env: dict[str, str]) -> None:
        work.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        self.log = (work / "parent_stdout.txt").open("wb")
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(project), node_fqn, str(work), str(write_fd)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            text=True,
        )
        os.close(write_fd)
        self.replies = os.fdopen(read_fd)
        self.ready = self._reply()
        self.ready["startup_wall_s"] = time.perf_counter() - start
        if "error" in self.ready:
            raise RuntimeError(f"warm parent: {self.ready['error']}; see {work}")

    def _reply(self) -> dict[str, Any]:
        line = self.replies.readline()
        if not line:
            raise RuntimeError(f"warm parent died (exit {self.proc.wait()})")
        return json.loads(line)

    def child(self, run_dir: Path, frozen: bool) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{run_dir} {int(frozen)}\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.log.close()
        self.replies.close()
        return {"exit": self.proc.returncode, "max_rss_mb_with_children": usage.ru_maxrss / 1024}


def _relation(db: Path, schema: str, name: str, drop: bool) -> bool:
    """Whether the node's relation exists; with ``drop``, drop it first."""
    import duckdb

    with duckdb.connect(str(db)) as con:
        sql = (
            "select table_type from information_schema.tables where table_schema=? and table_name=?"
        )
        row = con.execute(sql, [schema, name]).fetchone()
        if drop and row:
            kind = "view" if row[0] == "VIEW" else "table"
            con.execute(f'drop {kind} "{schema}"."{name}"')
            return False
        return row is not None


def bench_size(size: int, shape: str, repeats: int, folder: Path, dbt: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    load_start = os.getloadavg()
    project = folder / "project"
    shutil.rmtree(folder, ignore_errors=True)
    dbt_task.synth_project.generate(size, project, project=dbt_task.PROJECT, shape=shape)
    db = folder / "synth.duckdb"
    env = dbt_task.dbt_env(db, folder.parent / "pycache")
    dirs = ["--project-dir", str(project), "--profiles-dir", str(project)]
    dbt_task.setup_step("parse", [dbt, "parse", *dirs], env, folder)
    manifest = json.loads((project / "target" / "manifest.json").read_bytes())
    node = dbt_task.choose_node(manifest)
    schema, alias = (manifest["nodes"][node["unique_id"]][k] for k in ("schema", "alias"))
    del manifest
    log(f"  node {node['unique_id']} ({node['materialized']}, depth {node['depth']})")
    dbt_task.setup_step("seed", [dbt, "seed", *dirs], env, folder)
    sel = ["--select", f"+{node['fqn'].split('.')[-1]}"]
    dbt_task.setup_step("run_ancestors", [dbt, "run", *sel, *dirs], env, folder)
    shared = project / "target" / dbt_task.PP_FILE
    backup = folder / f"{dbt_task.PP_FILE}.orig"
    shutil.copyfile(shared, backup)
    original = dbt_task.sha256(backup)

    # The warm parent reads the shared parse state like the generated command does.
    parent_env = {**env, "DBT_PARTIAL_PARSE_FILE_PATH": str(shared)}
    parent = WarmParent(project, node["fqn"], folder / "parent", parent_env)
    log(f"  warm parent ready: {_fmt(parent.ready)}")
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in RUNS}
    try:
        for r in range(repeats):
            for kind in RUNS:
                if dbt_task.sha256(shared) != original:
                    shutil.copyfile(backup, shared)
                _relation(db, schema, alias, drop=True)
                run_dir = Path(tempfile.mkdtemp(prefix=f"{kind}{r}-", dir=folder))
                if kind.startswith("fork"):
                    m = parent.child(run_dir, frozen=kind == "fork_frozen")
                    if m["returncode"]:
                        raise RuntimeError(f"{kind} failed: {m}; see {run_dir}")
                else:
                    key = "a" if kind == "naive" else "d"
                    argv = dbt_task.variant_argv(key, dbt, project, node["fqn"], run_dir / "target")
                    run_env = dbt_task.variant_env(key, env, shared, run_dir / "no-pycache")
                    got = dbt_task.run_dbt(argv, run_env, run_dir / "logs", cwd=folder)
                    if got.returncode:
                        raise RuntimeError(f"{kind} failed:\n{got.stdout[-3000:]}")
                    m = {"cpu_s": got.cpu_s, "wall_s": got.wall_s, "max_rss_mb": got.max_rss_mb}
                    m["parse"] = got.parse
                m["relation_rebuilt"] = _relation(db, schema, alias, drop=False)
                if not m["relation_rebuilt"]:
                    raise RuntimeError(f"{kind} exited 0 but {schema}.{alias} does not exist")
                runs[kind].append(m)
                shutil.rmtree(run_dir)
                log(f"  {kind:<12} {_fmt(m)}")
    finally:
        parent_exit = parent.close()
    return {
        "models": size,
        "shape": shape,
        "node": node,
        "warm_parent": {k: _round(v) for k, v in {**parent.ready, **parent_exit}.items()},
        "runs": {k: _summary(v) for k, v in runs.items()},
        "derived": derive(size, runs, parent.ready),
        "shared_state_unchanged_by_parent": dbt_task.sha256(backup) == original,
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "loadavg_1m_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
    }


def _round(v: Any) -> Any:
    return round(v, 3) if isinstance(v, float) else v


def _fmt(m: dict[str, Any]) -> str:
    keys = ("cpu_s", "wall_s", "max_rss_mb", "uss_mb", "pss_mb", "import_cpu_s", "parse_cpu_s")
    return " ".join(f"{k}={m[k]:.2f}" for k in keys if k in m)


def _med(ms: list[dict[str, Any]], key: str) -> float | None:
    vals = [m[key] for m in ms if key in m]
    return round(statistics.median(vals), 3) if vals else None


def _summary(ms: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: _med(ms, k) for k in ("cpu_s", "wall_s", "max_rss_mb", "uss_mb", "pss_mb", "rss_mb")
    }
    out = {k: v for k, v in out.items() if v is not None}
    out["cpu_s_all"] = [round(m["cpu_s"], 3) for m in ms]
    out["relation_rebuilt_every_run"] = all(m["relation_rebuilt"] for m in ms)
    if "results" in ms[0]:
        out["results"] = ms[0]["results"]
    if "parse" in ms[0]:
        out["parse"] = sorted({m["parse"] for m in ms})
    return out


def derive(
    size: int, runs: dict[str, list[dict[str, Any]]], ready: dict[str, Any]
) -> dict[str, Any]:
    """Same-run ratios (child memory: USS) and the parent's one-time cost spread over tasks."""

    def r(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    out: dict[str, Any] = {}
    one_time = ready["process_cpu_s"]
    for child in ("fork", "fork_frozen"):
        cpu, uss = _med(runs[child], "cpu_s"), _med(runs[child], "uss_mb")
        for base in ("naive", "generated"):
            out[f"{base}_over_{child}_cpu"] = r(_med(runs[base], "cpu_s"), cpu)
            out[f"{base}_over_{child}_rss_vs_uss"] = r(_med(runs[base], "max_rss_mb"), uss)
            out[f"{base}_over_{child}_rss_vs_child_rss"] = r(
                _med(runs[base], "max_rss_mb"), _med(runs[child], "max_rss_mb")
            )
        # One warm parent serving every model's task once: its start-up spread over N tasks.
        amortised = cpu + one_time / size if cpu is not None else None
        out[f"{child}_cpu_s_with_parent_amortised_over_{size}"] = _round(amortised)
        out[f"naive_over_{child}_amortised_cpu"] = r(_med(runs["naive"], "cpu_s"), amortised)
    out["parent_one_time_cpu_s"] = round(one_time, 3)
    return out


def run(sizes: list[int], shape: str, repeats: int, work_dir: Path | None) -> dict[str, Any]:
    exe = dbt_task.find_dbt()
    own = work_dir is None
    base = Path(tempfile.mkdtemp(prefix="dbt-warm-")) if own else work_dir
    out: dict[str, Any] = {"dbt": exe, "cpus": os.cpu_count(), "repeats": repeats, "sizes": {}}
    try:
        for size in sizes:
            key = str(size) if shape == "layered" else f"{size}-{shape}"
            log(f"size {key}")
            out["sizes"][key] = bench_size(size, shape, repeats, base / f"size_{key}", exe)
    finally:
        if own:
            shutil.rmtree(base, ignore_errors=True)
    return out


def table(result: dict[str, Any]) -> str:
    lines = []
    for key, res in result["sizes"].items():
        p = res["warm_parent"]
        lines.append(f"{key} models, node {res['node']['unique_id']}")
        lines.append(
            f"  warm parent once: import {p['import_cpu_s']:.2f}s cpu, parse "
            f"{p['parse_cpu_s']:.2f}s cpu, process {p['process_cpu_s']:.2f}s cpu, "
            f"rss {p['rss_mb']:.0f}MB (peak {p['max_rss_mb']:.0f}MB)"
        )
        lines.append(
            f"  {'run':<12} {'cpu s':>6} {'wall s':>6} {'rss MB':>6} {'uss MB':>6} {'pss MB':>6}"
        )
        for kind, s in res["runs"].items():
            uss, pss = s.get("uss_mb"), s.get("pss_mb")
            lines.append(
                f"  {kind:<12} {s['cpu_s']:6.2f} {s['wall_s']:6.2f} {s['max_rss_mb']:6.0f} "
                f"{'' if uss is None else f'{uss:6.0f}':>6} {'' if pss is None else f'{pss:6.0f}':>6}"
            )
        for k, v in res["derived"].items():
            lines.append(f"  {k}: {v}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--serve"]:
        _, project, node_fqn, work, fd = args_in
        serve(Path(project), node_fqn, Path(work), int(fd))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000", help="comma-separated model counts")
    ap.add_argument("--shape", default="layered", help="synth_project.py shape (layered, deep)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "dbt_warm.json")
    ap.add_argument("--work-dir", type=Path, help="keep projects here (default: a temp dir)")
    args = ap.parse_args(args_in)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    result = run(sizes, args.shape, args.repeats, args.work_dir)
    command = " ".join([".venv/bin/python bench/dbt_warm.py", *args_in])
    old = json.loads(args.out.read_text()) if args.out.exists() else {}  # other sizes/shapes
    for res in result["sizes"].values():
        res["command"] = command
    old.update({k: v for k, v in result.items() if k != "sizes"})
    old.setdefault("sizes", {}).update(result["sizes"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
