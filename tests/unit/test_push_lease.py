"""Two pushes of one project at once, in memory: the lease taken with a conditional write of
the state object serialises them, a lost write is retried, and a dead holder is taken over.
The same behaviours against real S3 servers: tests/integration/s3/test_push_concurrency.py.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from dagfactory.errors import PublishError, PushConflictError
from dagfactory.publish import (
    Lease,
    MemoryPublisher,
    decode_state_doc,
    encode_state,
    parse_target,
    run_push,
)

TARGET = parse_target("s3://bkt/dags/", "team-a", "shop")
PREFIX = TARGET.prefix
STATE = TARGET.state_key


def build(**revs: int) -> dict[str, bytes]:
    return {f"{name}.py": f"# {name} rev {rev}\n".encode() for name, rev in revs.items()}


def dag_files(pub: MemoryPublisher) -> dict[str, bytes]:
    return {k[len(PREFIX) :]: v for k, v in pub.objects.items() if k != STATE}


def state(pub: MemoryPublisher) -> tuple[frozenset[str], Lease | None]:
    return decode_state_doc(pub.objects[STATE], key=STATE, team="team-a", project="shop")


def dead_pid() -> int:
    """A pid no process can have: above the kernel's limit."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def test_a_push_waits_while_another_holds_the_lease_then_replaces_its_build():
    pub = MemoryPublisher()
    run_push(pub, TARGET, build(orders=0, legacy=0))
    a, b = build(orders=1, customers=1), build(orders=2, finance=2)
    reached, go_on = threading.Event(), threading.Event()

    def pause(step: str) -> None:
        if step == "uploaded":
            reached.set()
            go_on.wait(timeout=30)

    thread_a = threading.Thread(target=lambda: run_push(pub, TARGET, a, checkpoint=pause))
    thread_a.start()
    assert reached.wait(timeout=30)
    thread_b = threading.Thread(target=lambda: run_push(pub, TARGET, b))
    thread_b.start()
    thread_b.join(timeout=0.5)
    assert thread_b.is_alive()  # B waits: A holds the lease
    assert dag_files(pub) == {**a, "legacy.py": build(legacy=0)["legacy.py"]}
    go_on.set()
    thread_a.join(timeout=30)
    thread_b.join(timeout=30)
    assert dag_files(pub) == b
    assert state(pub) == (frozenset(b), None)


def test_a_lost_conditional_write_is_read_again_and_the_later_push_wins():
    """A reads the state, B pushes whole, A's conditional write then fails: A reads again."""
    pub = MemoryPublisher()
    run_push(pub, TARGET, build(orders=0, legacy=0))
    a, b = build(orders=1, customers=1), build(orders=2, finance=2)
    raced = []

    def b_first(op: str, key: str, n: int):
        if op == "put" and key == STATE and not raced:
            raced.append(key)
            run_push(pub, TARGET, b)  # between A's read and A's write
        return None

    pub.fault = b_first
    result = run_push(pub, TARGET, a)
    assert raced and dag_files(pub) == a
    assert state(pub) == (frozenset(a), None)
    # A planned after B had finished: B's files that A does not build were deleted
    assert [d.name for d in result.plan.deletions] == ["finance.py"]


def test_a_lease_left_by_a_dead_process_on_this_machine_is_taken_over_at_once():
    holder = Lease("dead", socket.gethostname(), dead_pid(), "2026-12-01T00:00:00Z")
    pub = MemoryPublisher({STATE: encode_state("team-a", "shop", ["old.py"], holder)})
    pub.objects[PREFIX + "old.py"] = b"# old\n"
    run_push(pub, TARGET, build(orders=1), lease_seconds=3600)
    assert dag_files(pub) == build(orders=1)
    assert state(pub) == (frozenset({"orders.py"}), None)


def test_a_lease_of_another_machine_is_taken_over_once_nobody_changed_it_for_the_lease_time():
    """Its holder may still be alive: what it claimed and we did not delete stays owned, in
    case it uploads it later; the next push deletes it or forgets it."""
    holder = Lease("elsewhere", "another-host", 1, "2026-12-01T00:00:00Z")
    claim = ["old.py", "theirs_in_flight.py"]
    pub = MemoryPublisher({STATE: encode_state("team-a", "shop", claim, holder)})
    pub.objects[PREFIX + "old.py"] = b"# old\n"
    run_push(pub, TARGET, build(orders=1), lease_seconds=0.2)
    assert dag_files(pub) == build(orders=1)
    assert state(pub) == (frozenset({"orders.py", "theirs_in_flight.py"}), None)
    result = run_push(pub, TARGET, build(orders=1))
    assert result.plan.forgotten == ("theirs_in_flight.py",)
    assert state(pub) == (frozenset({"orders.py"}), None)


def test_a_push_whose_lease_was_taken_over_deletes_nothing():
    pub = MemoryPublisher()
    run_push(pub, TARGET, build(orders=0, legacy=0))

    def taken_over(step: str) -> None:
        if step == "uploaded":  # someone else's push takes the lease now
            stolen = Lease("thief", "another-host", 1, "2026-12-01T00:00:00Z")
            pub.objects[STATE] = encode_state("team-a", "shop", ["legacy.py"], stolen)

    with pytest.raises(PushConflictError, match="took over this push's lease"):
        run_push(pub, TARGET, build(orders=1), checkpoint=taken_over)
    assert "legacy.py" in dag_files(pub) and pub.count("delete") == 0
    assert state(pub)[1].id == "thief"  # and the other push's lease is left alone


def test_an_unchanged_push_takes_no_lease():
    pub = MemoryPublisher()
    run_push(pub, TARGET, build(orders=1))
    pub.calls.clear()
    run_push(pub, TARGET, build(orders=1))
    assert pub.count("put") == 0 and pub.count("delete") == 0


def test_a_failed_push_releases_its_lease_keeping_its_claim():
    pub = MemoryPublisher()
    run_push(pub, TARGET, build(orders=0))

    def fail_upload(op: str, key: str, n: int):
        if op == "put" and key.endswith("customers.py"):
            return PublishError("injected", key=key)
        return None

    pub.fault = fail_upload
    with pytest.raises(PublishError, match="nothing deleted"):
        run_push(pub, TARGET, build(orders=1, customers=1), max_workers=1)
    assert state(pub) == (frozenset({"orders.py", "customers.py"}), None)


def test_foreign_keys_are_listed_on_one_line_each():
    pub = MemoryPublisher({PREFIX + "x\nerror: forged.py": b"x", PREFIX + "y\x1b]0;t\x07": b"y"})
    text = run_push(pub, TARGET, build(orders=1)).format_text()
    assert len(text.splitlines()) == 6  # header, upload, keep, keep, summary, first push
    assert not any(line.startswith("error") for line in text.splitlines())
    assert "x\\nerror: forged.py" in text and "\x1b" not in text and "\x07" not in text


def test_the_command_line_lease_time_defaults_to_the_library_one_and_reaches_the_push(
    tmp_path: Path,
):
    from click.testing import CliRunner
    from s3servers import Builds

    from dagfactory.cli import cli
    from dagfactory.publish import DEFAULT_LEASE_SECONDS

    params = {p.name: p for p in cli.commands["push"].params}
    assert params["lease_seconds"].default == DEFAULT_LEASE_SECONDS
    state = tmp_path / "bucket" / "team-a" / "shop" / ".dagfactory" / "state.json"
    state.parent.mkdir(parents=True)
    holder = Lease("elsewhere", "another-host", 1, "2026-12-01T00:00:00Z")
    state.write_bytes(encode_state("team-a", "shop", [], holder))
    out = Builds(tmp_path / "builds").build({"orders": 1})
    url = (tmp_path / "bucket").as_uri() + "/"
    result = CliRunner().invoke(cli, ["push", str(out), url, "--lease-seconds", "0.2"])
    assert result.exit_code == 0, result.output
    assert "done: 1 uploaded" in result.output
