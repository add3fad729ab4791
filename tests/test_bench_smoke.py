"""The benchmark runs end to end and writes every result it promises (numbers not checked).

Performance is never asserted here: this only proves ``bench/run.py`` still works on a tiny
synthetic project, so ``make bench`` does not rot between the runs that refresh BENCHMARKS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = 600

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.s3server]


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


def test_results_hold_build_parse_push_and_done_sections(bench_run):
    results, _ = bench_run
    assert {"command", "machine", "sizes", "cosmos", "push", "done", "parse_calibration"} <= set(
        results
    )
    size = results["sizes"]["60"]
    assert {"build", "generated", "parse"} <= set(size)
    assert {"wall_ratio", "cpu_ratio", "rss_ratio", "build", "floor"} <= set(size["build"])
    assert {"dagbag", "loop", "taskstart", "dagbag_wall", "loop_wall", "taskstart_wall"} == set(
        size["parse"]["ratios_vs_handwritten"]
    )


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


def test_a_second_push_of_the_same_files_is_counted_at_the_server(bench_run):
    results, _ = bench_run
    push = results["push"]
    assert push["first"]["puts_at_server"] >= push["files"]
    assert "puts_at_server" in push["noop"]


def test_the_markdown_report_names_its_command_and_the_skipped_cosmos(bench_run):
    _, markdown = bench_run
    assert "BENCH_ARGS=" in markdown or "bench/run.py" in markdown
    assert "cosmos**: not measured: --no-cosmos" in markdown
