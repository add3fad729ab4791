"""A stalled S3 endpoint fails a push quickly, with a one-line error, and deletes nothing."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from tests_paths import SHOP

from dagfactory import PublishError, build, load_config
from dagfactory import _s3 as s3

pytest.importorskip("boto3")


@pytest.fixture
def stalled_endpoint():
    """A server on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def test_the_defaults_bound_a_stalled_push_to_about_a_minute():
    worst = s3.DEFAULT_MAX_ATTEMPTS * (s3.CONNECT_TIMEOUT_S + s3.READ_TIMEOUT_S)
    assert worst <= 60


def test_a_stalled_endpoint_fails_within_attempts_times_the_read_timeout(
    stalled_endpoint, tmp_path, monkeypatch
):
    from dagfactory.publish import push

    monkeypatch.setattr(s3, "READ_TIMEOUT_S", 1)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    out = tmp_path / "dags"
    build(SHOP / "manifest.json", out, load_config(None, {"routing.force": "celery"}))
    started = time.monotonic()
    with pytest.raises(PublishError) as error:
        push(out, "s3://bucket/dags/", endpoint_url=stalled_endpoint)
    assert time.monotonic() - started < 20
    assert "\n" not in error.value.format_message()
