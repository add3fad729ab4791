"""Push without a network: URL and slug validation, the plan as a table, apply's ordering and
failure behaviour through the in-memory publisher, the file:// publisher, and a property test
that any sequence of builds and injected faults converges and never touches foreign keys."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from s3servers import MARKER, SHOP_BASE, SHOP_GROUP_REMOVED, SHOP_ONE_MODEL_CHANGED, Builds

from dagfactory.errors import ConfigError, PublishError
from dagfactory.publish import (
    CHANGED,
    DROPPED,
    FOREIGN,
    NEW,
    NOT_MD5,
    LocalPublisher,
    MemoryPublisher,
    RemoteObject,
    decode_state,
    encode_state,
    parse_target,
    plan_push,
    push,
    read_build,
    run_push,
    validate_slug,
)

PREFIX = "dags/team-a/shop/"
STATE = PREFIX + ".dagfactory/state.json"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def remote(**objs: bytes | tuple[str | None, int]) -> dict[str, RemoteObject]:
    """Listing under PREFIX: name=bytes, or name=(md5, size) for an odd ETag."""
    out = {}
    for name, v in objs.items():
        key = PREFIX + name.replace("__", "/")
        out[key] = RemoteObject(md5(v), len(v)) if isinstance(v, bytes) else RemoteObject(*v)
    return out


def target(url="s3://bkt/dags/"):
    return parse_target(url, "team-a", "shop")


# --------------------------------------------------------------------------- URLs and slugs

URLS = [
    ("s3://bkt/dags/", "s3", "bkt", "dags/team-a/shop/", "s3://bkt/dags/team-a/shop/"),
    ("s3://bkt/dags", "s3", "bkt", "dags/team-a/shop/", "s3://bkt/dags/team-a/shop/"),
    ("s3://bkt/dags///", "s3", "bkt", "dags/team-a/shop/", "s3://bkt/dags/team-a/shop/"),
    ("s3://bkt", "s3", "bkt", "team-a/shop/", "s3://bkt/team-a/shop/"),
    ("s3://bkt/", "s3", "bkt", "team-a/shop/", "s3://bkt/team-a/shop/"),
    ("s3://bkt/a/b/", "s3", "bkt", "a/b/team-a/shop/", "s3://bkt/a/b/team-a/shop/"),
    ("S3://bkt/x/", "s3", "bkt", "x/team-a/shop/", "s3://bkt/x/team-a/shop/"),
    (
        "file:///srv/bucket/",
        "file",
        "/srv/bucket",
        "team-a/shop/",
        "file:///srv/bucket/team-a/shop/",
    ),
    (
        "file:///srv/bucket",
        "file",
        "/srv/bucket",
        "team-a/shop/",
        "file:///srv/bucket/team-a/shop/",
    ),
    ("file://localhost/srv/b/", "file", "/srv/b", "team-a/shop/", "file:///srv/b/team-a/shop/"),
]


@pytest.mark.parametrize(
    ("url", "scheme", "bucket", "prefix", "full"), URLS, ids=[u[0] for u in URLS]
)
def test_parse_target(url, scheme, bucket, prefix, full):
    t = target(url)
    assert (t.scheme, t.bucket, t.prefix, t.url) == (scheme, bucket, prefix, full)
    assert t.prefix.endswith("/") and not t.prefix.endswith("//")
    assert t.state_key == prefix + ".dagfactory/state.json"


BAD_URLS = [
    ("gs://bkt/dags/", "use one of: s3://bucket/prefix/, file:///absolute/path/"),
    ("https://bkt/dags/", "use one of"),
    ("/srv/dags", "use one of"),
    ("dags/", "use one of"),
    ("s3:///dags/", "names no valid bucket"),
    ("s3://bkt/a/../b/", "'..'"),
    ("s3://bkt/a//b/", "empty"),
    ("s3://bkt/dags/?x=1", "query or fragment"),
    ("file://srv/dags/", "three slashes"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS, ids=[u[0] for u in BAD_URLS])
def test_parse_target_refuses(url, message):
    with pytest.raises(ConfigError, match=message.replace("?", r"\?").replace(".", r"\.")) as info:
        target(url)
    assert info.value.key == "url"


@pytest.mark.parametrize("slug", ["team-a", "team_a", "a", "Team.A-1", "0team"])
def test_valid_slugs(slug):
    assert validate_slug(slug, "team") == slug


@pytest.mark.parametrize(
    "slug",
    ["", "a/b", "..", "a..b", ".hidden", "-x", "a b", " a", "a\t", "a\n", "ü", None, 3],
    ids=repr,
)
@pytest.mark.parametrize("key", ["team", "project"])
def test_invalid_slugs_name_the_key(slug, key):
    with pytest.raises(ConfigError, match=rf"^key '{key}': {key} ") as info:
        parse_target("s3://b/p/", *(("x", slug) if key == "project" else (slug, "x")))
    assert info.value.key == key


# --------------------------------------------------------------------------- the build folder


def test_read_build_reads_exactly_the_listed_files(builds: Builds):
    out = builds.build(SHOP_BASE)
    (out / "stray.py").write_text("not listed\n")
    build = read_build(out)
    assert sorted(build.files) == sorted(f"shop__{g}.py" for g in SHOP_BASE)
    assert MARKER not in build.files and "stray.py" not in build.files
    assert (build.team, build.project) == ("team-a", "shop")


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (None, "not a dagfactory build folder"),
        ("{not json", "cannot read the build marker"),
        ({"generator": "other", "files": []}, "not written by dagfactory"),
        ({"generator": "dagfactory", "files": "a.py"}, "not a list of names"),
        ({"generator": "dagfactory", "files": ["a.py", "a.py"]}, "lists a file twice"),
        ({"generator": "dagfactory", "files": ["../x.py"]}, "not a flat <dag_id>.py"),
        ({"generator": "dagfactory", "files": ["sub/x.py"]}, "not a flat <dag_id>.py"),
        ({"generator": "dagfactory", "files": [".hidden.py"]}, "not a flat <dag_id>.py"),
        ({"generator": "dagfactory", "files": ["notes.txt"]}, "not a flat <dag_id>.py"),
        ({"generator": "dagfactory", "files": ["missing.py"]}, "cannot be read"),
    ],
    ids=[
        "missing",
        "bad-json",
        "other-generator",
        "files-not-list",
        "duplicate",
        "dotdot",
        "subfolder",
        "hidden",
        "not-py",
        "file-missing",
    ],
)
def test_read_build_refuses(tmp_path, marker, message):
    if marker is not None:
        text = marker if isinstance(marker, str) else json.dumps(marker)
        (tmp_path / MARKER).write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_build(tmp_path)


def test_push_team_and_project_come_from_the_build(builds: Builds, tmp_path):
    out = builds.build(SHOP_BASE)
    result = push(out, (tmp_path / "bucket").as_uri())
    assert result.plan.prefix == "team-a/shop/"


def test_push_refuses_a_team_the_build_was_not_made_for(builds: Builds, tmp_path):
    out = builds.build(SHOP_BASE)
    with pytest.raises(ConfigError, match="made for team 'team-a', not 'team-b'") as info:
        push(out, (tmp_path / "bucket").as_uri(), team="team-b")
    assert info.value.key == "team"
    assert not (tmp_path / "bucket").exists()


def test_push_needs_a_team_from_somewhere(builds: Builds, tmp_path):
    out = builds.build(SHOP_BASE)
    marker = json.loads((out / MARKER).read_text())
    del marker["team"]
    (out / MARKER).write_text(json.dumps(marker))
    with pytest.raises(ConfigError, match="no team given"):
        push(out, (tmp_path / "b").as_uri())
    assert push(out, (tmp_path / "b").as_uri(), team="team-z").plan.prefix == "team-z/shop/"


def test_endpoint_url_is_refused_for_file_urls(builds: Builds, tmp_path):
    with pytest.raises(ConfigError, match="only applies to s3://"):
        push(builds.build(SHOP_BASE), (tmp_path / "b").as_uri(), endpoint_url="http://x")


# --------------------------------------------------------------------------- the plan as a table

A, B, C = b"a = 1\n", b"b = 1\n", b"c = 1\n"
A2 = b"a = 2\n"

PLANS = [
    # id, local, remote listing, state, expected {action: [(name, reason)]}
    ("first-push", {"a.py": A, "b.py": B}, {}, None, {"uploads": [("a.py", NEW), ("b.py", NEW)]}),
    ("unchanged", {"a.py": A}, remote(**{"a.py": A}), ["a.py"], {"unchanged": [("a.py", "")]}),
    ("changed", {"a.py": A2}, remote(**{"a.py": A}), ["a.py"], {"uploads": [("a.py", CHANGED)]}),
    (
        "same-md5-other-size",
        {"a.py": A},
        remote(**{"a.py": (md5(A), 99)}),
        ["a.py"],
        {"uploads": [("a.py", CHANGED)]},
    ),
    (
        "multipart-etag",
        {"a.py": A},
        remote(**{"a.py": (None, len(A))}),
        ["a.py"],
        {"uploads": [("a.py", NOT_MD5)]},
    ),
    (
        "dropped-owned",
        {"a.py": A},
        remote(**{"a.py": A, "b.py": B}),
        ["a.py", "b.py"],
        {"unchanged": [("a.py", "")], "deletions": [("b.py", DROPPED)]},
    ),
    (
        "dropped-but-gone",
        {"a.py": A},
        remote(**{"a.py": A}),
        ["a.py", "b.py"],
        {"unchanged": [("a.py", "")]},
    ),
    (
        "foreign-kept",
        {"a.py": A},
        remote(**{"a.py": A, "notes.py": C}),
        ["a.py"],
        {"unchanged": [("a.py", "")], "foreign": [("notes.py", FOREIGN)]},
    ),
    (
        "foreign-in-subfolder",
        {"a.py": A},
        remote(**{"a.py": A, "sub__x.py": C}),
        ["a.py"],
        {"unchanged": [("a.py", "")], "foreign": [("sub/x.py", FOREIGN)]},
    ),
    ("no-state-deletes-nothing", {}, remote(**{"a.py": A}), None, {"foreign": [("a.py", FOREIGN)]}),
    (
        "foreign-same-name-is-overwritten",
        {"a.py": A2},
        remote(**{"a.py": A}),
        None,
        {"uploads": [("a.py", CHANGED)]},
    ),
]


@pytest.mark.parametrize(
    ("local", "listing", "state", "expected"), [p[1:] for p in PLANS], ids=[p[0] for p in PLANS]
)
def test_plan_table(local, listing, state, expected):
    plan = plan_push(local, listing, state, prefix=PREFIX, team="team-a", project="shop")
    got = {
        kind: [(a.name, a.reason) for a in getattr(plan, kind)]
        for kind in ("uploads", "unchanged", "deletions", "foreign")
        if getattr(plan, kind)
    }
    assert got == expected
    assert plan.owned_after == tuple(sorted(local))
    for a in (*plan.uploads, *plan.unchanged, *plan.deletions, *plan.foreign):
        assert a.key == PREFIX + a.name


def test_plan_ignores_keys_outside_its_prefix_and_the_state_object():
    listing = {
        "dags/team-a/shop/a.py": RemoteObject(md5(A), len(A)),
        STATE: RemoteObject(md5(b"{}"), 2),
        "dags/team-ab/shop/b.py": RemoteObject(md5(B), len(B)),  # sibling team
        "dags/team-a/shopping/b.py": RemoteObject(md5(B), len(B)),  # sibling project
        "dags/team-a/shop.py": RemoteObject(md5(B), len(B)),
    }
    plan = plan_push(
        {"a.py": A}, listing, ["a.py", "b.py"], prefix=PREFIX, team="team-a", project="shop"
    )
    assert [a.name for a in plan.unchanged] == ["a.py"]
    assert plan.deletions == plan.foreign == plan.uploads == ()
    assert plan.forgotten == ("b.py",)
    assert plan.has_changes  # the state drops b.py


def test_plan_needs_a_trailing_slash():
    with pytest.raises(ValueError, match="must end with '/'"):
        plan_push({}, {}, None, prefix="dags/team-a", team="t", project="p")


def test_plan_to_dict_is_json_and_sorted():
    plan = plan_push(
        {"b.py": B, "a.py": A},
        remote(**{"z.py": C, "c.py": C}),
        ["z.py"],
        prefix=PREFIX,
        team="team-a",
        project="shop",
    )
    d = plan.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert [u["name"] for u in d["uploads"]] == ["a.py", "b.py"]
    assert d["counts"] == {"uploads": 2, "unchanged": 0, "deletions": 1, "foreign": 1}


# --------------------------------------------------------------------------- state object


def test_state_round_trip_and_determinism():
    data = encode_state("team-a", "shop", ["b.py", "a.py", "a.py"])
    assert data == encode_state("team-a", "shop", ["a.py", "b.py"])
    assert decode_state(data, key=STATE, team="team-a", project="shop") == {"a.py", "b.py"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "not valid JSON"),
        (b'{"generator": "x"}', "not written by dagfactory"),
        (b'{"generator": "dagfactory", "format": 9}', "has format 9"),
        (encode_state("team-b", "shop", []), "belongs to team 'team-b'"),
        (encode_state("team-a", "shop", ["../../team-b/x.py"]), "not a list of file names"),
    ],
    ids=["json", "generator", "format", "other-team", "traversal"],
)
def test_state_refuses_what_it_cannot_trust(data, message):
    with pytest.raises(PublishError, match=message) as info:
        decode_state(data, key=STATE, team="team-a", project="shop")
    assert info.value.key == STATE


# --------------------------------------------------------------------------- apply, in memory


def mem_push(pub: MemoryPublisher, files: dict[str, bytes], **kw):
    return run_push(pub, parse_target("s3://bkt/dags/", "team-a", "shop"), files, **kw)


def dag_files(pub: MemoryPublisher) -> dict[str, bytes]:
    return {
        k[len(PREFIX) :]: v for k, v in pub.objects.items() if k.startswith(PREFIX) and k != STATE
    }


def owned(pub: MemoryPublisher) -> frozenset[str] | None:
    data = pub.objects.get(STATE)
    return None if data is None else decode_state(data, key=STATE, team="team-a", project="shop")


def writes(pub: MemoryPublisher) -> list[tuple[str, str]]:
    return [(op, key[len(PREFIX) :]) for op, key in pub.calls if op in ("put", "delete")]


def test_first_push_claims_then_uploads_then_verifies(builds: Builds):
    pub = MemoryPublisher()
    files = builds.files(builds.build(SHOP_BASE))
    result = mem_push(pub, files)
    assert [op for op, _ in pub.calls][:4] == ["list", "get", "put", "list"]
    assert pub.calls[2] == ("put", STATE)  # ownership (and the lease) before any DAG file
    assert pub.calls[-3][0] == "list"  # verification
    assert pub.calls[-1] == ("put", STATE)  # the lease released
    assert sorted(result.applied.uploaded) == sorted(files)
    assert dag_files(pub) == files and owned(pub) == set(files)
    assert result.applied.state_writes == 2


def test_rebuild_scenario_counts(builds: Builds):
    pub = MemoryPublisher()
    mem_push(pub, builds.files(builds.build(SHOP_BASE)))

    pub.calls.clear()
    result = mem_push(pub, builds.files(builds.build(SHOP_BASE)))
    assert writes(pub) == [] and not result.plan.has_changes
    assert result.applied.uploaded == ()

    pub.calls.clear()
    mem_push(pub, builds.files(builds.build(SHOP_ONE_MODEL_CHANGED)))
    lease = ("put", ".dagfactory/state.json")  # taken, and released, around every change
    assert writes(pub) == [lease, ("put", "shop__orders.py"), lease]

    pub.calls.clear()
    mem_push(pub, builds.files(builds.build(SHOP_GROUP_REMOVED)))
    assert writes(pub) == [lease, ("delete", "shop__marketing.py"), lease]
    assert owned(pub) == {f"shop__{g}.py" for g in SHOP_GROUP_REMOVED}


def test_dry_run_writes_nothing(builds: Builds):
    pub = MemoryPublisher({PREFIX + "shop__orders.py": b"old"})
    result = mem_push(pub, builds.files(builds.build(SHOP_BASE)), dry_run=True)
    assert writes(pub) == [] and result.dry_run and result.applied is None
    assert len(result.plan.uploads) == 4
    assert "dry run, nothing changed" in result.format_text()
    assert result.to_dict()["applied"] is None


def test_foreign_and_other_prefixes_are_never_written(builds: Builds):
    others = {
        PREFIX + "notes.py": b"mine, not dagfactory's",
        PREFIX + "sub/x.py": b"nested",
        "dags/team-ab/shop/shop__marketing.py": b"team-ab's",
        "dags/team-ab/shop/.dagfactory/state.json": encode_state(
            "team-ab", "shop", ["shop__marketing.py"]
        ),
        "dags/team-a/shopping/shop__marketing.py": b"other project",
        "dags/team-a.py": b"at the root",
    }
    pub = MemoryPublisher(others)
    for groups in (SHOP_BASE, SHOP_ONE_MODEL_CHANGED, SHOP_GROUP_REMOVED, {}, SHOP_BASE):
        result = mem_push(pub, builds.files(builds.build(groups)), allow_empty=True)
        assert {a.name for a in result.plan.foreign} == {"notes.py", "sub/x.py"}
    for key, data in others.items():
        assert pub.objects[key] == data
    assert all(key.startswith(PREFIX) for _, key in pub.calls)


def fail_on(op: str, nth: int, *, key_suffix: str = ".py"):
    """A fault for the nth ``op`` whose key ends with key_suffix; later calls to that key too."""
    seen = {"n": 0, "key": None}

    def fault(o: str, key: str, n: int):
        if o != op or not key.endswith(key_suffix):
            return None
        if seen["key"] is None:
            seen["n"] += 1
            if seen["n"] == nth:
                seen["key"] = key
        if key == seen["key"]:
            return PublishError(f"injected failure on {key}", key=key)
        return None

    return fault


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_failed_upload_names_what_was_and_was_not_uploaded(builds: Builds, nth):
    pub = MemoryPublisher()
    mem_push(pub, builds.files(builds.build(SHOP_BASE)))
    after = builds.files(builds.build({g: 2 for g in SHOP_GROUP_REMOVED}))  # 3 changed, 1 gone
    pub.fault = fail_on("put", nth)
    pub.calls.clear()
    with pytest.raises(PublishError) as info:
        mem_push(pub, after, max_workers=1)
    message = str(info.value)
    assert "nothing deleted" in message
    uploaded = [n for n in after if dag_files(pub).get(n) == after[n]]
    not_uploaded = sorted(set(after) - set(uploaded))
    assert f"uploaded: {', '.join(sorted(uploaded)) or 'none'}" in message
    assert f"not uploaded: {', '.join(not_uploaded)}" in message
    assert len(uploaded) == nth - 1  # one worker: stops at the first failure
    assert "injected failure" in message
    assert not [c for c in pub.calls if c[0] == "delete"]
    assert "shop__marketing.py" in dag_files(pub)

    pub.fault = None
    mem_push(pub, after)
    assert dag_files(pub) == after and owned(pub) == set(after)
    assert not mem_push(pub, after).plan.has_changes


def test_file_uploaded_by_a_failed_run_is_deleted_when_a_later_build_drops_it(builds: Builds):
    """The claim written before uploads is what prevents an orphan here."""
    pub = MemoryPublisher()
    mem_push(pub, builds.files(builds.build({"orders": 1})))
    pub.fault = fail_on("put", 2)
    with pytest.raises(PublishError):
        mem_push(
            pub, builds.files(builds.build({"orders": 1, "a_new": 1, "b_new": 1})), max_workers=1
        )
    assert "shop__a_new.py" in dag_files(pub)  # uploaded before the failure
    pub.fault = None
    mem_push(pub, builds.files(builds.build({"orders": 1})))
    assert sorted(dag_files(pub)) == ["shop__orders.py"]


def test_failed_claim_uploads_nothing(builds: Builds):
    pub = MemoryPublisher(fault=fail_on("put", 1, key_suffix="state.json"))
    with pytest.raises(PublishError, match="recording ownership before uploading") as info:
        mem_push(pub, builds.files(builds.build(SHOP_BASE)))
    assert info.value.key == STATE
    assert pub.objects == {}


def test_failed_delete_reports_and_rerun_finishes(builds: Builds):
    pub = MemoryPublisher()
    mem_push(pub, builds.files(builds.build(SHOP_BASE)))
    pub.fault = fail_on("delete", 1)
    smaller = builds.files(builds.build({"orders": 1}))
    with pytest.raises(PublishError, match="failed while deleting") as info:
        mem_push(pub, smaller, max_workers=1)
    assert "not deleted: " in str(info.value)
    assert len(owned(pub)) == 4  # the state still owns what is left
    pub.fault = None
    mem_push(pub, smaller)
    assert sorted(dag_files(pub)) == ["shop__orders.py"] and owned(pub) == {"shop__orders.py"}


def test_failed_final_state_write_reports_and_rerun_records(builds: Builds):
    pub = MemoryPublisher()
    mem_push(pub, builds.files(builds.build(SHOP_BASE)))
    pub.fault = fail_on("put", 2, key_suffix="state.json")  # 1 takes the lease, 2 releases it
    smaller = builds.files(builds.build({"orders": 1}))
    with pytest.raises(PublishError, match="every file is published, but recording the state"):
        mem_push(pub, smaller)
    assert sorted(dag_files(pub)) == ["shop__orders.py"]
    pub.fault = None
    result = mem_push(pub, smaller)
    assert result.plan.forgotten == tuple(
        sorted(f"shop__{g}.py" for g in SHOP_BASE if g != "orders")
    )
    assert owned(pub) == {"shop__orders.py"}


class LyingPublisher(MemoryPublisher):
    """Accepts a put but stores other bytes (a store that corrupts or an ETag that is not
    an MD5): verification must catch it before anything is deleted."""

    lie = False

    def put(self, key, data, md5_b64, md5_hex):
        super().put(key, data, md5_b64, md5_hex)
        if self.lie and key.endswith("orders.py"):
            self.etags[key] = "0123456789abcdef0123456789abcdef-1"


def test_verification_failure_deletes_nothing(builds: Builds):
    pub = LyingPublisher()
    mem_push(pub, builds.files(builds.build({"orders": 1, "payments": 1})))
    pub.lie = True
    with pytest.raises(PublishError, match=r"did not verify, nothing deleted: shop__orders\.py"):
        mem_push(pub, builds.files(builds.build({"orders": 2})))
    assert "shop__payments.py" in dag_files(pub)


def test_multipart_object_is_reuploaded_single_part(builds: Builds):
    files = builds.files(builds.build({"orders": 1}))
    pub = MemoryPublisher({PREFIX + name: data for name, data in files.items()})
    pub.etags[PREFIX + "shop__orders.py"] = md5(b"x") + "-3"
    result = mem_push(pub, files)
    assert [(a.name, a.reason) for a in result.plan.uploads] == [("shop__orders.py", NOT_MD5)]
    assert not mem_push(pub, files).plan.has_changes


def test_progress_reports_every_upload_and_deletion(builds: Builds):
    pub = MemoryPublisher()
    mem_push(pub, builds.files(builds.build(SHOP_BASE)))
    seen = []
    mem_push(
        pub,
        builds.files(builds.build({"orders": 2, "new": 1})),
        progress=lambda key, done, total: seen.append((key, done, total)),
    )
    assert [d for _, d, _ in seen] == [1, 2, 3, 4, 5]
    assert {t for _, _, t in seen} == {5}  # 2 uploads + 3 deletions
    assert {k for k, _, _ in seen} == {
        "shop__orders.py",
        "shop__new.py",
        "shop__customers.py",
        "shop__marketing.py",
        "shop__payments.py",
    }


def test_result_text_and_dict(builds: Builds):
    pub = MemoryPublisher({PREFIX + "notes.py": b"x"})
    first = mem_push(pub, builds.files(builds.build(SHOP_BASE)))
    text = first.format_text()
    assert text.splitlines()[0] == "push: s3://bkt/dags/team-a/shop/"
    assert "upload  shop__orders.py" in text and "new" in text
    assert "keep    notes.py" in text and "left alone" in text
    assert "done: 4 uploaded, 0 unchanged, 0 deleted, 1 foreign left alone" in text
    again = mem_push(pub, builds.files(builds.build(SHOP_BASE)))
    assert "up to date: 4 files unchanged, nothing written" in again.format_text()
    d = first.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["applied"]["uploaded"] == sorted(d["applied"]["uploaded"])
    assert (
        d
        == mem_push(
            MemoryPublisher({PREFIX + "notes.py": b"x"}), builds.files(builds.build(SHOP_BASE))
        ).to_dict()
    )


def test_corrupt_state_object_stops_the_push(builds: Builds):
    pub = MemoryPublisher({STATE: b"{oops"})
    with pytest.raises(PublishError, match="not valid JSON; fix or delete it"):
        mem_push(pub, builds.files(builds.build(SHOP_BASE)))
    assert writes(pub) == []


# --------------------------------------------------------------------------- file:// publisher


def test_local_publisher_refuses_keys_that_leave_the_root(tmp_path):
    pub = LocalPublisher(tmp_path)
    for key in ["../x.py", "a/../../x.py", "/etc/x.py", "a//b.py", "", "a/."]:
        with pytest.raises(PublishError, match="not a plain relative path"):
            pub.put(key, b"x", "", md5(b"x"))


def test_local_publisher_writes_atomically_and_checks_md5(tmp_path):
    pub = LocalPublisher(tmp_path)
    pub.put("a/b.py", b"hello", "", md5(b"hello"))
    assert (tmp_path / "a" / "b.py").read_bytes() == b"hello"
    with pytest.raises(PublishError, match="does not match"):
        pub.put("a/b.py", b"other", "", md5(b"hello"))
    assert (tmp_path / "a" / "b.py").read_bytes() == b"hello"
    (tmp_path / "a" / ".b.py.1234.dagfactory-tmp").write_bytes(b"half")
    assert pub.list("a/") == {"a/b.py": RemoteObject(md5(b"hello"), 5)}
    assert pub.list("a/b") == {"a/b.py": RemoteObject(md5(b"hello"), 5)}
    assert pub.list("zzz/") == {}
    pub.delete("a/b.py")
    pub.delete("a/b.py")  # missing is fine, as in S3
    assert pub.get("a/b.py") is None


def test_file_url_push_end_to_end(builds: Builds, tmp_path):
    bucket = tmp_path / "bucket"
    url = bucket.as_uri() + "/"
    (bucket / "team-ab" / "shop").mkdir(parents=True)
    (bucket / "team-ab" / "shop" / "shop__orders.py").write_text("team-ab's\n")
    first = push(builds.build(SHOP_BASE), url)
    assert len(first.plan.uploads) == 4
    assert not push(builds.build(SHOP_BASE), url).plan.has_changes
    assert len(push(builds.build(SHOP_ONE_MODEL_CHANGED), url).plan.uploads) == 1
    last = push(builds.build(SHOP_GROUP_REMOVED), url)
    assert [d.name for d in last.plan.deletions] == ["shop__marketing.py"]
    assert sorted(p.name for p in (bucket / "team-a" / "shop").glob("*.py")) == sorted(
        f"shop__{g}.py" for g in SHOP_GROUP_REMOVED
    )
    assert (bucket / "team-ab" / "shop" / "shop__orders.py").read_text() == "team-ab's\n"


def test_file_url_dry_run_creates_nothing(builds: Builds, tmp_path):
    result = push(builds.build(SHOP_BASE), (tmp_path / "bucket").as_uri(), dry_run=True)
    assert len(result.plan.uploads) == 4 and not (tmp_path / "bucket").exists()


# --------------------------------------------------------------------------- property

NAMES = [f"dag_{i}.py" for i in range(6)]
builds_st = st.dictionaries(st.sampled_from(NAMES), st.integers(0, 2), max_size=6)
faults_st = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(["put", "delete"]),
        st.integers(1, 4),
        st.sampled_from([".py", "state.json"]),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(st.tuples(builds_st, faults_st), min_size=1, max_size=6),
    foreign=st.dictionaries(
        st.sampled_from(["notes.py", "x/y.py", "dag_0.txt"]), st.binary(max_size=8), max_size=3
    ),
)
def test_any_sequence_of_pushes_and_faults_converges(steps, foreign):
    outside = {"dags/team-ab/shop/dag_0.py": b"sibling", "dags/team-a/shopx/dag_1.py": b"x"}
    untouchable = {**outside, **{PREFIX + k: v for k, v in foreign.items()}}
    pub = MemoryPublisher(untouchable)
    ever_built: set[str] = set()
    for revs, fault in steps:
        files = {name: f"# {name} rev {rev}\n".encode() for name, rev in revs.items()}
        ever_built |= set(files)
        pub.fault = None if fault is None else fail_on(fault[0], fault[1], key_suffix=fault[2])
        before, owned_before = dict(pub.objects), owned(pub) or set()
        try:
            mem_push(pub, files, max_workers=2, allow_empty=True)
        except PublishError:
            deleted = {k[len(PREFIX) :] for k in before if k not in pub.objects}
            # only files this project owned and no longer builds can be gone ...
            assert deleted <= owned_before - set(files)
            # ... and none at all if an upload failed
            if fault is not None and fault[0] == "put" and fault[2] == ".py":
                assert deleted == set()
        # whatever happened, foreign keys are untouched
        assert {k: pub.objects.get(k) for k in untouchable} == untouchable
        pub.fault = None
        mem_push(pub, files, allow_empty=True)  # the rerun converges ...
        assert dag_files(pub) == {**files, **foreign}
        assert owned(pub) == set(files)
        plan = mem_push(pub, files, dry_run=True).plan  # ... to a fixed point
        assert not plan.has_changes
    assert set(dag_files(pub)) - set(foreign) <= ever_built


def test_an_empty_build_deletes_nothing_unless_allowed(builds: Builds):
    pub = MemoryPublisher()
    mem_push(pub, builds.files(builds.build(SHOP_BASE)))
    before = dict(pub.objects)
    pub.calls.clear()
    with pytest.raises(PublishError, match=r"no DAG files, so this push would delete all 4 files"):
        mem_push(pub, {})
    assert writes(pub) == [] and pub.objects == before
    mem_push(pub, {}, allow_empty=True)
    assert dag_files(pub) == {} and owned(pub) == set()
