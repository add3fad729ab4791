"""Warehouse credentials from Airflow connections, never written into a file or a pod spec.

The recipe (docs/operations.md): the dbt profile reads ``env_var('...')``; ``dbt.env`` sets
that variable to an Airflow template reading a connection (``{{ conn.warehouse.host }}``); the
connection comes from Airflow (here ``AIRFLOW_CONN_WAREHOUSE``). On Celery the task renders the
template in the worker. On the pod path the value must come from a Kubernetes secret instead.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from helpers import dbt_executable, load_dagbag

from dagfactory.cli import main as dagfactory_main
from e2e.harness import RUNNER, AirflowHome

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SHOP = REPO / "sample_manifests" / "shop"
#: values only the connection holds: none may appear in a generated file or a pod spec
SECRET_PASSWORD = f"pw-{uuid.uuid4().hex}"
ENV = {
    "DBT_DUCKDB_PATH": "{{ conn.warehouse.host }}",
    "DBT_ENV_SECRET_PASSWORD": "{{ conn.warehouse.password }}",
}


def _build(tmp_path: Path, config: dict, *extra: str) -> tuple[int, Path]:
    (tmp_path / "dagfactory.yml").write_text(yaml.safe_dump(config))
    out = tmp_path / "dags"
    argv = ["build", "--manifest", str(SHOP / "manifest.json"), "--out", str(out)]
    argv += ["--config", str(tmp_path / "dagfactory.yml"), *extra]
    with pytest.raises(SystemExit) as done:
        dagfactory_main(argv)
    return done.value.code or 0, out


def _connection(host: str) -> str:
    return json.dumps({"conn_type": "generic", "host": host, "password": SECRET_PASSWORD})


def _pod_config(secrets: list[dict]) -> dict:
    return {
        "team": "shop_team",
        "dbt": {"env": ENV},
        "routing": {
            "kubernetes": {
                "image": "ghcr.io/example/shop-dbt:1.0",
                "pod": {"secrets": secrets},
            }
        },
    }


WAREHOUSE_SECRETS = [
    {"deploy_type": "env", "deploy_target": name, "secret": "warehouse", "key": key}
    for name, key in (("DBT_DUCKDB_PATH", "host"), ("DBT_ENV_SECRET_PASSWORD", "password"))
]


def test_on_the_pod_path_connection_values_come_from_kubernetes_secrets(tmp_path, monkeypatch):
    code, out = _build(tmp_path, _pod_config(WAREHOUSE_SECRETS), "--runner", "kubernetes")
    assert code == 0
    for file in out.glob("*.py"):
        text = file.read_text()
        assert SECRET_PASSWORD not in text and "conn.warehouse" not in text, file.name
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", _connection("/data/shop.duckdb"))
    dagbag = load_dagbag(out)
    assert dagbag.import_errors == {}
    pods = [
        task.build_pod_request_obj(context=None, dry_run=True)
        for dag in dagbag.dags.values()
        for task in dag.tasks
        if type(task).__name__ == "KubernetesPodOperator"
    ]
    assert pods
    for pod in pods:
        text = json.dumps(pod.to_dict(), default=str)
        assert SECRET_PASSWORD not in text and "conn.warehouse" not in text
        env = {e.name: e for e in pod.spec.containers[0].env}
        for secret in WAREHOUSE_SECRETS:
            ref = env[secret["deploy_target"]].value_from.secret_key_ref
            assert (ref.name, ref.key) == ("warehouse", secret["key"])


def test_a_connection_value_with_no_secret_on_the_pod_path_is_a_build_error(tmp_path, capsys):
    code, _ = _build(tmp_path, _pod_config(WAREHOUSE_SECRETS[:1]), "--runner", "kubernetes")
    assert code == 2
    err = capsys.readouterr().err
    assert "key 'dbt.env.DBT_ENV_SECRET_PASSWORD'" in err and "Kubernetes secret" in err


@pytest.mark.dbt
def test_on_celery_dbt_reads_the_connection_through_env_var(tmp_path):
    """The sample profile reads DBT_DUCKDB_PATH; the connection's host names the database."""
    project = tmp_path / "shop"
    shutil.copytree(
        SHOP, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb", "*.wal")
    )
    database = tmp_path / "warehouse" / "shop.duckdb"
    database.parent.mkdir()
    config = {
        "team": "shop_team",
        "dbt": {
            "project_dir": str(project),
            "profiles_dir": str(project),
            "executable": dbt_executable(),
            "env": {**ENV, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        },
    }
    code, out = _build(tmp_path, config, "--runner", "celery")
    assert code == 0
    for file in out.glob("*.py"):
        assert str(database) not in file.read_text() and SECRET_PASSWORD not in file.read_text()
    plan = {
        "migrate": True,
        "pools": {},
        "logical_date": "2024-06-01T00:00:00+00:00",
        "runs": [{"dag_id": "shop_team__seeds", "mark_success_pattern": None}],
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    home = AirflowHome(tmp_path / "airflow", out)
    run = subprocess.run(
        [sys.executable, str(RUNNER), str(tmp_path / "plan.json"), str(tmp_path / "result.json")],
        env={**home.env(), "AIRFLOW_CONN_WAREHOUSE": _connection(str(database))},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (dag_run,) = json.loads((tmp_path / "result.json").read_text())["runs"]
    assert dag_run["state"] == "success", dag_run["error"]
    duckdb = pytest.importorskip("duckdb")
    with duckdb.connect(str(database), read_only=True) as con:
        query = con.execute("select table_name from information_schema.tables")
        tables = {row[0] for row in query.fetchall()}
    assert tables, "dbt wrote nothing where the connection pointed"
    assert not (project / "target" / "shop.duckdb").exists()  # the profile's default path
