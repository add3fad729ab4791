"""``dagfactory push`` through the command line: output, JSON, dry run and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from s3servers import SHOP_BASE, Builds

from dagfactory.cli import cli


@pytest.fixture
def bucket_url(tmp_path: Path) -> str:
    return (tmp_path / "bucket").as_uri() + "/dags/"


def run(*argv: str):
    return CliRunner().invoke(cli, list(argv))


def test_push_prints_the_plan_and_converges(builds: Builds, bucket_url: str):
    out = str(builds.build(SHOP_BASE))
    first = run("push", out, bucket_url)
    assert first.exit_code == 0, first.output
    assert "upload  shop__orders.py" in first.output
    assert "done: 4 uploaded, 0 unchanged, 0 deleted" in first.output
    again = run("push", out, bucket_url)
    assert again.exit_code == 0 and "up to date: 4 files unchanged" in again.output


def test_push_json_and_dry_run(builds: Builds, bucket_url: str, tmp_path: Path):
    out = str(builds.build(SHOP_BASE))
    result = run("push", out, bucket_url, "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True and doc["applied"] is None
    assert doc["plan"]["counts"] == {"uploads": 4, "unchanged": 0, "deletions": 0, "foreign": 0}
    assert not (tmp_path / "bucket").exists()


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["gs://b/dags/"], 2, "unsupported push URL 'gs://b/dags/'; use one of"),
        (["BUCKET", "--team", "team-b"], 2, "made for team 'team-a', not 'team-b'"),
        (["BUCKET", "--project", "a/b"], 2, "made for project 'shop', not 'a/b'"),
    ],
    ids=["scheme", "team", "project"],
)
def test_push_errors_exit_with_a_message(builds: Builds, bucket_url, argv, code, message):
    out = str(builds.build(SHOP_BASE))
    argv = [bucket_url if a == "BUCKET" else a for a in argv]
    result = run("push", out, *argv)
    assert result.exit_code == code
    assert message in result.stderr


def test_failed_push_exits_1_and_names_the_state_object(builds: Builds, tmp_path: Path):
    state = tmp_path / "bucket" / "team-a" / "shop" / ".dagfactory" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text("{broken")
    result = run("push", str(builds.build(SHOP_BASE)), (tmp_path / "bucket").as_uri())
    assert result.exit_code == 1
    assert "team-a/shop/.dagfactory/state.json" in result.stderr
    assert "not valid JSON" in result.stderr
