"""Shared fixtures: paths to the sample dbt projects, builds of them, and real Airflow."""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import stop_dbt_servers

pytest_plugins = ["s3servers"]  # push tests: real S3 servers, counting proxy, build folders

# Airflow reads its configuration at import time: point it at a throwaway home first,
# removed when the test run ends (every run used to leave one in /tmp).
if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="dagfactory-airflow-home-")
    atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
# Tasks on dbt slices start a dbt server per worker (run.py --server), with its socket under
# XDG_RUNTIME_DIR: give the run its own, and stop the servers after each test module.
RUNTIME_DIR = Path(tempfile.mkdtemp(prefix="dagfactory-runtime-"))
os.environ["XDG_RUNTIME_DIR"] = str(RUNTIME_DIR)
atexit.register(shutil.rmtree, RUNTIME_DIR, ignore_errors=True)
atexit.register(stop_dbt_servers)  # runs first: atexit is last in, first out
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")


@pytest.fixture(autouse=True, scope="module")
def _no_dbt_server_outlives_its_module() -> Iterator[None]:
    yield
    stop_dbt_servers()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/<shape>/dags/ from what the generator makes now (make golden)",
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was asked to rewrite the golden files instead of comparing them."""
    return bool(request.config.getoption("--update-golden"))


REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_manifests"
SHOP = SAMPLES / "shop"
HOSTILE = SAMPLES / "hostile"
CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def shop_manifest() -> Path:
    return SHOP / "manifest.json"


@pytest.fixture(scope="session")
def shop_raw(shop_manifest: Path) -> dict[str, Any]:
    """The sample manifest as dbt wrote it (read-only: copy before changing)."""
    return orjson.loads(shop_manifest.read_bytes())


#: manifest sections dagfactory never reads; ``macros`` alone is 3/4 of the sample's bytes
UNREAD_SECTIONS = frozenset({"macros", "docs"})


@pytest.fixture(scope="session")
def shop_lean(shop_raw: dict[str, Any]) -> dict[str, Any]:
    """The sample manifest less the sections dagfactory never reads, so that a copy per test
    (or per hypothesis example) is cheap. Read-only: copy before changing.
    tests/unit/test_fixtures.py checks that it builds the same files as the real one."""
    return {key: value for key, value in shop_raw.items() if key not in UNREAD_SECTIONS}


@pytest.fixture
def edited_manifest(tmp_path: Path, shop_lean: dict[str, Any]) -> Callable[..., Path]:
    """Write a copy of the sample manifest (lean) changed by ``edit(raw)``; returns its path."""

    def make(edit: Callable[[dict[str, Any]], object], name: str = "manifest.json") -> Path:
        raw = copy.deepcopy(shop_lean)
        edit(raw)
        path = tmp_path / name
        path.write_bytes(orjson.dumps(raw))
        return path

    return make
