"""The test pyramid holds: unit tests stay in-process, and every test file can be imported.

pytest imports test files by basename (``pythonpath = ["tests"]``, default import mode), so
two files with one name in different layers break collection of the whole suite.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest
from tests_paths import REPO

TESTS = REPO / "tests"
UNIT = TESTS / "unit"
#: what a unit test must not import: it would start a process, load Airflow or run dbt
NOT_IN_UNIT = ("subprocess", "airflow", "dbt", "multiprocessing", "boto3", "moto")


def _test_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "golden" not in p.parts)


def test_test_file_basenames_are_unique_across_the_layers():
    counts = Counter(p.name for p in _test_files())
    assert [name for name, n in counts.items() if n > 1] == []


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(UNIT.glob("test_*.py")), ids=lambda p: p.name)
def test_a_unit_test_imports_no_process_airflow_dbt_or_s3_client(path: Path):
    assert sorted(_imported_roots(path) & set(NOT_IN_UNIT)) == []
