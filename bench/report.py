"""Write BENCHMARKS.md from a results dict (``bench/run.py`` calls this after every run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: written by ``bench/dbt_task.py`` (``make bench`` runs it first)
DBT_TASK_RESULTS = Path(__file__).with_name("dbt_task.json")
#: the same on the deep project shape (``bench/dbt_task.py --shapes deep``), shown after it
DBT_TASK_DEEP_RESULTS = Path(__file__).with_name("dbt_task_deep.json")

METHOD = """\
## How each number is measured

- **Manifests**: `sample_manifests/synth.py --models N` (dbt 1.11 node shapes copied from a real
  `dbt parse`, ~9.5 KB per model with its tests; dbt groups, acyclic between groups): the
  *dbt-groups* layout. `--layout layered` is the *layered* layout dbt's style guide recommends:
  `models/staging/<source>/` (~30%), `models/intermediate/<area>/` (~30%),
  `models/marts/<area>/` (~40%), no dbt groups, refs flowing staging -> intermediate -> marts
  (intermediate also refs intermediate; marts also ref marts, staging and seeds). Built with
  `--group-by folder` (dagfactory's default when a manifest has no groups) it gives a handful of
  big DAGs: staging, intermediate, marts, seeds.
- **Build**: the whole `dagfactory build --manifest M --out D --runner celery` process (interpreter
  start, imports, load, every stage, writing the files) against the **floor**: a fresh
  `python -c "orjson.loads(open(M, 'rb').read())"` of the same file. The three programs (build,
  floor, and the floor with the garbage collector off, shown for information) run one after the
  other, round after round, after one warm-up round; wall and CPU time and peak RSS come from
  `os.wait4` on each process; the table shows medians. `--runner celery` makes every task a
  `BashOperator`, the operator of the hand-written reference, so the parse comparison is like for
  like (routing does not change the build's cost).
- **Hand-written reference**: `bench/references.py` writes, from the build's JSON summary, one
  file per generated DAG with the same DAG ids, task ids, dbt commands, `>>` edges and cross-DAG
  edges (an `Asset` outlet on the producer, `schedule=[Asset(...)]` on the consumer) and nothing
  else (no docs, default_args, inlets, retries): the floor Airflow sets for these tasks.
- **Parse cost**, in a fresh process with Airflow 3.3 (`bench/parse_probe.py`):
  (a) `DagBag(folder)` once (the process's own import time is shown apart);
  (b) the DAG processor's loop done with Airflow's own code: the parent has Airflow imported and
  pre-imports each file's Airflow modules, then forks one child per file that runs
  `airflow.dag_processing.processor._parse_file` (stability check, `BundleDagBag`,
  `DagSerialization.to_dict` per DAG) and sends the `DagFileParsingResult` JSON back over a pipe,
  which the parent validates as the manager does. Files run one at a time, so seconds per loop
  are the loop's CPU cost (the real processor spreads them over `parsing_processes`); writing to
  the metadata DB is left out. The two folders alternate loop by loop in one parent. The parent
  is set up like the real DAG processor's (`airflow/dag_processing/manager.py`): the manager,
  processor and serialization modules imported, and `gc.freeze()` called before the first fork
  (`DagFileProcessorManager.before_run`), so no child's garbage collection walks the parent's
  heap; (c) task start: a forked child parses the one file that holds a model's task in the
  *most expensive* generated file, the one with the highest per-file CPU in (b) (not the one
  with the most tasks: a big DAG on a time schedule can be cheap), with `BundleDagBag` and the
  arguments `task_runner.parse` uses, and finds the task; the hand-written twin's file of the
  same name; cosmos's one DAG.
- **Per file** (layered layout): *exec* is a forked child compiling and executing the file's
  source as a module and nothing else, timed inside the child, in a parent with Airflow and the
  file's `airflow.*` modules imported (the floor any loader pays for the file); *DagBag* is a
  forked child running `DagBag(file)`, same parent; *loop* is the file's child CPU in (b);
  *task start* is (c) for a model task of that file. Each is measured against the file's
  **`schedule=None` twin** (`bench/references.py`: the `DAG(...)` call's `schedule=` value
  replaced by `None` with the `ast` module, everything else kept; so file / twin is what the
  schedule costs Airflow, whatever shape the generator writes it in) and against one cosmos
  `DbtDag` over the same manifest, measured the same way in the cosmos virtualenv in the same
  run. Generated files and twins alternate file by file in one probe process (in the loop,
  loop by loop). A forked parse
  over the time limit (`--child-timeout`, 600 s) is killed and shown as timed out.
- **cosmos**: one `DbtDag` over the same manifest, `LoadMode.DBT_MANIFEST`,
  `TestBehavior.BUILD` (one `dbt build` task per node, as dagfactory does),
  `AIRFLOW__COSMOS__ENABLE_ORJSON_PARSER=True`, `AIRFLOW__COSMOS__ENABLE_TELEMETRY=False`,
  installed by the bench in `.venv-bench-cosmos` (cosmos + apache-airflow==3.3.2 + dbt-core<1.12 +
  dbt-duckdb). Its ratios are measured against the generated files parsed by the same
  interpreter in the same run.
- **Push**: `dagfactory.publish.push(out, "s3://bench-dags/dags/", endpoint_url=...)` to a
  `moto_server` on 127.0.0.1 started and stopped by the bench; requests are counted on the wire
  by the counting proxy of `tests/s3servers.py` in front of it. First push into an empty bucket,
  then the same push again (nothing changed).
- Bytecode caches are on for every measured process (`PYTHONDONTWRITEBYTECODE` is removed from
  their environment): an installed package has its `.pyc` files, and without them a cold
  `import networkx` alone compiles for ~0.4 s.
"""


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _build_table(sizes: dict[str, Any]) -> list[str]:
    lines = [
        "| models | manifest | DAGs / tasks | build wall | floor wall | **wall ratio** | "
        "CPU ratio | build RSS | floor RSS | **RSS ratio** | floor, GC off |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, entry in sizes.items():
        b, g = entry["build"], entry["generated"]
        lines.append(
            f"| {int(size):,} | {b['manifest_mb']:.0f} MB | {g['dag_count']} / {g['task_count']:,} "
            f"| {b['build']['median_wall_s']:.2f} s | {b['floor']['median_wall_s']:.2f} s "
            f"| **{_f(b['wall_ratio'])}x** | {_f(b['cpu_ratio'])}x "
            f"| {b['build']['median_rss_mb']:.0f} MB | {b['floor']['median_rss_mb']:.0f} MB "
            f"| **{_f(b['rss_ratio'])}x** | {b['floor_gc_off']['median_wall_s']:.2f} s |"
        )
    return lines


def _parse_rows(name: str, p: dict[str, Any]) -> str:
    d, loop, start = p["dagbag"], p["loop"], p["taskstart"]
    return (
        f"| {name} | {loop['files']} | {loop['tasks']:,} "
        f"| {d['median_dagbag_cpu_s']:.2f} s ({d['median_dagbag_s']:.2f} s) "
        f"| {d['median_process_wall_s']:.1f} s "
        f"| {loop['median_cpu']:.2f} s ({loop['median']:.2f} s) "
        f"| {start['median_cpu'] * 1000:.0f} ms ({start['median'] * 1000:.0f} ms) "
        f"| {loop['import_errors']} |"
    )


def _parse_table(
    size: str, parse: dict[str, Any], names: list[str], ratios: dict, label: str
) -> list[str]:
    runs = (
        f"{len(parse[names[0]]['dagbag']['dagbag_s'])} DagBag runs, "
        f"{len(parse[names[0]]['loop']['loop_seconds'])} loops, "
        f"{len(parse[names[0]]['taskstart']['seconds'])} task starts each"
    )
    start = parse[names[0]]["taskstart"]
    costly = start.get("task_file") == "most expensive in (b)"
    where = f"; (c) in `{start['task'][0]}`, the most expensive file in (b)" if costly else ""
    lines = [
        f"**{int(size):,} models** ({runs}; CPU seconds, wall in parentheses{where})",
        "",
        "| files of | files | tasks | (a) DagBag | (a) whole process, wall | (b) per loop "
        "| (c) task start | import errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [_parse_rows(name, parse[name]) for name in names]
    lines.append(
        f"| **{label}** | | | **{_f(ratios['dagbag'])}x** ({_f(ratios['dagbag_wall'])}x) | "
        f"| **{_f(ratios['loop'])}x** ({_f(ratios['loop_wall'])}x) "
        f"| **{_f(ratios['taskstart'])}x** ({_f(ratios['taskstart_wall'])}x) | |"
    )
    return lines


def parse_ratios_inverse(ratios: dict[str, float | None]) -> dict[str, float | None]:
    """``b / a`` from ``a / b`` (results written before generated / cosmos was recorded)."""
    return {k: (round(1 / v, 3) if v else None) for k, v in ratios.items()}


def _secs(value: float | None, missing: str = "timed out") -> str:
    """CPU seconds as the tables show them; None is a measurement that timed out (or none)."""
    if value is None:
        return missing
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


LAYERED_LABELS = {
    "exec": "exec",
    "dagbag": "DagBag",
    "loop": "DAG-processor loop",
    "taskstart": "task start",
}


def _layered_section(results: dict[str, Any]) -> list[str]:
    """Issue #10: each file of the layered builds against its schedule=None twin and cosmos."""
    layered = results.get("layered") or {}
    if not layered:
        return []
    out = [
        "## Layered layout: each generated file against its `schedule=None` twin and cosmos",
        "",
    ]
    for size, entry in layered.items():
        rows = entry["files"]
        first = next(iter(rows.values()))
        runs = len(first["exec"]["samples_cpu_s"])
        runs_text = f"{runs} run" + ("s" if runs != 1 else "")
        cosmos = entry.get("cosmos", {})
        no_cosmos = "-" if "skipped" in cosmos else "timed out"
        against = (
            "cosmos measured the same way"
            if "skipped" not in cosmos
            else f"cosmos not measured: {cosmos['skipped']}"
        )
        out += [
            f"**{int(size):,} models**: {entry['generated']['dag_count']} DAGs, "
            f"{entry['generated']['task_count']:,} tasks; medians of {runs_text} of each probe, "
            f"CPU seconds; {against}; most expensive file (loop CPU): "
            f"`{entry['most_expensive_file']}`",
            "",
            "| file | tasks | schedule assets | in-DAG edges | measure | file "
            "| `schedule=None` twin | **file / twin** | cosmos | **file / cosmos** |",
            "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in rows.items():
            mark = " (most expensive)" if name == entry["most_expensive_file"] else ""
            for i, metric in enumerate(("exec", "dagbag", "loop", "taskstart")):
                m = row[metric]
                head = (
                    f"| `{name}`{mark} | {row['tasks']:,} | {row['schedule_assets']:,} "
                    f"| {row['in_dag_edges']:,} "
                    if i == 0
                    else "| | | | "
                )
                out.append(
                    f"{head}| {LAYERED_LABELS[metric]} | {_secs(m['cpu_s'])} "
                    f"| {_secs(m['twin_cpu_s'])} | **{_x(m['vs_twin'])}** "
                    f"| {_secs(m['cosmos_cpu_s'], no_cosmos)} | **{_x(m['vs_cosmos'])}** |"
                )
        folders = entry.get("folders", {})
        if folders:
            gen, twin = folders["generated"], folders["twin"]
            cosmos_folder = entry.get("cosmos_folder")
            whole = (
                f"Whole loop: generated {_secs(gen['median_cpu'])}, twin "
                f"{_secs(twin['median_cpu'])}"
            )
            if cosmos_folder:
                whole += f", cosmos {_secs(cosmos_folder['median_cpu'])}"
            out += ["", whole + " CPU per loop."]
        out.append("")
    out += [
        "The twin is the same file with its DAG's `schedule=` replaced by `None`: the same",
        "tasks, edges, docs and operators, so it is the floor Airflow sets for them, and",
        "file / twin is what the asset schedule costs. Airflow 3.3 hashes the DAG, schedule",
        "included, for every task named in every dependency call; a schedule of N `Asset`s that",
        "hashes each one (`json.dumps`) makes a file cost about tasks x N. *exec*: compile and run",
        "the file; *DagBag*: `DagBag(file)`; *loop*: the DAG processor's child for the file",
        "(parse + serialize); *task start*: what a worker parses before each task of that file.",
        "",
    ]
    return out


def write_markdown(results: dict[str, Any], path: Path) -> None:
    m = results["machine"]
    out = [
        "# Benchmarks",
        "",
        "Written by `bench/run.py` (numbers also in `bench/results.json`); do not edit by hand.",
        "Rerun with the command below and commit both files.",
        "",
        f"- **Command**: `{results['command']}` ({results['elapsed_s']:.0f} s end to end, "
        f"set-up included)",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, {m['os']}; "
        f"load average {m['load_average_at_start']:.1f} at start (shared machine: ratios of "
        "alternating runs are the numbers to trust, absolute times drift)",
        f"- **Software**: Python {m['python']}, Airflow {m['airflow']}, orjson {m['orjson']}, "
        f"networkx {m['networkx']}, dagfactory at {m['dagfactory_commit']}, {m['date']}",
    ]
    cosmos = results.get("cosmos", {})
    if cosmos.get("available"):
        out.append(f"- **cosmos**: astronomer-cosmos {cosmos['version']} in `.venv-bench-cosmos`")
    else:
        out.append(f"- **cosmos**: not measured: {cosmos.get('reason', 'not installed')}")
    done = results.get("done", {})
    issues = results.get("done_issues", {})
    out += ["", "## Done criteria (issues #7 and #10), this run", ""]
    for key, ok in sorted(done.items(), key=lambda kv: (issues.get(kv[0], ""), kv[0])):
        issue = f" ({issues[key]})" if issues.get(key) else ""
        out.append(f"- {'PASS' if ok else 'FAIL'}{issue}: `{key}`")
    informational = results.get("informational", {})
    if informational:
        out += ["", "Also measured, not a Done-means line:", ""]
        for key, entry in sorted(informational.items()):
            out.append(f"- {'yes' if entry['holds'] else 'no'}: `{key}` ({entry['why']})")

    out += ["", "## Build: `dagfactory build` against `orjson.loads` of the same file", ""]
    if results["sizes"]:
        out += ["dbt-groups layout:", ""]
        out += _build_table(results["sizes"])
        out.append("")
    if results.get("layered"):
        out += ["layered layout, `--group-by folder`:", ""]
        out += _build_table(results["layered"])
        out.append("")
    out += [
        "Medians of alternating runs. The floor is the least any tool that reads the manifest",
        "with orjson pays: start Python, read the file, parse it. A ratio of 1.3x means the",
        "whole build (graph, grouping, routing, rendering, writing every file) costs 30% on",
        "top of merely parsing the JSON. *floor, GC off*: the same parse with Python's cyclic",
        "garbage collector disabled, as dagfactory does while it loads (GC passes over millions",
        "of fresh, acyclic JSON objects are most of a plain parse's time). On small manifests",
        "the ratio is large because the build's fixed cost (interpreter start and imports,",
        "~0.1 s of CPU) is as big as the whole floor there.",
        "",
    ]
    out += _layered_section(results)
    if any("parse" in entry for entry in results["sizes"].values()):
        out += _dbt_groups_parse_sections(results, cosmos)
    out += _calibration_and_push(results)
    out += _dbt_task_section(DBT_TASK_RESULTS)
    out += [METHOD]
    out += [PERF_NOTES] if PERF_NOTES else []
    path.write_text("\n".join(out).rstrip() + "\n", encoding="utf-8")


def _dbt_groups_parse_sections(results: dict[str, Any], cosmos: dict[str, Any]) -> list[str]:
    """Generated against hand-written files, and against cosmos (dbt-groups layout)."""
    out = [
        "## Airflow parse cost: generated files against hand-written ones (dbt-groups layout)",
        "",
    ]
    for size, entry in results["sizes"].items():
        if "parse" in entry:
            out += _parse_table(
                size,
                entry["parse"],
                ["generated", "handwritten"],
                entry["parse"]["ratios_vs_handwritten"],
                "generated / hand-written",
            )
            out.append("")
    out += [
        "(a) is what `airflow dags list` or a DAG test suite pays; (b) is what the DAG processor",
        "pays for these files on every parse loop (default: every 30 s per file); (c) is the",
        "parse a worker does before every task it starts. The generated files hold the same",
        "tasks and edges as the hand-written ones plus docs, owners, tags, inlets and the",
        "`max_active_runs` guard. The hand-written files write an asset schedule as the plain",
        "`[Asset(...), ...]` list Airflow documents; where the generated files write it in a",
        "shape that caches its hash (issue #10), that difference is in the ratio too, and on",
        "DAGs scheduled on many assets it outweighs the extras.",
        "",
        "## cosmos `DbtDag` over the same manifest",
        "",
    ]
    any_cosmos = False
    for size, entry in results["sizes"].items():
        if "cosmos" in entry:
            any_cosmos = True
            ratios = entry["cosmos"].get("ratios_generated_vs_cosmos") or parse_ratios_inverse(
                entry["cosmos"]["ratios_cosmos_vs_generated"]
            )
            out += _parse_table(
                size, entry["cosmos"], ["generated", "cosmos"], ratios, "generated / cosmos"
            )
            out.append("")
    if any_cosmos:
        out += [
            "Both measured by the cosmos virtualenv's interpreter in the same run (dbt-groups",
            "layout). cosmos renders the whole project from the manifest in every parse, so a",
            "worker pays for the whole project at every task start (c), where a generated file",
            "holds one group. Per parse loop (a, b) the comparison turns on Airflow, not on",
            "rendering: the one cosmos DAG runs on a time schedule, while each generated DAG is",
            "scheduled on its upstream assets, and Airflow 3.3 hashes the DAG, schedule included,",
            "on every dependency call (see the profiling notes). Below 1x, the generated files",
            "are cheaper than cosmos.",
            "",
        ]
    else:
        reason = cosmos.get("reason", "not in this run's plan")
        out += [f"Not measured in this run: {reason}.", ""]
    return out


def _estimates_vs_measured(results: dict[str, Any]) -> list[str]:
    """Per build: the loop CPU ``dagfactory build`` estimated against the measured one."""
    pairs: list[tuple[str, str, dict[str, Any], float]] = []
    for size, e in results["sizes"].items():
        if "parse" in e:
            pairs.append(("dbt-groups", size, e, e["parse"]["generated"]["loop"]["median_cpu"]))
    for size, e in results.get("layered", {}).items():
        if "folders" in e:
            pairs.append(("layered", size, e, e["folders"]["generated"]["median_cpu"]))
    return [
        f"{int(size):,} models ({layout}) {e['generated']['estimated_parse_loop_seconds']:.1f} s "
        f"vs {measured:.1f} s"
        for layout, size, e, measured in pairs
    ]


def _calibration_and_push(results: dict[str, Any]) -> list[str]:
    """The fitted parse-loop estimate and the push counts."""
    out: list[str] = []
    calibration = results.get("parse_calibration")
    if calibration and "per_dependency_s" in calibration:
        estimates = _estimates_vs_measured(results)
        out += [
            "## The parse-loop estimate `dagfactory build` prints",
            "",
            "`dagfactory build` estimates each file's parse as `PARSE_SECONDS_PER_FILE` + tasks x",
            "`PARSE_SECONDS_PER_TASK` + dependency names x `PARSE_SECONDS_PER_DEPENDENCY`",
            "(`dagfactory/costs.py`; dependency names: each `set_upstream` call's task plus its",
            "parents, one DAG hash each), sums it into `estimated_parse_loop_seconds` and warns",
            "about files over `parse_budget_seconds`.",
            f"A least-squares fit over the {calibration['files']} files of this run's loops (the",
            "generated folders of both layouts plus 20 one-task files; CPU seconds per file in",
            "the forked child, plus the parent's share per file) gives:",
            "",
            f"- per file **{calibration['per_file_s'] * 1000:.0f} ms**, per task "
            f"**{calibration['per_task_s'] * 1000:.2f} ms**, per dependency name "
            f"**{calibration['per_dependency_s'] * 1e6:.1f} us**",
            f"- all files measured {calibration['total_cpu_s']:.1f} s, fitted "
            f"{calibration['total_fitted_s']:.1f} s; worst single file off by "
            f"{calibration['worst_file_error_s']:.2f} s",
            "",
            "Estimate printed by these builds against the measured loop CPU: "
            + ", ".join(estimates)
            + ".",
            "",
            "The constants in `costs.py` are these fits, rounded (CPU seconds: the DAG processor",
            "spreads the loop over `parsing_processes`, so wall time per loop is about this",
            "divided by the processes it has).",
            "",
        ]
    push = results.get("push")
    if push:
        out += ["## Push to a local S3 server (moto_server), requests counted at the server", ""]
        if "skipped" in push:
            out.append(f"Pending: {push['skipped']}")
        else:
            out += [
                f"{push['files']} files of the {int(push['size']):,}-model build "
                f"({push.get('layout', 'dbt-groups')} layout).",
                "",
                "| push | PUTs | all requests | by method | seconds |",
                "|---|---:|---:|---|---:|",
            ]
            for step, label in (("first", "first (empty bucket)"), ("noop", "again, no change")):
                s = push[step]
                methods = ", ".join(f"{k} {v}" for k, v in s["by_method"].items() if v)
                out.append(
                    f"| {label} | **{s['puts_at_server']}** | {s['requests_at_server']} "
                    f"| {methods} | {s['seconds']:.2f} |"
                )
            out += [
                "",
                "A no-op push lists the prefix and reads the state object, compares MD5s with the",
                "listed ETags and writes nothing.",
            ]
        out.append("")
    return out


PERF_NOTES = """\
## Profiling notes (why the build is where it is)

Profiled with `cProfile` and per-stage CPU timers (`time.process_time`) on the 5k-model manifest
(no extra tools installed). CPU seconds per stage, measured once while making these changes:

| stage | first profile | now |
|---|---:|---:|
| imports | 0.17 | 0.12 |
| load: `orjson.loads` + node extraction | 0.95 | 0.42 (0.23 of it the parse) |
| graph / grouping / routing | 0.19 | 0.16 |
| assemble specs | 0.30 | 0.06 |
| render 54 files / write | 0.18 / 0.02 | 0.17 / 0.01 |
| **whole process** (floor: 0.78) | **~1.8** | **~1.0** |

What changed, and why:
- **Garbage collection.** `orjson.loads` of a 47 MB manifest makes ~1.5 M objects. The GC was
  paused only around the parse, so its next passes walked all of them again while nodes were
  extracted (~0.5 s). `load_manifest` now keeps it paused until the raw JSON is freed, and the
  CLI runs with it off (one short batch over acyclic data). This is also why the floor with the
  GC off is so much lower than the plain floor.
- **Bytecode.** Without `.pyc` files (`PYTHONDONTWRITEBYTECODE=1` in some shells) every run
  compiles networkx, click and jinja2 again: +0.4 s. Installed packages have them; the bench
  measures that case.
- **Per-task path work** (already fixed upstream while this ran): the default dbt project dir
  was resolved against the file system once per task (0.2 s at 5k); it is now a constant.
- Left alone on purpose: node extraction (~10 us per node, 17 dict lookups: the rest of a
  rewrite would save ~0.04 s), template compilation (once per process already), writing (10 ms).

- **networkx** (done): its import, with a scan of every installed package's entry points for
  backends, was ~0.15-0.2 s of every build. The graph stage now sorts and checks acyclicity
  with plain adjacency dicts and imports networkx only to name a cycle or merge circular
  groups (layered 5k: 1.84x -> 1.60x the floor, min of 7 alternating fresh processes).

- **`compile()` of each rendered file** (done): it was the largest cost after the parse,
  ~0.24-0.29 s for the layered 5k build's four 0.8-1.1 MB files (~1-2 us per token, whatever
  the statement; `ast.parse` costs the same, the parser is the cost). It exists so that a
  template laying out something that is not Python is a `RenderError` (issue #12). It now
  runs when a user template (`--templates`) laid the file out; the bundled template is held
  to valid Python by the tests (hostile-text property tests compile its output; every sample
  and corpus build is parsed by real Airflow). Measured on the way, and not taken: inlet and
  schedule lists as one call of URI strings (-19% of compile), a table of constant rows with
  one loop (-55%, but the file stops being one explicit operator call per task, which
  `dagfactory check` and readers rely on), module-level `Asset` variables (+24%: more names),
  rendering in forked processes (copy-on-write faults over the 350 MB heap: +0.1 s CPU, and
  slower on a busy 2-core machine).
- **Freeing the raw JSON** (done): the ~1.5 M objects of a 47 MB manifest took ~0.07-0.09 s to
  free one by one when `load_manifest` returned. The console script, which ends with
  `os._exit` anyway, parks them until the end instead (`keep_raw_json_until_exit`); callers
  from Python still get them freed. Peak memory stays within ~1.05x the floor's.
- **Node extraction** (done): ~14 us per node; the six optional text fields, the tags and the
  id lists are now type-tested at C level in one pass each (-7%), and each `Node`'s slots are
  set directly (1.8 us) instead of through the frozen dataclass's `__init__` (4.4 us: it sets
  each field through `object.__setattr__`). The later stages' frozen dataclasses cost ~20 ms
  at 5k the same way; left as they are.

Open, measured:
- **Airflow hashes the DAG on every `>>`.** `_set_relatives` puts both tasks' DAG in a set; a
  DAG's `__hash__` hashes its `schedule`, and each schedule `Asset` hashes by `json.dumps`. So a
  file whose schedule is a plain list costs about (in-DAG edges x schedule assets) x ~40 us on
  top of its tasks: on the 1k build, 92% of DagBag time (4.8 s CPU; 0.37 s with
  `schedule=None`), and ~60 s to exec for a 1,400-task DAG on ~900 assets (the layered
  layout's big DAGs, issue #10). The layered section measures each generated file against its
  `schedule=None` twin, so whatever shape the generator writes the schedule in, file / twin
  is what that shape costs.
"""


#: the two commands on slices: in the task's own process, and forked from the worker's
#: dbt server (what tasks run by default)
_ON_SLICES = (
    ("s", "slices", "on slices, own process"),
    ("w", "server", "on slices, forked from the worker's dbt server (the default)"),
)


def _issue_11_verdicts(sizes: dict[str, Any]) -> list[str]:
    """Issue #11's Done-means line per project shape and command on slices, from the
    unrounded ratios."""
    out = []
    for size, entry in sizes.items():
        d = entry["derived"]
        for key, label, what in _ON_SLICES:
            verdict = d.get(f"issue_11_{label}")
            if not verdict:
                continue
            out.append(_verdict_line(entry, size, key, label, what, verdict))
    if out:
        out = [
            "Issue #11's Done-means line (naive `dbt build --select` against the generated",
            "command on slices, same run, medians; ratios unrounded). Memory of w is what the",
            "task adds to the worker: its process's peak RSS + its child's own pages:",
            "",
            *out,
            "",
        ]
    return out


def _verdict_line(
    entry: dict[str, Any], size: str, key: str, label: str, what: str, verdict: dict[str, Any]
) -> str:
    d, v = entry["derived"], entry["variants"]
    shape = size.split("-", 1)[1] if "-" in size else "layered"
    t, ok = verdict["thresholds"], verdict["checks"]

    def part(name: str, value: float, op: str, limit: float, holds: bool) -> str:
        return f"{name} {value:.4f}x {op} {limit} ({'holds' if holds else 'fails'})"

    parts = [
        part(
            f"naive / {key} CPU",
            d[f"naive_over_{label}_cpu_exact"],
            ">=",
            t["naive_over_slices_cpu"],
            ok["naive_over_slices_cpu"],
        ),
        part(
            f"naive / {key} memory",
            d[f"naive_over_{label}_rss_exact"],
            ">=",
            t["naive_over_slices_rss"],
            ok["naive_over_slices_rss"],
        ),
        part(
            f"{key} / `dbt ls --no-write-json` CPU",
            d[f"{label}_over_ls_no_write_json_cpu_exact"],
            "<=",
            t["slices_over_ls"],
            ok["slices_over_ls"],
        ),
    ]
    return (
        f"- **Issue #11 at {entry['models']:,} models, {shape}, {what}: "
        f"{'PASS' if verdict['pass'] else 'FAIL'}**: "
        + "; ".join(parts)
        + f" ({key} {v[key]['cpu_s']:.2f} s / {v[key]['max_rss_mb']:.0f} MB, a "
        f"{v['a']['cpu_s']:.2f} s / {v['a']['max_rss_mb']:.0f} MB, j {v['j']['cpu_s']:.2f} s)"
    )


def _server_paragraph(entry: dict[str, Any]) -> list[str]:
    """What variant w's number is made of: the task's process, the child, the server."""
    d, w = entry["derived"], entry["variants"].get("w")
    if not w or "child_own_mb" not in w:
        return []
    server = w.get("server", {})
    ready, after = server.get("when_ready", {}), server.get("after_rounds", {})
    return [
        f"Forked from the worker's dbt server (w): naive / w **{d['naive_over_server_cpu']}x "
        f"CPU, {d['naive_over_server_rss']}x memory**; w / `dbt ls --no-write-json` "
        f"{d['server_over_ls_no_write_json_cpu']}x CPU. Of w's {w['cpu_s']:.2f} s, the task's "
        f"own process (`run.py` asking the server) took {w['task_process_cpu_s']:.2f} s and the "
        f"child {w['child_cpu_s']:.2f} s; of its {w['max_rss_mb']:.0f} MB, the task's process "
        f"peaked at {w['task_process_rss_mb']:.0f} MB and the child held {w['child_own_mb']:.0f} "
        f"MB of its own (its RSS, pages shared with the server included, peaked at "
        f"{w['child_rss_mb']:.0f} MB). The server, once per worker: "
        f"{ready.get('cpu_s', '?')} s CPU to start (import and warm-up), "
        f"{after.get('rss_mb', '?')} MB RSS ({after.get('pss_mb', '?')} MB PSS) after the "
        f"rounds. Every model once a day through the server: "
        f"{d['daily_worker_cpu_hours_server']} worker CPU hours.",
        "",
    ]


def _dbt_task_section(path: Path) -> list[str]:
    """One dbt task's CPU and memory, naive against the generated command (issue #11)."""
    if not path.is_file():
        return ["", "## One dbt task (issue #11)", "", "Not measured: no bench/dbt_task.json.", ""]
    data = json.loads(path.read_text())
    deep = path.with_name(DBT_TASK_DEEP_RESULTS.name)
    if deep.is_file():
        data["sizes"].update(json.loads(deep.read_text())["sizes"])
    out = [
        "",
        "## One dbt task: what each generated task costs the worker (issue #11)",
        "",
        f"`bench/dbt_task.py` ({data['dbt_version']}, dbt-duckdb), on the runnable project of",
        "`sample_manifests/synth_project.py` (layered, groups, one- and two-parent tests). One",
        "mid-graph model with its two tests; medians of alternating rounds; CPU of the whole dbt",
        "process and its peak RSS, as a small launcher's `os.wait4` sees them (`bench/peak.py`).",
        "*parse* is what dbt's log says it did. *s generated_slices* is the generated command",
        "with `dagfactory dbt-slices` written after the set-up parse, in the task's own process:",
        "`<slices>/run.py dbt build ...` + d's flags. *w generated_slices_server* is what tasks",
        "run by default: the same behind `run.py --server=600`, forked from the worker's dbt",
        "server (started before the rounds); its CPU is the task's process + the child, its",
        "memory the task's peak RSS + the child's own pages. Every s and w run is checked to",
        "have said `dagfactory: dbt runs on the slice` and to have started the same nodes as a.",
        "Made by `bench/dbt_task.py --sizes 500,2000 --out bench/dbt_task.json` (`make bench`)",
        "and `bench/dbt_task.py --sizes 2000 --shapes deep --out bench/dbt_task_deep.json`.",
        "",
    ]
    out += _issue_11_verdicts(data["sizes"])
    for size, entry in data["sizes"].items():
        out += [
            f"{size} models, node `{entry['node']['unique_id']}` "
            f"(depth {entry['node']['depth']}, {entry['node']['ancestors']} ancestors):",
            "",
            "| variant | CPU s | peak RSS MB | parse |",
            "|---|---:|---:|---|",
        ]
        for key, v in entry["variants"].items():
            out.append(
                f"| {key} {v['name']} | {v['cpu_s']:.2f} | {v['max_rss_mb']:.0f} | "
                f"{'/'.join(v['parse'])} |"
            )
        d = entry["derived"]
        out += [
            "",
            f"naive / generated: **{d['naive_over_generated_cpu']}x CPU, "
            f"{d['naive_over_generated_rss']}x peak RSS**; generated / `dbt ls`: "
            f"{d['generated_over_ls_cpu']}x (/ `dbt ls --no-write-json`: "
            f"{d['generated_over_ls_no_write_json_cpu']}x); naive / `dbt ls --no-write-json`, "
            f"the most any command line of one dbt process could save: "
            f"{d.get('naive_over_ls_no_write_json_cpu', '?')}x CPU, "
            f"{d.get('naive_over_ls_no_write_json_rss', '?')}x peak RSS; importing dbt and the "
            f"adapter alone: {d.get('import_floor_cpu_s', '?')} s. Extra CPU per task: no parse state "
            f"+{d['full_parse_extra_cpu_s']} s, a templated var +{d['vars_changed_extra_cpu_s']} s, "
            f"an env var read by one model +{d['env_var_changed_extra_cpu_s']} s, no bytecode "
            f"+{d['no_bytecode_extra_cpu_s']} s. Every model once a day, in worker CPU hours: "
            f"naive {d['daily_worker_cpu_hours_naive']}, generated "
            f"{d['daily_worker_cpu_hours_generated']}, without the parse state "
            f"{d['daily_worker_cpu_hours_full_parse']}.",
            "",
        ]
        if "naive_over_slices_cpu" in d:
            slices = entry["setup"].get("slices", {})
            out += [
                f"On slices (s): naive / slices **{d['naive_over_slices_cpu']}x CPU, "
                f"{d['naive_over_slices_rss']}x peak RSS**; generated / slices "
                f"{d['generated_over_slices_cpu']}x CPU, {d['generated_over_slices_rss']}x peak "
                f"RSS; slices / `dbt ls --no-write-json` {d['slices_over_ls_no_write_json_cpu']}x "
                f"CPU, {d['slices_over_ls_no_write_json_rss']}x peak RSS. Every model once a day "
                f"on slices: {d['daily_worker_cpu_hours_slices']} worker CPU hours. Writing the "
                f"slices ({slices.get('slices', '?')} files, "
                f"{slices.get('bytes', 0) / 1e6:.1f} MB) took {slices.get('wall_s', '?')} s "
                f"after the set-up parse; {slices.get('plain_dbt_tasks', '?')} tasks left to "
                "plain dbt.",
                "",
            ]
        out += _server_paragraph(entry)
    state = [e["shared_state"]["identical_after_all_runs"] for e in data["sizes"].values()]
    out.append(f"Shared `partial_parse.msgpack` byte-identical after every run: {all(state)}.")
    out.append("")
    return out
