"""Two pushes of one project at once, against real S3 server processes (moto_server and
SeaweedFS on 127.0.0.1): the state object is taken with conditional writes, so one push waits
for the other, a push that outlived its lease deletes nothing, and no file is ever left that
no state owns.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from s3servers import Builds, S3Backend

from dagfactory.errors import PushConflictError
from dagfactory.publish import decode_state_doc, md5_pair, push

pytestmark = pytest.mark.s3server

PREFIX = "dags/team-a/shop/"
STATE = PREFIX + ".dagfactory/state.json"
#: Two builds of one project that share some DAGs and differ in others, so whichever push
#: comes second must replace, add and delete.
BUILD_A = {"customers": 1, "orders": 1, "payments": 1, "marketing": 1}
BUILD_B = {"orders": 2, "payments": 2, "finance": 2, "returns": 2}


def dag_files(backend: S3Backend, bucket: str) -> dict[str, bytes]:
    return {k[len(PREFIX) :]: v for k, v in backend.snapshot(bucket, PREFIX).items() if k != STATE}


def state_of(backend: S3Backend, bucket: str):
    data = backend.snapshot(bucket, STATE)[STATE]
    return decode_state_doc(data, key=STATE, team="team-a", project="shop")


def test_the_servers_write_the_state_only_over_the_etag_it_was_read_with(s3_backend: S3Backend):
    """What docs/push.md's table says: a lost condition is a PushConflictError, not a write."""
    from dagfactory._s3 import S3Publisher

    pub = S3Publisher(s3_backend.new_bucket(), endpoint_url=s3_backend.endpoint_url)
    one, two = b'{"n": 1}', b'{"n": 2}'
    md5s = {data: md5_pair(data) for data in (one, two)}
    with pytest.raises(PushConflictError):  # If-Match on a key that does not exist
        pub.swap(STATE, one, md5s[one][1], md5s[one][0], '"0123456789abcdef0123456789abcdef"')
    etag = pub.swap(STATE, one, md5s[one][1], md5s[one][0], None)
    with pytest.raises(PushConflictError):  # If-None-Match: * on a key that exists
        pub.swap(STATE, two, md5s[two][1], md5s[two][0], None)
    assert pub.read(STATE) == (one, etag)
    newer = pub.swap(STATE, two, md5s[two][1], md5s[two][0], etag)
    with pytest.raises(PushConflictError):  # If-Match with the ETag before that write
        pub.swap(STATE, one, md5s[one][1], md5s[one][0], etag)
    assert pub.read(STATE) == (two, newer)


class Paused:
    """A push checkpoint that stops push A at one step until the test lets it go on."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.reached = threading.Event()
        self.go_on = threading.Event()

    def __call__(self, step: str) -> None:
        if step == self.step:
            self.reached.set()
            assert self.go_on.wait(timeout=60)


def in_thread(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # handed to the test thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


@dataclass
class Race:
    """Push A of BUILD_A, paused after its uploads, over an earlier build; B is BUILD_B."""

    bucket: str
    url: str
    endpoint: str
    out_a: Path
    out_b: Path
    paused: Paused
    thread_a: threading.Thread
    a: dict


def start_race(s3_backend: S3Backend, builds: Builds) -> Race:
    bucket = s3_backend.new_bucket()
    url, endpoint = f"s3://{bucket}/dags/", s3_backend.endpoint_url
    push(builds.build({"orders": 0, "legacy": 0}), url, endpoint_url=endpoint)
    out_a, out_b = builds.build(BUILD_A), builds.build(BUILD_B)
    paused = Paused("uploaded")
    thread_a, a = in_thread(lambda: push(out_a, url, endpoint_url=endpoint, checkpoint=paused))
    assert paused.reached.wait(timeout=30)
    return Race(bucket, url, endpoint, out_a, out_b, paused, thread_a, a)


def test_a_second_push_waits_for_the_first_and_then_wins(s3_backend: S3Backend, builds: Builds):
    race = start_race(s3_backend, builds)
    bucket, url, endpoint = race.bucket, race.url, race.endpoint
    out_a, out_b, paused, thread_a, a = race.out_a, race.out_b, race.paused, race.thread_a, race.a
    thread_b, b = in_thread(lambda: push(out_b, url, endpoint_url=endpoint))
    time.sleep(1.5)
    assert thread_b.is_alive()  # B waits for A's lease ...
    assert set(dag_files(s3_backend, bucket)) == set(builds.files(out_a)) | {"shop__legacy.py"}

    paused.go_on.set()
    thread_a.join(timeout=60)
    thread_b.join(timeout=60)
    assert "error" not in a and "error" not in b, (a, b)
    # ... and then replaces A's build whole: B's files, B's bytes, nothing else, all owned
    assert dag_files(s3_backend, bucket) == builds.files(out_b)
    assert state_of(s3_backend, bucket) == (frozenset(builds.files(out_b)), None)
    assert sorted(d.name for d in b["result"].plan.deletions) == [
        "shop__customers.py",
        "shop__marketing.py",
    ]


def test_a_push_that_outlived_its_lease_deletes_nothing(s3_backend: S3Backend, builds: Builds):
    race = start_race(s3_backend, builds)
    bucket, url, endpoint = race.bucket, race.url, race.endpoint
    out_b, paused, thread_a, a = race.out_b, race.paused, race.thread_a, race.a
    # B finds A's lease unchanged for longer than its lease time and takes it over
    push(out_b, url, endpoint_url=endpoint, lease_seconds=0.5)
    assert dag_files(s3_backend, bucket) == builds.files(out_b)

    s3_backend.proxy.reset()
    paused.go_on.set()
    thread_a.join(timeout=60)
    assert isinstance(a.get("error"), PushConflictError), a
    assert "took over this push's lease" in str(a["error"])
    assert s3_backend.proxy.count("DELETE") == 0 and s3_backend.proxy.count("PUT") == 0
    assert dag_files(s3_backend, bucket) == builds.files(out_b)
    owned, lease = state_of(s3_backend, bucket)
    assert lease is None and set(dag_files(s3_backend, bucket)) <= owned


#: A real `dagfactory push` process that loads its libraries first and then waits for a
#: start file, so the two pushes of a round really run at the same time (loading boto3 takes
#: seconds on a busy machine, longer than a push).
STARTER = """
import os, sys, time
import boto3, dagfactory.cli, dagfactory._s3
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.002)
dagfactory.cli.main(sys.argv[2:])
"""


def push_process(go: Path, out: Path, url: str, endpoint: str) -> subprocess.Popen:
    argv = ["push", str(out), url, "--endpoint-url", endpoint]
    return subprocess.Popen(  # the test credentials: s3_backend's aws_test_env set them
        [sys.executable, "-c", STARTER, str(go), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_concurrent_push_processes_leave_every_file_owned(
    s3_backend: S3Backend, builds: Builds, tmp_path: Path
):
    """Issue #13's done-criterion: two `dagfactory push` processes of different builds of one
    project, started together, 20 times: each round ends with exactly one build in the
    bucket, every file owned by the state, and no file of that build deleted."""
    bucket = s3_backend.new_bucket()
    url, endpoint = f"s3://{bucket}/dags/", s3_backend.endpoint_url
    contended = 0
    for round_ in range(20):
        out_a = builds.build({g: round_ for g in BUILD_A})
        out_b = builds.build({g: round_ + 100 for g in BUILD_B})
        go = tmp_path / f"go-{round_}"
        procs = [push_process(go, out, url, endpoint) for out in (out_a, out_b)]
        time.sleep(0.2)
        s3_backend.proxy.reset()
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        files = dag_files(s3_backend, bucket)
        owned, lease = state_of(s3_backend, bucket)
        assert lease is None
        assert set(files) == owned, f"round {round_}: unowned {set(files) - owned}"
        winner = [b for b in (builds.files(out_a), builds.files(out_b)) if b == files]
        assert winner, f"round {round_}: the bucket holds neither build whole: {sorted(files)}"
        # a push that found the other's lease re-read the state while waiting, or lost a
        # conditional write: more than the 3 reads of the state each push makes alone
        state_reads = [s for s in s3_backend.proxy.requests("GET") if s.key == STATE]
        lost = [s for s in s3_backend.proxy.requests("PUT") if s.status == 412]
        contended += len(state_reads) > 6 or bool(lost)
    assert contended >= 10, f"only {contended} of 20 rounds had the pushes overlap"
