"""`dagfactory preview --against s3://...` against real S3 server processes, read only.

The sample project was built and pushed; a dbt change then moves one model to another group,
re-routes one to Kubernetes and removes one. The preview compares the new build with the
summary the push left in the bucket and reports exactly those three changes, while the
counting proxy in front of the server sees only reads: no PUT, POST or DELETE.
"""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner
from helpers import change_three_models
from s3servers import S3Backend
from tests_paths import SHOP

from dagfactory.cli import cli
from dagfactory.publish import push

pytestmark = pytest.mark.s3server

CONFIG = str(SHOP / "dagfactory.yml")
WRITES = ("PUT", "POST", "DELETE")


def settled(backend: S3Backend, at_least: int) -> list[tuple[str, str]]:
    """The requests the proxy saw. It records a request just after answering it, so wait
    (bounded) for the ones the test knows were made."""
    deadline = time.monotonic() + 5
    while len(backend.proxy.requests()) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return [(s.method, s.key) for s in backend.proxy.requests()]


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_preview_against_the_bucket_reports_the_changes_and_only_reads(
    s3_backend: S3Backend, shop_manifest, edited_manifest, tmp_path
):
    bucket = s3_backend.new_bucket()
    url = f"s3://{bucket}/dags/"
    out = tmp_path / "deployed"
    run("build", "--manifest", str(shop_manifest), "--config", CONFIG, "--out", str(out))
    push(out, url, endpoint_url=s3_backend.endpoint_url)
    assert "dags/shop_team/shop/shop.dagfactory.json" in s3_backend.snapshot(bucket)

    changed = edited_manifest(change_three_models, name="changed.json")
    s3_backend.proxy.reset()
    args = ["preview", "--manifest", str(changed), "--config", CONFIG, "--against", url]
    data = json.loads(run(*args, "--endpoint-url", s3_backend.endpoint_url, "--format", "json"))
    assert [(m["kind"], m["unique_id"]) for m in data["changes"]["models"]] == [
        ("removed", "model.shop.finance_customer_ltv"),
        ("re-routed", "model.shop.mkt_customer_segments"),
        ("moved", "model.shop.sales_by_country"),
    ]
    text = run(*args, "--endpoint-url", s3_backend.endpoint_url)
    assert f"changes against {url}: models: 1 moved, 1 re-routed, 1 removed" in text

    seen = settled(s3_backend, at_least=2)
    assert seen == [("GET", "dags/shop_team/shop/shop.dagfactory.json")] * 2  # one per preview


def test_preview_against_an_empty_prefix_shows_every_dag_as_added(
    s3_backend: S3Backend, shop_manifest
):
    url = f"s3://{s3_backend.new_bucket()}/dags/"
    s3_backend.proxy.reset()
    args = ["preview", "--manifest", str(shop_manifest), "--config", CONFIG, "--against", url]
    data = json.loads(run(*args, "--endpoint-url", s3_backend.endpoint_url, "--format", "json"))
    assert data["changes"]["against"] == f"{url} (nothing there yet)"
    assert data["changes"]["dags_added"] == sorted(data["dags"])
    assert [method for method, _ in settled(s3_backend, 1) if method in WRITES] == []
