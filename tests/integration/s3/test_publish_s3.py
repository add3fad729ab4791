"""Push against S3 for real: moto in-process, and real server processes over HTTP on 127.0.0.1
(``moto_server`` and seaweedfs ``weed mini``) behind a proxy that counts requests on the wire
and injects faults. The done-criteria of issue #6, numbered as there:

1. first push uploads every file; unchanged rebuild = 0 PUT; one model changed = 1 PUT;
   a removed group = 1 DELETE (counted at the proxy, i.e. at the server);
2. foreign files under our prefix and every key of other teams (``team-ab``!) stay identical;
3. a fault on the k-th PUT fails the push naming what was and was not uploaded, deletes
   nothing, and a rerun converges;
5. file:// gives the same plans as S3 in the same scenario.

Criterion 4 (a real puller and real Airflow) is in ``test_publish_pull.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from s3servers import SHOP_BASE, Builds, Fault, S3Backend, ShopBuilds

from dagfactory.errors import PublishError
from dagfactory.publish import NOT_MD5, PushResult, push

pytestmark = pytest.mark.s3server

SCENARIO = ("base", "base", "one_model_changed", "group_removed")


def summary(result: PushResult) -> dict:
    """A plan without where it points: what two backends must agree on."""
    plan = result.plan
    out = {
        kind: [(a.name, a.reason, a.md5, a.size) for a in getattr(plan, kind)]
        for kind in ("uploads", "unchanged", "deletions", "foreign")
    }
    out["owned_before"] = plan.owned_before
    out["owned_after"] = plan.owned_after
    return out


def put_keys(backend: S3Backend, suffix: str = "") -> list[str]:
    return sorted(s.key for s in backend.proxy.requests("PUT") if s.key.endswith(suffix))


def assert_single_part_with_content_md5(backend: S3Backend) -> None:
    """Every PUT carried a Content-MD5 equal to the MD5 of the body the server got, and no
    multipart upload was ever started (POST ?uploads)."""
    for seen in backend.proxy.requests("PUT"):
        assert seen.content_md5 is not None, seen
        assert seen.content_md5 == seen.body_md5, seen
    assert not [s for s in backend.proxy.requests("POST") if "uploads" in s.query]


# --------------------------------------------------------------------------- criteria 1 and 5


def test_push_counts_at_the_server_and_file_url_agrees(
    s3_backend: S3Backend, shop_builds: ShopBuilds, tmp_path: Path
):
    """Real builds of sample_manifests/shop; every step also pushed to file:// for (5)."""
    bucket = s3_backend.new_bucket()
    url = f"s3://{bucket}/dags/"
    file_url = (tmp_path / "file-bucket").as_uri() + "/dags/"
    outs = {variant: shop_builds.build(variant) for variant in dict.fromkeys(SCENARIO)}
    files = {variant: shop_builds.files(out) for variant, out in outs.items()}
    prefix = "dags/team-a/shop/"

    s3_backend.proxy.reset()
    first = push(outs["base"], url, endpoint_url=s3_backend.endpoint_url)
    assert [a.name for a in first.plan.uploads] == sorted(files["base"])
    dag_files = [n for n in files["base"] if n.endswith(".py")]  # and the build summary
    assert put_keys(s3_backend, ".py") == sorted(prefix + n for n in dag_files)
    state = prefix + ".dagfactory/state.json"  # the lease taken and released (#13)
    assert put_keys(s3_backend) == sorted([*(prefix + n for n in files["base"]), state, state])
    assert s3_backend.proxy.count("DELETE") == 0
    assert_single_part_with_content_md5(s3_backend)
    stored = s3_backend.snapshot(bucket, prefix)
    assert {k[len(prefix) :]: v for k, v in stored.items() if "/.dagfactory/" not in k} == (
        files["base"]
    )
    assert (
        push(outs["base"], file_url).to_dict()["plan"]["counts"]
        == first.to_dict()["plan"]["counts"]
    )

    s3_backend.proxy.reset()
    again = push(outs["base"], url, endpoint_url=s3_backend.endpoint_url)
    assert s3_backend.proxy.count("PUT") == 0
    assert s3_backend.proxy.count("DELETE") == 0
    assert not again.plan.has_changes
    assert summary(push(outs["base"], file_url)) == summary(again)

    changed = sorted(
        n for n in files["one_model_changed"] if files["one_model_changed"][n] != files["base"][n]
    )
    assert len(changed) == 1  # the sample manifest edit touches one group's DAG
    s3_backend.proxy.reset()
    one = push(outs["one_model_changed"], url, endpoint_url=s3_backend.endpoint_url)
    assert s3_backend.proxy.count("PUT") == 3
    assert put_keys(s3_backend) == sorted([prefix + changed[0], state, state])
    assert s3_backend.proxy.count("DELETE") == 0
    assert summary(push(outs["one_model_changed"], file_url)) == summary(one)

    removed = sorted(set(files["one_model_changed"]) - set(files["group_removed"]))
    assert len(removed) == 1
    s3_backend.proxy.reset()
    gone = push(outs["group_removed"], url, endpoint_url=s3_backend.endpoint_url)
    deletes = s3_backend.proxy.requests("DELETE")
    assert [(d.key, d.status) for d in deletes] == [(prefix + removed[0], 204)]
    assert_single_part_with_content_md5(s3_backend)
    assert summary(push(outs["group_removed"], file_url)) == summary(gone)

    final = s3_backend.snapshot(bucket, prefix)
    assert {k[len(prefix) :]: v for k, v in final.items() if "/.dagfactory/" not in k} == (
        files["group_removed"]
    )
    file_root = tmp_path / "file-bucket" / "dags" / "team-a" / "shop"
    assert {p.name: p.read_bytes() for p in file_root.iterdir() if p.is_file()} == (
        files["group_removed"]
    )


# --------------------------------------------------------------------------- criterion 2

OTHERS = {
    # someone else's files under our own prefix
    "dags/team-a/shop/notes.py": b"# a hand-written helper, not dagfactory's\n",
    "dags/team-a/shop/sub/helper.py": b"X = 1\n",
    "dags/team-a/shop/README.txt": b"hello\n",
    # a team whose name starts with ours, with the very same file names and its own state
    "dags/team-ab/shop/shop__orders.py": b"# team-ab orders\n",
    "dags/team-ab/shop/shop__marketing.py": b"# team-ab marketing\n",
    "dags/team-ab/shop/.dagfactory/state.json": b'{"files": ["shop__orders.py"]}\n',
    "dags/team-a-legacy/shop/shop__marketing.py": b"# legacy\n",
    "dags/team-a/shopping/shop__marketing.py": b"# another project of ours\n",
    "dags/team-a.py": b"# a file named like our team\n",
    "dags/team-a": b"an object named exactly like the team prefix without its slash\n",
    "other/team-a/shop/shop__marketing.py": b"# outside the base prefix\n",
}


def test_foreign_files_and_other_teams_stay_byte_identical(s3_backend: S3Backend, builds: Builds):
    bucket = s3_backend.new_bucket()
    client = s3_backend.client()
    for key, data in OTHERS.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)
    # and one multipart object in the sibling team: its "-N" ETag must survive too
    upload = client.create_multipart_upload(Bucket=bucket, Key="dags/team-ab/shop/big.py")
    part = client.upload_part(
        Bucket=bucket,
        Key="dags/team-ab/shop/big.py",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"# multipart\n",
    )
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="dags/team-ab/shop/big.py",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    ours = "dags/team-a/shop/"

    mine = {"notes.py", "sub/helper.py", "README.txt"}  # foreign, under our prefix

    def theirs() -> tuple[dict[str, bytes], dict[str, str]]:
        snap, tags = s3_backend.snapshot(bucket), s3_backend.etags(bucket)
        keep = [k for k in snap if not k.startswith(ours) or k[len(ours) :] in mine]
        return {k: snap[k] for k in keep}, {k: tags[k] for k in keep}

    before = theirs()
    assert len(before[0]) == len(OTHERS) + 1
    s3_backend.proxy.reset()
    url = f"s3://{bucket}/dags/"
    for groups in (
        SHOP_BASE,
        {**SHOP_BASE, "orders": 2},
        {"customers": 1, "orders": 2},
        {},  # an empty build, allowed here: it deletes all we own, still nothing of theirs
        SHOP_BASE,
    ):
        build = builds.build(groups)
        result = push(build, url, endpoint_url=s3_backend.endpoint_url, allow_empty=True)
        assert [a.name for a in result.plan.foreign] == ["README.txt", "notes.py", "sub/helper.py"]
        assert theirs() == before

    for seen in s3_backend.proxy.seen:
        if seen.method in ("PUT", "DELETE", "POST"):
            assert seen.key.startswith(ours), seen
        elif seen.key == "":  # a listing: always our prefix, with its trailing slash
            assert parse_qs(seen.query)["prefix"] == [ours], seen
    assert s3_backend.proxy.count("DELETE") == 4  # marketing, payments; then customers, orders


# --------------------------------------------------------------------------- criterion 3


@pytest.mark.parametrize("mode", ["500", "drop"])
@pytest.mark.parametrize("k", [1, 3])
def test_fault_on_kth_put_fails_cleanly_and_rerun_converges(
    s3_backend: S3Backend, builds: Builds, monkeypatch, mode: str, k: int
):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    bucket = s3_backend.new_bucket()
    url = f"s3://{bucket}/dags/"
    prefix = "dags/team-a/shop/"
    push(builds.build(SHOP_BASE), url, endpoint_url=s3_backend.endpoint_url)
    # 3 changed, 1 new, 1 dropped group (marketing)
    after_dir = builds.build({"customers": 2, "orders": 2, "payments": 2, "refunds": 1})
    after = builds.files(after_dir)
    s3_backend.proxy.reset()
    fault = s3_backend.proxy.inject(Fault(nth=k, mode=mode))

    with pytest.raises(PublishError) as info:
        push(after_dir, url, endpoint_url=s3_backend.endpoint_url, max_workers=1)
    message = str(info.value)

    # what the server holds now, file by file
    stored = s3_backend.snapshot(bucket, prefix)
    uploaded = sorted(n for n, data in after.items() if stored.get(prefix + n) == data)
    not_uploaded = sorted(set(after) - set(uploaded))
    assert fault.key is not None and fault.key[len(prefix) :] in not_uploaded
    assert f"uploaded: {', '.join(uploaded) or 'none'}\n" in message
    assert f"not uploaded: {', '.join(not_uploaded)}\n" in message
    assert "nothing deleted" in message
    assert ("InternalError (HTTP 500)" if mode == "500" else "Connection was closed") in message
    assert len(uploaded) == k - 1  # one worker: nothing started after the failure
    # botocore retried the failing PUT (3 attempts), then gave up; no DELETE reached the server
    assert sum(1 for s in s3_backend.proxy.requests("PUT") if s.key == fault.key) == 3
    assert s3_backend.proxy.count("DELETE") == 0
    assert prefix + "shop__marketing.py" in stored

    s3_backend.proxy.reset()
    rerun = push(after_dir, url, endpoint_url=s3_backend.endpoint_url)
    assert sorted(a.name for a in rerun.plan.uploads) == not_uploaded
    assert put_keys(s3_backend, ".py") == [prefix + n for n in not_uploaded]
    assert [d.name for d in rerun.plan.deletions] == ["shop__marketing.py"]
    stored = s3_backend.snapshot(bucket, prefix)
    assert {k[len(prefix) :]: v for k, v in stored.items() if k.endswith(".py")} == after

    s3_backend.proxy.reset()
    assert not push(after_dir, url, endpoint_url=s3_backend.endpoint_url).plan.has_changes
    assert s3_backend.proxy.count("PUT") == s3_backend.proxy.count("DELETE") == 0


def test_cli_push_exits_non_zero_on_a_fault(s3_backend: S3Backend, builds: Builds, monkeypatch):
    from click.testing import CliRunner

    from dagfactory.cli import cli

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    bucket = s3_backend.new_bucket()
    s3_backend.proxy.inject(Fault(nth=2, mode="drop"))
    argv = ["push", str(builds.build(SHOP_BASE)), f"s3://{bucket}/dags/"]
    result = CliRunner().invoke(cli, [*argv, "--endpoint-url", s3_backend.endpoint_url])
    assert result.exit_code == 1
    assert "nothing deleted" in result.stderr
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("  not uploaded: "))
    missing = line.removeprefix("  not uploaded: ").split(", ")
    s3_backend.proxy.reset()
    result = CliRunner().invoke(cli, [*argv, "--endpoint-url", s3_backend.endpoint_url])
    assert result.exit_code == 0, result.output
    assert sorted(k.rsplit("/", 1)[1] for k in put_keys(s3_backend, ".py")) == missing


@pytest.mark.parametrize("mode", ["500", "drop", "drop-after"])
def test_transient_fault_is_retried(s3_backend: S3Backend, builds: Builds, mode: str):
    """One bad answer (even after the server stored the object) is absorbed by botocore's
    standard retries: the proxy sees the PUT twice and the push succeeds."""
    bucket = s3_backend.new_bucket()
    fault = s3_backend.proxy.inject(Fault(nth=2, mode=mode, sticky=False))
    out = builds.build(SHOP_BASE)
    result = push(out, f"s3://{bucket}/dags/", endpoint_url=s3_backend.endpoint_url)
    assert len(result.applied.uploaded) == 4
    assert sum(1 for s in s3_backend.proxy.requests("PUT") if s.key == fault.key) == 2
    stored = s3_backend.snapshot(bucket, "dags/team-a/shop/")
    assert {k.rsplit("/", 1)[1]: v for k, v in stored.items() if k.endswith(".py")} == (
        builds.files(out)
    )


def test_body_corrupted_on_the_wire_is_refused(s3_backend: S3Backend, builds: Builds):
    """seaweedfs checks Content-MD5 and answers BadDigest; moto_server does not check it and
    stores the bad bytes, which the ETag check after each PUT catches. Either way the push
    fails, deletes nothing, and the rerun replaces the bad object."""
    bucket = s3_backend.new_bucket()
    s3_backend.proxy.inject(Fault(nth=1, mode="corrupt"))
    out = builds.build(SHOP_BASE)
    url = f"s3://{bucket}/dags/"
    refused = r"BadDigest \(HTTP 400\)|the store answered ETag \w+, expected the MD5"
    with pytest.raises(PublishError, match=refused):
        push(out, url, endpoint_url=s3_backend.endpoint_url)
    s3_backend.proxy.reset()
    push(out, url, endpoint_url=s3_backend.endpoint_url)
    stored = s3_backend.snapshot(bucket, "dags/team-a/shop/")
    assert {k.rsplit("/", 1)[1]: v for k, v in stored.items() if k.endswith(".py")} == (
        builds.files(out)
    )


def test_multipart_object_is_healed_to_a_single_part_upload(s3_backend: S3Backend, builds: Builds):
    """An object uploaded in parts has an ETag objinsync never matches; push re-uploads it."""
    bucket = s3_backend.new_bucket()
    out = builds.build({"orders": 1})
    data = builds.files(out)["shop__orders.py"]
    key = "dags/team-a/shop/shop__orders.py"
    client = s3_backend.client()
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)
    part = client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=data
    )
    client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    assert s3_backend.etags(bucket)[key].endswith("-1")

    result = push(out, f"s3://{bucket}/dags/", endpoint_url=s3_backend.endpoint_url)
    assert [(a.name, a.reason) for a in result.plan.uploads] == [("shop__orders.py", NOT_MD5)]
    assert s3_backend.etags(bucket)[key] == hashlib.md5(data).hexdigest()
    assert not push(
        out, f"s3://{bucket}/dags/", endpoint_url=s3_backend.endpoint_url
    ).plan.has_changes


def test_missing_bucket_is_a_clear_error(s3_backend: S3Backend, builds: Builds):
    with pytest.raises(
        PublishError,
        match=r"listing s3://no-such-bucket-x/dags/team-a/shop/ "
        r"failed: NoSuchBucket \(HTTP 404\)",
    ):
        push(
            builds.build(SHOP_BASE),
            "s3://no-such-bucket-x/dags/",
            endpoint_url=s3_backend.endpoint_url,
        )


# --------------------------------------------------------------------------- moto in-process


@pytest.fixture
def moto_s3(aws_test_env):
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        import boto3

        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="dags")
        yield boto3.client("s3", region_name="us-east-1")


def test_moto_in_process_gives_the_same_plans_as_file_url(moto_s3, builds: Builds, tmp_path):
    file_url = (tmp_path / "bucket").as_uri() + "/dags/"
    for groups in (SHOP_BASE, SHOP_BASE, {**SHOP_BASE, "orders": 2}, {"orders": 2}):
        out = builds.build(groups)
        assert summary(push(out, "s3://dags/dags/")) == summary(push(out, file_url))
    listed = moto_s3.list_objects_v2(Bucket="dags", Prefix="dags/team-a/shop/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        "dags/team-a/shop/.dagfactory/state.json",
        "dags/team-a/shop/shop__orders.py",
    ]


def test_moto_in_process_missing_credentials(moto_s3, builds: Builds, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    with pytest.raises(PublishError, match="no AWS credentials found"):
        push(builds.build(SHOP_BASE), "s3://dags/dags/")
