"""`dagfactory check --against s3://...` against real S3 server processes, read only.

Team ``core`` has pushed its ``shop`` project. The same team now builds the project under a
new name, ``shop_v2``: the same DAG ids, which Airflow would see twice. Someone also left a
hand-copied file with one of those ids under another team's prefix, and a stray file in
``shop_v2``'s own prefix. The check finds all of it, and the counting proxy in front of the
server sees only reads: no PUT, POST or DELETE.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from s3servers import S3Backend

from dagfactory.cli import cli
from dagfactory.publish import push

pytestmark = pytest.mark.s3server

WRITES = ("PUT", "POST", "DELETE")


def _build(shop_manifest, out, project: str) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "build",
            "--manifest",
            str(shop_manifest),
            "--out",
            str(out),
            "--team",
            "core",
            "--project",
            project,
            "--runner",
            "celery",
        ],
    )
    assert result.exit_code == 0, result.stderr


@pytest.fixture
def bucket_with_an_earlier_push(s3_backend: S3Backend, shop_manifest, tmp_path) -> str:
    """``core/shop/`` pushed for real (around the proxy), plus two files put by hand."""
    bucket = s3_backend.new_bucket()
    _build(shop_manifest, tmp_path / "shop", "shop")
    push(tmp_path / "shop", f"s3://{bucket}/dags/", endpoint_url=s3_backend.upstream)
    client = s3_backend.client()
    client.put_object(Bucket=bucket, Key="dags/legacy/etl/core__sales.py", Body=b"# by hand\n")
    client.put_object(Bucket=bucket, Key="dags/core/shop_v2/stray.py", Body=b"# stray\n")
    return bucket


def test_against_finds_colliding_dag_ids_and_writes_nothing(
    s3_backend: S3Backend, bucket_with_an_earlier_push, shop_manifest, tmp_path
):
    bucket = bucket_with_an_earlier_push
    out = tmp_path / "shop_v2"
    _build(shop_manifest, out, "shop_v2")
    s3_backend.proxy.reset()

    result = CliRunner().invoke(
        cli,
        [
            "check",
            str(out),
            "--against",
            f"s3://{bucket}/dags/",
            "--endpoint-url",
            s3_backend.endpoint_url,
            "--no-load",
            "--format",
            "json",
        ],
    )

    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["findings"]
    collisions = {(f["path"], f["message"]) for f in findings if f["rule"] == "bucket.collision"}
    assert len(collisions) == 6  # five under core/shop/, one under legacy/etl/
    assert (
        "core__finance.py",
        "DAG id 'core__finance' already exists at dags/core/shop/core__finance.py, owned by "
        "core/shop (its state object)",
    ) in collisions
    assert (
        "core__sales.py",
        "DAG id 'core__sales' already exists at dags/legacy/etl/core__sales.py, not listed by "
        "any state object",
    ) in collisions
    stray = [f for f in findings if f["rule"] == "bucket.not-owned"]
    assert [f["path"] for f in stray] == ["dags/core/shop_v2/stray.py"]
    assert all(f["line"] >= 1 for f in findings)

    methods = {seen.method for seen in s3_backend.proxy.requests()}
    assert methods and methods <= {"GET", "HEAD"}
    assert not [s for s in s3_backend.proxy.requests() if s.method in WRITES]


def test_against_a_bucket_with_no_collision_passes(
    s3_backend: S3Backend, bucket_with_an_earlier_push, shop_manifest, tmp_path
):
    bucket = bucket_with_an_earlier_push
    s3_backend.client().delete_object(Bucket=bucket, Key="dags/core/shop_v2/stray.py")
    out = tmp_path / "growth"
    result = CliRunner().invoke(
        cli,
        [
            "build",
            "--manifest",
            str(shop_manifest),
            "--out",
            str(out),
            "--team",
            "growth",
            "--runner",
            "celery",
        ],
    )
    assert result.exit_code == 0, result.stderr
    s3_backend.proxy.reset()
    result = CliRunner().invoke(
        cli,
        [
            "check",
            str(out),
            "--against",
            f"s3://{bucket}/dags/",
            "--endpoint-url",
            s3_backend.endpoint_url,
            "--no-load",
        ],
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"^ok: 5 files checked", result.stdout, re.MULTILINE)
    assert not [s for s in s3_backend.proxy.requests() if s.method in WRITES]
