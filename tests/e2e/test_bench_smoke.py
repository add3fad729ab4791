"""The benchmark runs end to end and writes every result it promises (numbers not checked),
and the inputs it measures are what they claim to be.

Performance is never asserted here: this only proves ``bench/run.py`` still works on a tiny
synthetic project, so ``make bench`` does not rot between the runs that refresh BENCHMARKS.md.
The synthetic manifests' layouts and the ``schedule=None`` twin are checked directly (fast).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUDGET_SECONDS = 900

F = TypeVar("F", bound=Callable[..., Any])


def _bench(test: F) -> F:
    """The end-to-end tests: slow, need Airflow and an S3 server (the push step)."""
    for mark in (pytest.mark.slow, pytest.mark.airflow, pytest.mark.s3server):
        test = mark(test)
    return test


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def synth() -> ModuleType:
    return _load("bench_synth", ROOT / "sample_manifests" / "synth.py")


@pytest.fixture(scope="module")
def references() -> ModuleType:
    return _load("bench_references", ROOT / "bench" / "references.py")


# ------------------------------------------------------------------------- synth layouts

#: sha256 of ``synth.py --models 300`` (default layout, seed 0) and of its run_results, as
#: written before ``--layout`` existed: the dbt-groups benchmark numbers stay comparable
#: across runs only while its manifests stay byte-identical. Update both digests only when
#: the template (``sample_manifests/shop/manifest.json``) is regenerated on purpose.
DEFAULT_300_SHA256 = "01311ec8e15fcc1e82904249ca35e045fdb4c5255dec98fe52b3bc58f1ce1780"
DEFAULT_300_RUN_RESULTS_SHA256 = "7bc122f6d37957a286df2d77a89b5cdcb3abd3b184ab52660c31445700b34b9d"


def test_the_default_layout_writes_the_same_bytes_as_before_layouts_existed(synth):
    s = synth.Synth(300)
    manifest = s.build()
    assert hashlib.sha256(synth.dumps(manifest)).hexdigest() == DEFAULT_300_SHA256
    run_results = synth.dumps(s.run_results(manifest))
    assert hashlib.sha256(run_results).hexdigest() == DEFAULT_300_RUN_RESULTS_SHA256
    layout_default = synth.dumps(synth.build_manifest(300, layout="groups"))
    assert hashlib.sha256(layout_default).hexdigest() == DEFAULT_300_SHA256


@pytest.fixture(scope="module")
def layered_1k(synth) -> tuple[dict[str, Any], dict[str, Any]]:
    s = synth.Synth(1000, seed=3, layout="layered")
    manifest = s.build()
    return json.loads(synth.dumps(manifest)), json.loads(synth.dumps(s.run_results(manifest)))


def test_layered_layout_is_dbts_recommended_folders_without_groups(layered_1k):
    manifest, _ = layered_1k
    models = {k: n for k, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    assert len(models) == 1000
    assert manifest["groups"] == {} and manifest["group_map"] == {}
    assert all(n["group"] is None and n["config"]["group"] is None for n in models.values())
    layers = Counter(n["fqn"][1] for n in models.values())
    assert set(layers) == {"staging", "intermediate", "marts"}
    assert 270 <= layers["staging"] <= 330 and 270 <= layers["intermediate"] <= 330
    assert 370 <= layers["marts"] <= 430
    prefix = {"staging": "stg_", "intermediate": "int_", "marts": ("fct_", "dim_")}
    for n in models.values():
        project, layer, folder, name = n["fqn"][:4]
        assert project == "synth" and name == n["name"] and name.startswith(prefix[layer])
        assert n["original_file_path"].startswith(f"models/{layer}/{folder}/")
    assert all(n["sources"] for n in models.values() if n["fqn"][1] == "staging")
    ephemeral = sum(n["config"]["materialized"] == "ephemeral" for n in models.values())
    assert 15 <= ephemeral <= 50
    assert any(n["version"] == 2 for n in models.values())


def test_layered_refs_flow_staging_to_intermediate_to_marts(layered_1k):
    manifest, _ = layered_1k
    nodes = manifest["nodes"]

    def layer(uid: str) -> str:
        node = nodes.get(uid)
        if node is None or node["resource_type"] != "model":
            return uid.split(".")[0]  # source, seed, snapshot
        return node["fqn"][1]

    allowed = {
        "staging": {"source", "seed"},
        "intermediate": {"staging", "intermediate", "snapshot"},
        "marts": {"intermediate", "marts", "staging", "seed"},
    }
    seen: dict[str, set[str]] = {name: set() for name in allowed}
    for uid, node in nodes.items():
        if node["resource_type"] == "model":
            parents = {layer(p) for p in node["depends_on"]["nodes"]}
            assert parents <= allowed[layer(uid)], (uid, parents)
            seen[layer(uid)] |= parents
    assert seen == allowed  # every allowed kind of ref occurs
    known = set(nodes) | set(manifest["sources"]) | set(manifest["exposures"])
    for uid, parents in manifest["parent_map"].items():
        assert all(p in known and uid in manifest["child_map"][p] for p in parents)
    models = [n for n in nodes.values() if n["resource_type"] == "model"]
    tests = [n for n in nodes.values() if n["resource_type"] == "test"]
    assert 1.9 <= len(tests) / len(models) <= 2.6  # model tests plus a test per source table
    assert sum(len(t["depends_on"]["nodes"]) == 2 for t in tests) >= 20
    assert manifest["exposures"] and manifest["disabled"]


def test_layered_run_results_cover_every_executed_node(layered_1k):
    manifest, rr = layered_1k
    done = {r["unique_id"] for r in rr["results"]}
    runnable = {
        uid
        for uid, n in manifest["nodes"].items()
        if n["resource_type"] in ("model", "seed", "snapshot", "test")
        and n["config"].get("materialized") != "ephemeral"
    }
    assert done == runnable


def test_layered_is_deterministic_and_differs_from_the_default(synth):
    a = synth.dumps(synth.build_manifest(200, seed=5, layout="layered"))
    assert a == synth.dumps(synth.build_manifest(200, seed=5, layout="layered"))
    assert a != synth.dumps(synth.build_manifest(200, seed=5))
    with pytest.raises(ValueError, match="--layout"):
        synth.Synth(200, layout="flat")


@pytest.mark.slow
def test_layered_5k_folder_grouping_gives_a_few_big_dags(synth, tmp_path):
    """Issue #10's worst case: dagfactory's default (folder) grouping of the layered 5k
    manifest gives 4 DAGs, the marts one with 1,400+ tasks on 900+ upstream-model assets."""
    from dagfactory import generate, load_config

    path = tmp_path / "manifest.json"
    path.write_bytes(synth.dumps(synth.build_manifest(5000, layout="layered")))
    result = generate(path, load_config(None, {"routing.force": "celery"}))  # as the bench
    assert result.group_by == "folder"
    dags = {dag.dag_id: dag for dag in result.dags}
    assert sorted(dags) == [f"synth__{g}" for g in ("intermediate", "marts", "seeds", "staging")]
    marts = dags["synth__marts"]
    assert len(marts.tasks) >= 1400 and len(marts.schedule_assets) >= 900


# ------------------------------------------------------------------- schedule=None twin

GENERATED_SHAPES = {
    "list": "schedule=[Asset('x-dbt://p/a'), Asset('x-dbt://p/b')]",
    "tuple subclass": "schedule=_AssetList((Asset('x-dbt://p/a'), Asset('x-dbt://p/b')))",
    "cron": "schedule='@daily'",
    "none given": "",
}


@pytest.mark.parametrize("schedule", GENERATED_SHAPES.values(), ids=GENERATED_SHAPES.keys())
def test_the_twin_sets_schedule_none_and_keeps_everything_else(references, schedule):
    source = f"""
from airflow.sdk import DAG, Asset

class _AssetList(tuple):
    pass

def build_dag():
    with DAG(dag_id='d', {schedule}, max_active_runs=1, doc_md='x') as dag:
        t = Op(task_id='t', outlets=[Asset('x-dbt://p/t')])
    return dag
"""
    twin = ast.parse(references.schedule_none_source(source.replace(", ,", ",")))
    calls = [n for n in ast.walk(twin) if isinstance(n, ast.Call) and ast.unparse(n.func) == "DAG"]
    keywords = {k.arg: ast.unparse(k.value) for k in calls[0].keywords}
    assert len(calls) == 1
    assert keywords == {
        "dag_id": "'d'",
        "schedule": "None",
        "max_active_runs": "1",
        "doc_md": "'x'",
    }
    assert "Op(task_id='t', outlets=[Asset('x-dbt://p/t')])" in ast.unparse(twin)
    assert any(isinstance(n, ast.ClassDef) for n in twin.body)


def test_the_twin_refuses_a_file_without_a_dag_call(references):
    with pytest.raises(ValueError, match="no DAG"):
        references.schedule_none_source("x = 1\n")


# -------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory) -> tuple[dict, str]:
    work = tmp_path_factory.mktemp("bench")
    results, markdown = work / "results.json", work / "BENCHMARKS.md"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--sizes",
            "60",
            "--no-cosmos",
            "--work",
            str(work),
            "--results",
            str(results),
            "--markdown",
            str(markdown),
        ],
        check=True,
        cwd=ROOT,
        timeout=BUDGET_SECONDS,
    )
    return json.loads(results.read_text()), markdown.read_text()


@_bench
def test_results_hold_build_parse_push_and_done_sections(bench_run):
    results, _ = bench_run
    assert {
        "command",
        "machine",
        "sizes",
        "layered",
        "cosmos",
        "push",
        "done",
        "done_issues",
        "parse_calibration",
    } <= set(results)
    size = results["sizes"]["60"]
    assert {"build", "generated", "parse"} <= set(size)
    assert {"wall_ratio", "cpu_ratio", "rss_ratio", "build", "floor"} <= set(size["build"])
    assert {"dagbag", "loop", "taskstart", "dagbag_wall", "loop_wall", "taskstart_wall"} == set(
        size["parse"]["ratios_vs_handwritten"]
    )
    assert set(results["done"]) == set(results["done_issues"])


@_bench
def test_generated_and_handwritten_folders_parse_to_the_same_dags_and_tasks(bench_run):
    results, _ = bench_run
    parse = results["sizes"]["60"]["parse"]
    generated, handwritten = parse["generated"]["loop"], parse["handwritten"]["loop"]
    assert generated["import_errors"] == handwritten["import_errors"] == 0
    assert (generated["files"], generated["dags"], generated["tasks"]) == (
        handwritten["files"],
        handwritten["dags"],
        handwritten["tasks"],
    )
    assert generated["tasks"] == results["sizes"]["60"]["generated"]["task_count"]
    assert parse["generated"]["taskstart"]["found"] and parse["handwritten"]["taskstart"]["found"]
    # task start runs on the file that cost the most in the loop, not the biggest one
    costly = max(generated["file_cpu_medians"], key=generated["file_cpu_medians"].get)
    assert parse["generated"]["taskstart"]["task"][0] == costly
    assert "gc.freeze" in generated["parent_setup"]


@_bench
def test_layered_files_are_measured_against_their_schedule_none_twin(bench_run):
    results, markdown = bench_run
    layered = results["layered"]["60"]
    assert layered["generated"]["dag_count"] == len(layered["files"]) == 4
    assert layered["most_expensive_file"] in layered["files"]
    for name, row in layered["files"].items():
        for metric in ("exec", "dagbag", "loop", "taskstart"):
            assert row[metric]["cpu_s"] and row[metric]["twin_cpu_s"], (name, metric)
            assert row[metric]["vs_twin"] is not None and row[metric]["timed_out"] == 0
        assert row["dagbag"]["import_errors"] == row["dagbag"]["twin_import_errors"] == 0
        assert row["exec"]["failed"] == row["dagbag"]["failed"] == 0
        assert row["taskstart"]["found"] and row["taskstart"]["twin_found"]
    folders = layered["folders"]
    assert folders["generated"]["tasks"] == folders["twin"]["tasks"] > 0
    assert folders["generated"]["import_errors"] == folders["twin"]["import_errors"] == 0
    assert "## Layered layout" in markdown and "`schedule=None` twin" in markdown


@_bench
def test_a_second_push_of_the_same_files_is_counted_at_the_server(bench_run):
    results, _ = bench_run
    push = results["push"]
    assert push["first"]["puts_at_server"] >= push["files"]
    assert "puts_at_server" in push["noop"]


@_bench
def test_the_markdown_report_names_its_command_and_the_skipped_cosmos(bench_run):
    _, markdown = bench_run
    assert "BENCH_ARGS=" in markdown or "bench/run.py" in markdown
    assert "cosmos**: not measured: --no-cosmos" in markdown
