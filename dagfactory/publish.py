"""Push a build folder to the bucket Airflow syncs from: changed files only, safe at every moment.

objinsync, beside every scheduler and worker, mirrors a bucket prefix into the DAG folder every
few seconds, downloading an object when its ETag differs from the local file's MD5 and deleting
local files whose object vanished. So a push:

* writes only ``<prefix>/<team>/<project>/`` (trailing slash always: ``team-a`` must never
  match ``team-ab/``), and only the files the build lists;
* uploads only new or changed files (local MD5 vs remote ETag), each as one single-part
  ``PutObject`` with ``Content-MD5`` so the ETag *is* the MD5 and objinsync downloads it once;
* uploads first, verifies, and deletes last, so a DAG is never missing in between;
* deletes only files this project wrote before (recorded in a state object) that the build no
  longer has, never a file somebody else put under the prefix.

Pipeline: :func:`read_build` → :func:`parse_target` → list + read state → :func:`plan_push`
(pure) → :func:`apply_plan` (through the :class:`Publisher` interface, no boto3 here).

The state object
----------------
``<prefix>/<team>/<project>/.dagfactory/state.json`` lists the file *names* this project owns.
Airflow never parses ``.json`` files (only ``.py`` and zip archives) and the folder is a hidden
one, so it is harmless in the DAG folder; the README gives the objinsync ``--exclude`` and
``.airflowignore`` lines that keep it out anyway. It holds names only, not MD5s: the bucket
already keeps each object's MD5 as its ETag, and a second copy would cost a second PUT on
every content change and could drift from the truth.

Its write order is what makes every failure safe and every rerun converge:

1. *acquire*: a push that changes anything first writes ``state := before ∪ build`` plus a
   *lease* naming the push, as a conditional write (``If-Match`` the ETag it read, or
   ``If-None-Match: *`` when there is none). Two pushes of one project cannot both succeed
   at this; the loser re-reads and waits until the lease is released (or is dead), so pushes
   of one project run one at a time. A file is never in the bucket without being owned, so
   a run that dies after uploading it cannot leave an orphan that a later build could not
   delete;
2. list again (under the lease), plan, upload, then verify (every build file's ETag must
   equal its MD5);
3. check that the lease is still ours, then delete what the state owns and the build dropped;
4. release: write ``state := build`` without the lease, conditional on our own ETag.

A failure at any step raises :class:`PublishError` and runs no later step, so nothing is
deleted unless every upload was verified; the push then releases the lease keeping the
claim. The state then owns a superset of what exists remotely, which the next plan
resolves: owned names still built are uploaded or unchanged, owned names no longer built are
deleted if present and forgotten if not. docs/push.md walks through the interleavings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from dagfactory._publishers import (
    LocalPublisher,
    MemoryPublisher,
    Publisher,
    RemoteObject,
    md5_of_etag,
)
from dagfactory.buildfolder import BUILD_MARKER, read_build_folder
from dagfactory.config import validate_slug
from dagfactory.errors import ConfigError, PublishError, PushConflictError, one_line

__all__ = [
    "BUILD_MARKER",
    "STATE_NAME",
    "Applied",
    "Build",
    "FileAction",
    "Lease",
    "LocalPublisher",
    "MemoryPublisher",
    "Publisher",
    "PushPlan",
    "PushResult",
    "RemoteObject",
    "Target",
    "apply_plan",
    "decode_state",
    "encode_state",
    "md5_of_etag",
    "open_publisher",
    "parse_target",
    "plan_push",
    "push",
    "read_build",
    "run_push",
    "validate_slug",
]

STATE_NAME = ".dagfactory/state.json"
STATE_FORMAT = 1
URL_SCHEMES = ("s3://bucket/prefix/", "file:///absolute/path/")
DEFAULT_MAX_WORKERS = 8
#: A lease nobody changed for this long, as watched by a waiting push, is taken over: its push
#: died on another machine. A push must finish within it (2,000 files take well under a minute).
DEFAULT_LEASE_SECONDS = 300.0
LEASE_POLL_SECONDS = (0.05, 0.4)  # a waiting push re-reads the state this often (random)
FOREIGN_LINES = 10  # format_text lists at most this many foreign objects

#: a DAG file, or the build summary ``<project>.dagfactory.json`` (dagfactory.preview)
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\.(py|dagfactory\.json)")

Progress = Callable[[str, int, int], None]
Checkpoint = Callable[[str], None]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Target:
    """Where a project's files go: ``<base><team>/<project>/`` in a bucket or a folder."""

    scheme: str  # "s3" or "file"
    bucket: str  # the S3 bucket, or the absolute root folder for file://
    base: str  # normalised prefix from the URL: "" or "some/prefix/"
    team: str
    project: str

    @property
    def prefix(self) -> str:
        """The project's key prefix, always ending in exactly one slash."""
        return f"{self.base}{self.team}/{self.project}/"

    @property
    def state_key(self) -> str:
        return self.prefix + STATE_NAME

    @property
    def url(self) -> str:
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.prefix}"
        return Path(self.bucket, self.prefix).as_uri() + "/"


def _normalise_prefix(raw: str, url: str) -> str:
    path = raw.strip("/")
    if not path:
        return ""
    for segment in path.split("/"):
        if segment in ("", ".", "..") or segment != segment.strip():
            raise ConfigError(
                f"prefix {raw!r} in {url!r} has an empty, '.', '..' or space-padded segment",
                key="url",
            )
    return path + "/"


def parse_target(url: str, team: str, project: str) -> Target:
    """Validate the URL and the slugs; normalise the prefix to end with exactly one ``/``."""
    team = validate_slug(team, "team")
    project = validate_slug(project, "project")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("s3", "file"):
        raise ConfigError(
            f"unsupported push URL {url!r}; use one of: {', '.join(URL_SCHEMES)}", key="url"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"push URL {url!r} must not have a query or fragment", key="url")
    if scheme == "s3":
        bucket = parts.netloc
        if not bucket or any(c.isspace() for c in bucket) or "@" in bucket:
            raise ConfigError(f"push URL {url!r} names no valid bucket", key="url")
        return Target("s3", bucket, _normalise_prefix(unquote(parts.path), url), team, project)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(
            f"file URL {url!r} must be absolute, like file:///srv/dags/ (three slashes)",
            key="url",
        )
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise ConfigError(f"file URL {url!r} must name an absolute path", key="url")
    root = "/" + _normalise_prefix(path, url)
    return Target("file", root.rstrip("/") or "/", "", team, project)


@dataclass(frozen=True)
class Build:
    """What ``dagfactory build --out DIR`` produced: the listed files and whom they are for."""

    path: Path
    team: str | None
    project: str | None
    version: str | None
    files: Mapping[str, bytes] = field(repr=False)


def read_build(out_dir: str | Path) -> Build:
    """Exactly the files the marker lists, as the build wrote them (see ``buildfolder``)."""
    out = Path(out_dir)
    marker, files = read_build_folder(out)
    return Build(out, marker.team, marker.project, marker.version, files)


# --------------------------------------------------------------------------- state object


@dataclass(frozen=True)
class Lease:
    """Which push holds a project while it changes it. ``host`` and ``pid`` let a push on the
    same machine see at once that the holder died; ``since`` is for people reading it."""

    id: str
    host: str
    pid: int
    since: str

    @classmethod
    def new(cls) -> Lease:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return cls(secrets.token_hex(8), socket.gethostname(), os.getpid(), now)

    def describe(self) -> str:
        return one_line(f"push {self.id} (host {self.host}, pid {self.pid}, since {self.since})")


def encode_state(
    team: str, project: str, names: Iterable[str], lease: Lease | None = None
) -> bytes:
    """Deterministic bytes (sorted, no clock) once released, so an unchanged state is never
    rewritten; a lease is present only while a push runs."""
    doc: dict[str, Any] = {
        "files": sorted(set(names)),
        "format": STATE_FORMAT,
        "generator": "dagfactory",
        "project": project,
        "team": team,
    }
    if lease is not None:
        doc["lease"] = {"host": lease.host, "id": lease.id, "pid": lease.pid, "since": lease.since}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def decode_state(data: bytes, *, key: str, team: str, project: str) -> frozenset[str]:
    """The owned names; anything odd is an error, because ownership decides deletions."""
    return decode_state_doc(data, key=key, team=team, project=project)[0]


def decode_state_doc(
    data: bytes, *, key: str, team: str, project: str
) -> tuple[frozenset[str], Lease | None]:
    """The owned names and the lease, if a push holds one."""
    hint = "; fix or delete it (the next push then deletes nothing and re-records ownership)"
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise PublishError(f"the state object is not valid JSON{hint}", key=key) from exc
    if not isinstance(doc, dict) or doc.get("generator") != "dagfactory":
        raise PublishError(f"the state object was not written by dagfactory{hint}", key=key)
    if doc.get("format") != STATE_FORMAT:
        raise PublishError(
            f"the state object has format {doc.get('format')!r}; this dagfactory reads "
            f"format {STATE_FORMAT}",
            key=key,
        )
    if doc.get("team") != team or doc.get("project") != project:
        raise PublishError(
            f"the state object belongs to team {doc.get('team')!r}, project "
            f"{doc.get('project')!r}, not {team!r}, {project!r}{hint}",
            key=key,
        )
    names = doc.get("files")
    if not isinstance(names, list) or not all(
        isinstance(n, str) and _FILE_NAME.fullmatch(n) for n in names
    ):
        raise PublishError(f"the state object's 'files' is not a list of file names{hint}", key=key)
    raw = doc.get("lease")
    if raw is None:
        return frozenset(names), None
    if not (
        isinstance(raw, dict)
        and all(isinstance(raw.get(k), str) for k in ("id", "host", "since"))
        and type(raw.get("pid")) is int
    ):
        raise PublishError(f"the state object's 'lease' is malformed{hint}", key=key)
    return frozenset(names), Lease(raw["id"], raw["host"], raw["pid"], raw["since"])


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class FileAction:
    """One file in the plan. ``md5`` is the local MD5 for uploads and unchanged files, the
    remote one (None if its ETag is not an MD5) for deletions and foreign objects."""

    name: str  # relative to the project prefix: "orders.py"
    key: str  # the full object key
    size: int
    md5: str | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "size": self.size,
            "md5": self.md5,
            "reason": self.reason,
        }


#: Why a file is uploaded.
NEW, CHANGED, NOT_MD5 = "new", "changed", "remote ETag is not an MD5 (multipart upload?)"
#: Why a file is deleted / left alone.
DROPPED = "written by this project before, no longer built"
FOREIGN = "not written by this project, left alone"


@dataclass(frozen=True)
class PushPlan:
    """What a push will do, computed before it does anything; all tuples sorted by name."""

    target: str
    team: str
    project: str
    prefix: str
    state_key: str
    uploads: tuple[FileAction, ...]
    unchanged: tuple[FileAction, ...]
    deletions: tuple[FileAction, ...]
    foreign: tuple[FileAction, ...]
    owned_before: tuple[str, ...] | None  # None: no state object yet (first push)
    owned_after: tuple[str, ...]

    @property
    def has_changes(self) -> bool:
        """True if applying the plan writes anything (files or the state object)."""
        return bool(self.uploads or self.deletions) or self.owned_before != self.owned_after

    @property
    def forgotten(self) -> tuple[str, ...]:
        """Names the state owned that are neither built nor present any more."""
        gone = set(self.owned_before or ()) - set(self.owned_after)
        return tuple(sorted(gone - {d.name for d in self.deletions}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "team": self.team,
            "project": self.project,
            "prefix": self.prefix,
            "state_key": self.state_key,
            "uploads": [a.to_dict() for a in self.uploads],
            "unchanged": [a.to_dict() for a in self.unchanged],
            "deletions": [a.to_dict() for a in self.deletions],
            "foreign": [a.to_dict() for a in self.foreign],
            "owned_before": None if self.owned_before is None else list(self.owned_before),
            "owned_after": list(self.owned_after),
            "counts": {
                "uploads": len(self.uploads),
                "unchanged": len(self.unchanged),
                "deletions": len(self.deletions),
                "foreign": len(self.foreign),
            },
        }


def md5_pair(data: bytes) -> tuple[str, str]:
    """(hex, base64) MD5: hex to compare with ETags, base64 for the Content-MD5 header."""
    digest = hashlib.md5(data).digest()
    return digest.hex(), base64.b64encode(digest).decode("ascii")


def plan_push(
    local: Mapping[str, bytes],
    remote: Mapping[str, RemoteObject],
    owned: Iterable[str] | None,
    *,
    prefix: str,
    team: str,
    project: str,
    target: str = "",
) -> PushPlan:
    """Compare the build with the listing under ``prefix`` and the previous state.

    Pure: ``local`` is name -> bytes, ``remote`` is full key -> object (keys outside the prefix
    are ignored), ``owned`` the names the state object lists (None if there is none).
    """
    if not prefix.endswith("/"):
        raise ValueError(f"prefix must end with '/': {prefix!r}")
    owned_set = None if owned is None else frozenset(owned)
    state_key = prefix + STATE_NAME
    listing = {
        key[len(prefix) :]: obj
        for key, obj in remote.items()
        if key.startswith(prefix) and key != state_key
    }
    uploads, unchanged, deletions, foreign = [], [], [], []
    for name in sorted(local):
        data = local[name]
        md5 = hashlib.md5(data).hexdigest()
        action = FileAction(name, prefix + name, len(data), md5)
        there = listing.get(name)
        if there is not None and there.md5 == md5 and there.size == len(data):
            unchanged.append(action)
        else:
            reason = NEW if there is None else CHANGED if there.md5 is not None else NOT_MD5
            uploads.append(FileAction(name, prefix + name, len(data), md5, reason))
    for name in sorted(listing):
        if name in local:
            continue
        obj = listing[name]
        if owned_set is not None and name in owned_set:
            deletions.append(FileAction(name, prefix + name, obj.size, obj.md5, DROPPED))
        else:
            foreign.append(FileAction(name, prefix + name, obj.size, obj.md5, FOREIGN))
    return PushPlan(
        target=target or prefix,
        team=team,
        project=project,
        prefix=prefix,
        state_key=state_key,
        uploads=tuple(uploads),
        unchanged=tuple(unchanged),
        deletions=tuple(deletions),
        foreign=tuple(foreign),
        owned_before=None if owned_set is None else tuple(sorted(owned_set)),
        owned_after=tuple(sorted(local)),
    )


# --------------------------------------------------------------------------- applying it


@dataclass(frozen=True)
class Applied:
    """What an apply actually did (the plan says what it meant to do)."""

    uploaded: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    state_writes: int = 0


def _run_parallel(
    names: list[str],
    work: Callable[[str], None],
    *,
    max_workers: int,
    on_done: Callable[[str], None],
) -> tuple[list[str], dict[str, str], list[str]]:
    """Run ``work`` per name on a bounded pool; after the first failure start no more.

    Returns (done, failed name -> message, not attempted), each sorted. Anything but a
    PublishError is a bug and propagates. ``on_done`` runs on the calling thread.
    """
    stop = threading.Event()

    def guarded(name: str) -> bool:
        if stop.is_set():
            return False  # a failure elsewhere: do not start this one
        try:
            work(name)
        except BaseException:
            stop.set()
            raise
        return True

    done: list[str] = []
    failed: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        futures: dict[Future[bool], str] = {pool.submit(guarded, n): n for n in names}
        for fut in as_completed(futures):
            name, exc = futures[fut], fut.exception()
            if exc is None:
                if fut.result():
                    done.append(name)
                    on_done(name)
            elif isinstance(exc, PublishError):
                failed[name] = exc.message
            else:
                raise exc
    not_attempted = sorted(set(names) - set(done) - set(failed))
    return sorted(done), dict(sorted(failed.items())), not_attempted


def _names(items: Iterable[str]) -> str:
    items = list(items)
    return ", ".join(items) if items else "none"


def apply_plan(
    publisher: Publisher,
    plan: PushPlan,
    files: Mapping[str, bytes],
    *,
    lease: HeldLease,
    max_workers: int = DEFAULT_MAX_WORKERS,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
) -> Applied:
    """Upload, verify, delete, release, under a lease that already claimed every built name
    (:func:`acquire_lease`); see the module docstring for why in this order.

    Raises :class:`PublishError` at the first failing step, naming what was and was not done;
    no step after a failure runs, so nothing is deleted unless every upload was verified.
    """
    where = plan.target
    total = len(plan.uploads) + len(plan.deletions)
    done_count = 0

    def tick(name: str) -> None:
        nonlocal done_count
        done_count += 1
        if progress is not None:
            progress(name, done_count, total)

    # 1. upload (every name was claimed when the lease was taken)
    def upload(name: str) -> None:
        data = files[name]
        md5_hex, md5_b64 = md5_pair(data)
        publisher.put(plan.prefix + name, data, md5_b64, md5_hex)

    upload_names = [u.name for u in plan.uploads]
    uploaded, failed, skipped = _run_parallel(
        upload_names, upload, max_workers=max_workers, on_done=tick
    )
    if failed or skipped:
        raise PublishError(
            f"push to {where} failed: {len(uploaded)} of {len(upload_names)} uploads done, "
            "nothing deleted\n"
            f"  uploaded: {_names(uploaded)}\n"
            f"  not uploaded: {_names(sorted([*failed, *skipped]))}\n"
            + "".join(f"  error: {m}\n" for m in failed.values())
            + "Run the push again: it skips what is already there and converges."
        )

    # 2. verify what the bucket now holds for every built file
    if plan.uploads:
        listing = publisher.list(plan.prefix)
        wrong = []
        for action in (*plan.uploads, *plan.unchanged):
            there = listing.get(action.key)
            if there is None:
                wrong.append(f"{action.name} (missing)")
            elif there.md5 != action.md5:
                wrong.append(
                    f"{action.name} (ETag {there.md5 or 'is not an MD5'}, MD5 {action.md5})"
                )
        if wrong:
            raise PublishError(
                f"push to {where}: uploads did not verify, nothing deleted: "
                f"{', '.join(sorted(wrong))}. If the bucket uses SSE-KMS its ETags are not "
                "MD5s and objinsync would re-download every file forever.",
                key=plan.prefix,
            )
    if checkpoint is not None:
        checkpoint("uploaded")

    # 3. delete what this project wrote before and no longer builds, if the lease is ours
    lease.check(f"push to {where}: {len(uploaded)} uploads verified, nothing deleted")

    def delete(name: str) -> None:
        publisher.delete(plan.prefix + name)

    delete_names = [d.name for d in plan.deletions]
    deleted, failed, skipped = _run_parallel(
        delete_names, delete, max_workers=max_workers, on_done=tick
    )
    if failed or skipped:
        raise PublishError(
            f"push to {where} failed while deleting, after all {len(uploaded)} uploads "
            "verified\n"
            f"  deleted: {_names(deleted)}\n"
            f"  not deleted: {_names(sorted([*failed, *skipped]))}\n"
            + "".join(f"  error: {m}\n" for m in failed.values())
            + "Run the push again to finish the deletions."
        )

    # 4. record the final ownership and release the lease. A lease taken over from a push
    # that may still be alive keeps owning what that push claimed and we did not delete,
    # in case it still uploads it: the next push deletes it.
    final = set(plan.owned_after)
    if lease.inherited_live is not None:
        final |= lease.inherited_live - set(deleted)
    lease.release(
        frozenset(final),
        f"push to {where}: every file is published, but recording the state failed; "
        "run the push again to record it",
    )
    return Applied(tuple(uploaded), tuple(deleted), lease.writes)


# --------------------------------------------------------------------------- the lease

#: Leases held by pushes running in this process: a lease of this process that is not here
#: belongs to a push that ended without releasing it.
_HELD: set[str] = set()
_HELD_LOCK = threading.Lock()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lease_is_dead(lease: Lease) -> bool:
    """True only when this machine can tell for sure that the holder is gone."""
    if lease.host != socket.gethostname():
        return False
    if lease.pid == os.getpid():
        with _HELD_LOCK:
            return lease.id not in _HELD
    return not _process_alive(lease.pid)


@dataclass
class HeldLease:
    """A lease this push holds: the state ETag it wrote, and what it claimed."""

    publisher: Publisher
    target: Target
    lease: Lease
    etag: str
    claimed: frozenset[str]
    owned_before: frozenset[str] | None  # the state's names before this push claimed
    #: names a taken-over push (maybe still alive elsewhere) had claimed, else None
    inherited_live: frozenset[str] | None = None
    writes: int = 1
    released: bool = False

    def _write(self, names: frozenset[str]) -> None:
        data = encode_state(self.target.team, self.target.project, names)
        md5_hex, md5_b64 = md5_pair(data)
        key = self.target.state_key
        try:
            self.publisher.swap(key, data, md5_b64, md5_hex, self.etag)
        except PushConflictError:
            got = self.publisher.read(key)
            if got is None or got[0] != data:  # not our own write answered twice
                raise
        self.writes += 1
        self.released = True
        _forget(self.lease)

    def check(self, done: str) -> None:
        """Raise unless the state still holds our lease: someone took it over."""
        got = self.publisher.read(self.target.state_key)
        if got is None or got[1] != self.etag:
            self.released = True  # not ours to release any more
            _forget(self.lease)
            raise PushConflictError(
                f"{done}: another push of {self.target.team}/{self.target.project} took over "
                f"this push's lease (it held it longer than the lease time); the bucket may hold "
                "files of both builds until that push finishes. Run the push again.",
                key=self.target.state_key,
            )

    def release(self, names: frozenset[str], failed: str) -> None:
        try:
            self._write(names)
        except PushConflictError as exc:
            raise PushConflictError(
                f"{failed}: another push took over this push's lease ({exc.message})",
                key=self.target.state_key,
            ) from exc
        except PublishError as exc:
            raise PublishError(f"{failed}: {exc.message}", key=self.target.state_key) from exc

    def abandon(self) -> None:
        """After a failure: release the lease, keeping the claim, so the next push need not
        wait. Best effort: if this fails too, the next push sees the lease is dead."""
        if self.released:
            return
        try:
            self._write(self.claimed)
        except PublishError:
            pass
        finally:
            _forget(self.lease)


def _forget(lease: Lease) -> None:
    with _HELD_LOCK:
        _HELD.discard(lease.id)


def read_state(
    publisher: Publisher, target: Target
) -> tuple[frozenset[str] | None, Lease | None, str | None]:
    """The owned names (None: no state object), the lease, and the state's ETag."""
    got = publisher.read(target.state_key)
    if got is None:
        return None, None, None
    names, lease = decode_state_doc(
        got[0], key=target.state_key, team=target.team, project=target.project
    )
    return names, lease, got[1]


def acquire_lease(
    publisher: Publisher,
    target: Target,
    built: Iterable[str],
    *,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> HeldLease:
    """Claim every built name and take the project's lease in one conditional write.

    While another push holds the lease, wait: re-read until it is released, until this
    machine sees its holder died, or until nobody changed it for ``lease_seconds`` (its push
    died elsewhere). Losing the conditional write means another push got in first: re-read.
    """
    built_set = frozenset(built)
    me = Lease.new()
    with _HELD_LOCK:
        _HELD.add(me.id)
    first_seen: dict[str, float] = {}
    tried: tuple[frozenset[str] | None, frozenset[str], frozenset[str] | None] | None = None
    try:
        while True:
            owned, holder, etag = read_state(publisher, target)
            inherited = None
            if holder is not None and holder.id == me.id and tried is not None:
                # our conditional write went through but its answer was lost, then retried
                return HeldLease(publisher, target, me, etag or "", tried[1], tried[0], tried[2])
            if holder is not None:
                waited = clock() - first_seen.setdefault(etag or "", clock())
                if not lease_is_dead(holder) and waited < lease_seconds:
                    sleep(random.uniform(*LEASE_POLL_SECONDS))
                    continue
                if not lease_is_dead(holder):
                    inherited = owned
            claimed = (owned or frozenset()) | built_set
            data = encode_state(target.team, target.project, claimed, me)
            md5_hex, md5_b64 = md5_pair(data)
            tried = (owned, claimed, inherited)
            try:
                new_etag = publisher.swap(target.state_key, data, md5_b64, md5_hex, etag)
            except PushConflictError:
                continue  # another push wrote the state first: look again
            return HeldLease(publisher, target, me, new_etag, claimed, owned, inherited)
    except PublishError as exc:
        _forget(me)
        if isinstance(exc, PushConflictError):
            raise
        raise PublishError(
            f"recording ownership before uploading to {target.url} failed; "
            f"nothing was uploaded or deleted: {exc.message}",
            key=target.state_key,
        ) from exc
    except BaseException:
        _forget(me)
        raise


# --------------------------------------------------------------------------- the facade


@dataclass(frozen=True)
class PushResult:
    """The plan and, unless it was a dry run, what was done."""

    plan: PushPlan
    dry_run: bool
    applied: Applied | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able and deterministic (every list sorted), for ``--format json``."""
        applied = None
        if self.applied is not None:
            applied = {
                "uploaded": list(self.applied.uploaded),
                "deleted": list(self.applied.deleted),
                "state_writes": self.applied.state_writes,
            }
        return {"dry_run": self.dry_run, "plan": self.plan.to_dict(), "applied": applied}

    def format_text(self) -> str:
        """A short human summary: one line per upload, deletion and foreign object."""
        plan = self.plan
        head = "push plan (dry run, nothing changed)" if self.dry_run else "push"
        lines = [f"{head}: {plan.target}"]
        # foreign names are anyone's keys: a newline or escape in one must not forge a line
        shown = [
            (verb, one_line(a.name), a)
            for verb, actions in (
                ("upload", plan.uploads),
                ("delete", plan.deletions),
                ("keep", plan.foreign[:FOREIGN_LINES]),
            )
            for a in actions
        ]
        width = max([len(name) for _, name, _ in shown] or [0])
        for verb, name, a in shown:
            lines.append(f"  {verb:<6}  {name:<{width}}  {_size(a.size):>9}  {a.reason}")
        if len(plan.foreign) > FOREIGN_LINES:
            lines.append(
                f"  keep    ... and {len(plan.foreign) - FOREIGN_LINES} more foreign objects"
            )
        counts = (
            f"{len(plan.uploads)} to upload, {len(plan.unchanged)} unchanged, "
            f"{len(plan.deletions)} to delete, {len(plan.foreign)} foreign left alone"
        )
        if self.dry_run or self.applied is None:
            lines.append(counts)
        elif not plan.has_changes:
            lines.append(f"up to date: {len(plan.unchanged)} files unchanged, nothing written")
        else:
            lines.append(
                f"done: {len(self.applied.uploaded)} uploaded, {len(plan.unchanged)} unchanged, "
                f"{len(self.applied.deleted)} deleted, {len(plan.foreign)} foreign left alone"
            )
        if plan.owned_before is None:
            lines.append(
                f"first push here (no {STATE_NAME} yet): files are added, none can be deleted"
            )
        return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB"


def open_publisher(
    target: Target, *, endpoint_url: str | None = None, max_workers: int = DEFAULT_MAX_WORKERS
) -> Publisher:
    """The publisher for a target's scheme; boto3 is imported only for s3://."""
    if target.scheme == "s3":
        try:
            from dagfactory._s3 import S3Publisher
        except ImportError as exc:
            raise ConfigError(
                "pushing to s3:// needs boto3: pip install 'dagfactory-dbt[s3]'", key="url"
            ) from exc
        return S3Publisher(
            target.bucket, endpoint_url=endpoint_url, max_pool_connections=max_workers
        )
    if endpoint_url:
        raise ConfigError("--endpoint-url only applies to s3:// URLs", key="endpoint_url")
    return LocalPublisher(target.bucket)


def run_push(
    publisher: Publisher,
    target: Target,
    files: Mapping[str, bytes],
    *,
    dry_run: bool = False,
    max_workers: int = DEFAULT_MAX_WORKERS,
    progress: Progress | None = None,
    allow_empty: bool = False,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    checkpoint: Checkpoint | None = None,
) -> PushResult:
    """List, read the state, plan, and (unless ``dry_run``) apply, through ``publisher``.

    A push with nothing to change writes nothing and takes no lease (unless another push
    holds one: then it waits and looks again). A build with no DAG files would delete every
    file the project owns: almost always a broken build rather than a retired project, so it
    needs ``allow_empty``. ``checkpoint(step)`` is called after "acquired" and "uploaded";
    tests use it to interleave pushes.
    """
    remote = publisher.list(target.prefix)
    owned, holder = None, None
    if target.state_key in remote:  # no state object listed: no request for it
        owned, holder, _etag = read_state(publisher, target)
    plan = _plan(files, remote, owned, target)
    if dry_run:
        return PushResult(plan, dry_run=True)
    _refuse_empty(plan, files, target, allow_empty)
    if not plan.has_changes and holder is None:
        return PushResult(plan, dry_run=False, applied=Applied())
    lease = acquire_lease(publisher, target, files, lease_seconds=lease_seconds)
    try:
        publisher.sweep(target.prefix)
        plan = _plan(files, publisher.list(target.prefix), lease.owned_before, target)
        _refuse_empty(plan, files, target, allow_empty)
        if checkpoint is not None:
            checkpoint("acquired")
        applied = apply_plan(
            publisher,
            plan,
            files,
            lease=lease,
            max_workers=max_workers,
            progress=progress,
            checkpoint=checkpoint,
        )
    except BaseException:
        lease.abandon()
        raise
    return PushResult(plan, dry_run=False, applied=applied)


def _plan(
    files: Mapping[str, bytes],
    remote: Mapping[str, RemoteObject],
    owned: frozenset[str] | None,
    target: Target,
) -> PushPlan:
    return plan_push(
        files,
        remote,
        owned,
        prefix=target.prefix,
        team=target.team,
        project=target.project,
        target=target.url,
    )


def _refuse_empty(
    plan: PushPlan, files: Mapping[str, bytes], target: Target, allow_empty: bool
) -> None:
    if not files and plan.deletions and not allow_empty:
        raise PublishError(
            f"the build holds no DAG files, so this push would delete all "
            f"{len(plan.deletions)} files the project owns under {target.url}; nothing was "
            "changed. Check the build, or pass --allow-empty if the project has no DAGs now."
        )


def _pick(given: str | None, recorded: str | None, key: str, out_dir: Path) -> str:
    if given is not None and recorded is not None and given != recorded:
        raise ConfigError(
            f"the build in {out_dir} was made for {key} {recorded!r}, not {given!r}; "
            f"rebuild with --{key} {given} or drop --{key}",
            key=key,
        )
    value = given if given is not None else recorded
    if value is None:
        raise ConfigError(f"no {key} given and the build marker records none", key=key)
    return value


def push(
    out_dir: str | Path,
    url: str,
    *,
    team: str | None = None,
    project: str | None = None,
    dry_run: bool = False,
    endpoint_url: str | None = None,
    max_workers: int = DEFAULT_MAX_WORKERS,
    progress: Progress | None = None,
    allow_empty: bool = False,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    checkpoint: Checkpoint | None = None,
) -> PushResult:
    """Push the files of a build folder to ``url`` (``s3://bucket/prefix/`` or ``file:///path/``).

    Team and project default to the ones the build recorded. Raises ConfigError for bad input
    and PublishError when the push fails; nothing is ever deleted unless every upload verified.
    """
    out = Path(out_dir)
    build = read_build(out)
    target = parse_target(
        url, _pick(team, build.team, "team", out), _pick(project, build.project, "project", out)
    )
    publisher = open_publisher(target, endpoint_url=endpoint_url, max_workers=max_workers)
    return run_push(
        publisher,
        target,
        build.files,
        dry_run=dry_run,
        max_workers=max_workers,
        progress=progress,
        allow_empty=allow_empty,
        lease_seconds=lease_seconds,
        checkpoint=checkpoint,
    )
