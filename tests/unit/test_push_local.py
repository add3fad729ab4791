"""The file:// publisher: links below the root are never followed, temp files of an
interrupted push are cleaned up, and the state object is compared and swapped under a lock.
A real kill of a push process: tests/integration/s3/test_push_local_kill.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from s3servers import SHOP_BASE, Builds

from dagfactory.errors import PublishError, PushConflictError
from dagfactory.publish import LocalPublisher, RemoteObject, push


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("linked", ["team-a", "team-a/shop"], ids=["team folder", "project folder"])
def test_a_linked_folder_below_the_root_is_refused_and_nothing_lands_outside(
    builds: Builds, tmp_path: Path, linked: str
):
    root, outside = tmp_path / "bucket", tmp_path / "outside"
    outside.mkdir()
    link = root / linked
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(PublishError, match=r"is a symbolic link; a push never follows links"):
        push(builds.build(SHOP_BASE), root.as_uri() + "/")
    assert list(outside.iterdir()) == []


def test_the_root_itself_may_be_a_link(builds: Builds, tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "bucket").symlink_to(real, target_is_directory=True)
    push(builds.build(SHOP_BASE), (tmp_path / "bucket").as_uri() + "/")
    assert len(list((real / "team-a" / "shop").glob("*.py"))) == len(SHOP_BASE)


def test_a_linked_dag_file_is_replaced_never_written_through(builds: Builds, tmp_path: Path):
    root, secret = tmp_path / "bucket", tmp_path / "secret.txt"
    secret.write_text("do not touch\n")
    project = root / "team-a" / "shop"
    project.mkdir(parents=True)
    (project / "shop__orders.py").symlink_to(secret)
    result = push(builds.build(SHOP_BASE), root.as_uri() + "/")
    assert [a.reason for a in result.plan.uploads if a.name == "shop__orders.py"] == [
        "remote ETag is not an MD5 (multipart upload?)"
    ]
    assert not (project / "shop__orders.py").is_symlink()
    assert secret.read_text() == "do not touch\n"


def test_temp_files_of_an_interrupted_push_are_removed_by_the_next_push(
    builds: Builds, tmp_path: Path
):
    root = tmp_path / "bucket"
    project = root / "team-a" / "shop"
    project.mkdir(parents=True)
    debris = project / ".shop__orders.py.1a2b3c4d.dagfactory-tmp"
    debris.write_bytes(b"half a DAG")
    assert not debris.name.endswith(".py")  # Airflow never parses one
    result = push(builds.build(SHOP_BASE), root.as_uri() + "/")
    assert result.plan.foreign == ()  # never listed as an object
    assert not debris.exists()
    assert not [p for p in root.rglob("*") if p.name.endswith(".dagfactory-tmp")]


def test_swap_writes_only_over_the_etag_it_was_given(tmp_path: Path):
    pub = LocalPublisher(tmp_path)
    one, two = b"one", b"two"
    etag = pub.swap("p/.dagfactory/state.json", one, "", md5(one), None)
    with pytest.raises(PushConflictError, match="created by someone else"):
        pub.swap("p/.dagfactory/state.json", two, "", md5(two), None)
    with pytest.raises(PushConflictError, match="changed by someone else"):
        pub.swap("p/.dagfactory/state.json", two, "", md5(two), md5(b"stale"))
    assert pub.read("p/.dagfactory/state.json") == (one, etag)
    pub.swap("p/.dagfactory/state.json", two, "", md5(two), etag)
    assert pub.get("p/.dagfactory/state.json") == two
    # the lock file beside it is never an object
    assert pub.list("p/") == {"p/.dagfactory/state.json": RemoteObject(md5(two), 3)}
