#!/usr/bin/env python3
"""Where one generated dbt task spends its CPU, phase by phase, and what a flag removes.

Why: a flag that saves 0.2 s of an 8 s task is below what whole-process timings on a shared
2-core machine can resolve (``bench/dbt_task.py``). This runs the generated command
in-process with ``time.process_time`` around the dbt phases a flag could remove (reading the
project's files, the relation cache, log lines, graph linking), so each flag's share is
measured directly. docs/running-dbt.md ("Measured and left out") quotes it.

Usage::

    .venv/bin/python bench/dbt_phases.py [--size 2000] [--shape layered] [--rounds 3] \\
        [--variants generated,no_pp_file_diff,...] [--work-dir DIR]

Prints one row per phase: min / median CPU seconds of each variant over alternating rounds,
after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dbt_task as bench

#: what each variant adds to the generated command (without ``--cache-selected-only``, so
#: that the relation cache's cost shows)
EXTRA: dict[str, list[str]] = {
    "generated": [],
    "no_pp_file_diff": ["--no-partial-parse-file-diff"],
    "no_populate_cache": ["--no-populate-cache"],
    "cache_selected_only": ["--cache-selected-only"],
    "quiet": ["--quiet"],
    "log_level_file_none": ["--log-level-file", "none"],
}

#: run in a child process: dbt's CLI with CPU timers around its phases
CHILD = """
import json, sys, time
t0 = time.process_time()
import dbt.cli.main as cli
import dbt.adapters.duckdb
spent = {"imports": time.process_time() - t0}
from dbt import compilation
from dbt.parser import manifest, read_files
from dbt.task import runnable
from dbt_common.events import logger
def timed(owner, name, label):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.process_time() - start
    setattr(owner, name, wrapper)
timed(read_files.ReadFilesFromFileSystem, "read_files", "read_project_files")
timed(manifest.ManifestLoader, "read_manifest_for_partial_parse", "read_parse_state")
timed(manifest.ManifestLoader, "get_full_manifest", "load_manifest")
timed(runnable.GraphRunnableTask, "populate_adapter_cache", "relation_cache")
timed(runnable.GraphRunnableTask, "execute_nodes", "run_nodes")
timed(compilation.Compiler, "compile", "link_graph")
timed(compilation.Linker, "find_cycles", "link_graph.find_cycles")
timed(logger._Logger, "write_line", "log_lines")
sys.argv = ["dbt", *sys.argv[2:]]
try:
    cli.cli()
except SystemExit as exit:
    spent["exit_code"] = exit.code or 0
spent["total"] = time.process_time() - t0
open(OUT, "w").write(json.dumps(spent))
"""


def set_up(size: int, shape: str, folder: Path, dbt: str) -> tuple[Path, dict, dict[str, str]]:
    """The project, its parse state and the chosen node's ancestors built, as dbt_task does."""
    project = folder / "project"
    shutil.rmtree(folder, ignore_errors=True)
    bench.synth_project.generate(size, project, project=bench.PROJECT, shape=shape)
    env = bench.dbt_env(folder / "synth.duckdb", folder / "pycache")
    dirs = ["--project-dir", str(project), "--profiles-dir", str(project)]
    bench.setup_step("parse", [dbt, "parse", *dirs], env, folder)
    node = bench.choose_node(json.loads((project / "target" / "manifest.json").read_bytes()))
    bench.setup_step("seed", [dbt, "seed", *dirs], env, folder)
    ancestors = ["--select", "+" + node["fqn"].split(".")[-1]]
    bench.setup_step("run_ancestors", [dbt, "run", *ancestors, *dirs], env, folder)
    env["DBT_PARTIAL_PARSE_FILE_PATH"] = str(project / "target" / bench.PP_FILE)
    return project, node, env


def measure(variant: str, project: Path, node: dict, env: dict[str, str], folder: Path) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{variant}-", dir=folder))
    out = run_dir / "phases.json"
    argv = ["build", "--select", f"fqn:{node['fqn']}", "--project-dir", str(project)]
    argv += ["--profiles-dir", str(project), "--indirect-selection", "cautious"]
    argv += ["--use-fast-test-edges", "--no-write-json", *EXTRA[variant]]
    argv += ["--target-path", str(run_dir), "--log-path", str(run_dir)]
    python = Path(bench.find_dbt()).parent / "python"
    code = f"OUT = {str(out)!r}\n{CHILD}"
    subprocess.run(
        [str(python) if python.is_file() else sys.executable, "-c", code, "-", *argv],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    spent = json.loads(out.read_text())
    shutil.rmtree(run_dir)
    if spent.get("exit_code"):
        raise RuntimeError(f"{variant}: dbt exited {spent['exit_code']}")
    return spent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--shape", default="layered")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default=",".join(EXTRA))
    ap.add_argument("--work-dir", type=Path, help="keep the project here (default: temp dir)")
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    folder = args.work_dir or Path(tempfile.mkdtemp(prefix="dbt-phases-"))
    project, node, env = set_up(args.size, args.shape, folder, bench.find_dbt())
    measure(variants[0], project, node, env, folder)  # warm-up: compiles dbt's bytecode
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for variant in variants:
            runs[variant].append(measure(variant, project, node, env, folder))
            bench.log(f"  round {r} {variant}: total {runs[variant][-1]['total']:.2f} s")
    phases = sorted({k for spent in runs[variants[0]] for k in spent} - {"exit_code"})
    print(f"{args.size} models ({args.shape}), node {node['unique_id']}, {time.strftime('%F')}")
    print("phase".ljust(24) + "".join(v[:20].rjust(22) for v in variants))
    for phase in phases:
        cells = []
        for variant in variants:
            xs = [spent.get(phase, 0.0) for spent in runs[variant]]
            cells.append(f"{min(xs):.3f} / {statistics.median(xs):.3f}".rjust(22))
        print(phase.ljust(24) + "".join(cells))
    if args.work_dir is None:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
