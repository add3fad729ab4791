"""The golden files are DAGs that Airflow 3.3.2 loads and serializes without an error.

tests/unit/test_golden.py pins their bytes; this checks that what is pinned is worth pinning.
The Airflow 2 shape is loaded by Airflow 2 in test_airflow2.py.
"""

from __future__ import annotations

import pytest
from helpers import serialized_dags
from tests_paths import REPO

pytestmark = pytest.mark.airflow

GOLDEN = REPO / "tests" / "golden"
SHAPES = sorted(
    p.parent.name for p in GOLDEN.glob("*/dagfactory.yml") if p.parent.name != "airflow2"
)


@pytest.mark.parametrize("shape", SHAPES)
def test_airflow_loads_and_serializes_every_golden_file(shape: str, monkeypatch):
    # A task naming an executor Airflow does not run is an import error: run both, as a
    # deployment with Celery and Kubernetes executors would ([core] executor).
    from airflow.executors import executor_loader

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor,KubernetesExecutor")
    monkeypatch.setattr(executor_loader, "_executor_names", [])
    folder = GOLDEN / shape / "dags"
    dags = serialized_dags(folder)
    assert sorted(dags) == sorted(p.stem for p in folder.glob("*.py"))
