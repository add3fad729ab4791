"""Where pushed files land: the small interface, and the two publishers that need no boto3.

    Publisher (Protocol)     list / get / read / put / swap / delete / sweep on full object keys
     ├── S3Publisher         dagfactory._s3: boto3, single-part PutObject with Content-MD5,
     │                       swap = PutObject with If-Match / If-None-Match
     ├── LocalPublisher      file:// root folder standing in for a bucket; swap under flock
     └── MemoryPublisher     a dict, with fault injection, for unit tests

The plan/apply logic in :mod:`dagfactory.publish` only ever sees this interface, so it can be
tested without a network and it knows nothing of boto3. Every publisher reports failures as
:class:`~dagfactory.errors.PublishError` carrying the object key, and a lost conditional write
as its subclass :class:`~dagfactory.errors.PushConflictError`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, overload

from dagfactory.errors import PublishError, PushConflictError

__all__ = [
    "LocalPublisher",
    "MemoryPublisher",
    "Publisher",
    "RemoteObject",
    "md5_of_etag",
]

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
#: A file being written (``.<name>.<random>.dagfactory-tmp``): hidden, not ``.py``, so Airflow
#: never parses it; listings skip it and the next push that holds the lease removes it.
_TMP_SUFFIX = ".dagfactory-tmp"
#: The file ``flock``-ed while the state object is compared and swapped (never listed).
_LOCK_SUFFIX = ".dagfactory-lock"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def md5_of_etag(etag: str | None) -> str | None:
    """The MD5 an ETag stands for, or None when it is not one.

    A single-part upload's ETag is the hex MD5 of the bytes. A multipart upload's ETag is
    ``md5-of-md5s-N``, and SSE-KMS objects have opaque ETags; objinsync compares ETags with
    local MD5s, so such objects look changed to it forever, and we treat them as changed too.
    """
    if etag is None:
        return None
    value = etag.strip().strip('"').lower()
    return value if _MD5_HEX.fullmatch(value) else None


@dataclass(frozen=True)
class RemoteObject:
    """One listed object: its MD5 when its ETag is one (else None), and its size."""

    md5: str | None
    size: int


class Publisher(Protocol):
    """What a push needs from a bucket, on full object keys."""

    def list(self, prefix: str) -> dict[str, RemoteObject]:
        """Every object whose key starts with ``prefix`` (recursively), by full key."""
        ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""
        ...

    def read(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and its ETag (opaque: only ever handed back to ``swap``)."""
        ...

    def put(self, key: str, data: bytes, md5_b64: str, md5_hex: str) -> None:
        """Write the object in one request, checked against the given MD5."""
        ...

    def swap(self, key: str, data: bytes, md5_b64: str, md5_hex: str, expected: str | None) -> str:
        """Write the object only if its ETag is still ``expected`` (None: only if it does not
        exist); return the new ETag. Raises PushConflictError when the condition fails."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def sweep(self, prefix: str) -> None:
        """Remove what an interrupted push left directly under ``prefix`` (temp files).
        Only a push holding the project's lease calls it."""
        ...


def _check_md5(key: str, data: bytes, md5_hex: str) -> None:
    actual = hashlib.md5(data).hexdigest()
    if actual != md5_hex:
        raise PublishError(f"content MD5 {actual} does not match the expected {md5_hex}", key=key)


def _conflict(key: str, expected: str | None, current: str | None) -> PushConflictError:
    if expected is None:
        return PushConflictError("the object was created by someone else meanwhile", key=key)
    if current is None:
        return PushConflictError("the object was deleted by someone else meanwhile", key=key)
    return PushConflictError("the object was changed by someone else meanwhile", key=key)


class LocalPublisher:
    """A folder used as the bucket (``file:///abs/path/``), with S3's semantics.

    Keys are relative paths under ``root``. The root itself may be a symbolic link, but no
    link *below* it is ever followed: every folder is opened relative to its parent with
    ``O_NOFOLLOW``, so a team folder that is a link to elsewhere is refused instead of
    receiving files outside the root, and a file that is a link is never read (it lists with
    no MD5) and is replaced, not written through. Writes go to a temp file in the same folder
    that is renamed into place, so a reader (Airflow pointed at the folder, or a sync tool)
    sees the old bytes or the new ones, never half a file; the "ETag" is the MD5 of the
    bytes. ``swap`` compares and writes under an exclusive ``flock`` of a lock file beside the
    object; the kernel releases it when the process dies, so a kill never leaves it locked.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- paths
    def _split(self, key: str) -> tuple[list[str], str]:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise PublishError("object key is not a plain relative path", key=key)
        return parts[:-1], parts[-1]

    @overload
    def _folder(self, parts: list[str], *, create: Literal[True], key: str) -> int: ...
    @overload
    def _folder(self, parts: list[str], *, create: bool, key: str) -> int | None: ...
    def _folder(self, parts: list[str], *, create: bool, key: str) -> int | None:
        """An open fd of ``root/parts...`` reached without following a link below the root;
        None if a folder is missing and ``create`` is False."""
        try:
            fd = os.open(self.root, _DIR_FLAGS)
        except FileNotFoundError:
            if not create:
                return None
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.root, _DIR_FLAGS)
            except OSError as exc:
                raise PublishError(f"cannot create {self.root}: {exc.strerror}", key=key) from exc
        except OSError as exc:
            raise PublishError(f"cannot open {self.root}: {exc.strerror}", key=key) from exc
        done: list[str] = []
        try:
            for part in parts:
                try:
                    nxt = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                    nxt = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                done.append(part)
                os.close(fd)
                fd = nxt
        except OSError as exc:
            os.close(fd)
            path = self.root.joinpath(*done, part)
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(path):
                raise PublishError(
                    f"{path} is a symbolic link; a push never follows links below the root "
                    f"{self.root}, so files cannot land outside it. Replace the link with a "
                    "folder, or push to the folder it points to",
                    key=key,
                ) from exc
            raise PublishError(f"cannot open the folder {path}: {exc.strerror}", key=key) from exc
        return fd

    # -- reading
    def list(self, prefix: str) -> dict[str, RemoteObject]:
        folder, _, _ = prefix.rpartition("/")
        parts = folder.split("/") if folder else []
        if any(p in ("", ".", "..") for p in parts):
            raise PublishError("object key is not a plain relative path", key=prefix)
        fd = self._folder(parts, create=False, key=prefix)
        found: dict[str, RemoteObject] = {}
        if fd is None:
            return found
        base = folder + "/" if folder else ""
        try:
            # fwalk lists links to folders but never descends into them
            for dirpath, _dirs, filenames, dirfd in os.fwalk(".", dir_fd=fd):
                rel = "" if dirpath == "." else dirpath[2:] + "/"
                for name in filenames:
                    if name.endswith((_TMP_SUFFIX, _LOCK_SUFFIX)):
                        continue  # our own half-written file, or the state's lock
                    key = base + rel + name
                    if key.startswith(prefix):
                        found[key] = _listed(name, dirfd)
        except OSError as exc:
            raise PublishError(
                f"cannot list {self.root / folder}: {exc.strerror}", key=prefix
            ) from exc
        finally:
            os.close(fd)
        return found

    def get(self, key: str) -> bytes | None:
        got = self.read(key)
        return None if got is None else got[0]

    def read(self, key: str) -> tuple[bytes, str] | None:
        parts, name = self._split(key)
        fd = self._folder(parts, create=False, key=key)
        if fd is None:
            return None
        try:
            data = _read_at(fd, name, self.root / key, key)
        finally:
            os.close(fd)
        return None if data is None else (data, hashlib.md5(data).hexdigest())

    # -- writing
    def put(self, key: str, data: bytes, md5_b64: str, md5_hex: str) -> None:
        _check_md5(key, data, md5_hex)
        parts, name = self._split(key)
        fd = self._folder(parts, create=True, key=key)
        try:
            _replace_at(fd, name, data, self.root / key, key)
        finally:
            os.close(fd)

    def swap(self, key: str, data: bytes, md5_b64: str, md5_hex: str, expected: str | None) -> str:
        import fcntl  # POSIX only, like the rest of the file:// publisher

        _check_md5(key, data, md5_hex)
        parts, name = self._split(key)
        fd = self._folder(parts, create=True, key=key)
        try:
            lock_name = f".{name}{_LOCK_SUFFIX}"
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                lock = os.open(lock_name, flags, 0o644, dir_fd=fd)
            except OSError as exc:
                raise PublishError(
                    f"cannot lock {self.root / key}: {exc.strerror}", key=key
                ) from exc
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                _remove_temps(fd, f".{name}.")  # a killed swap's debris; nobody else is here
                current = _read_at(fd, name, self.root / key, key)
                current_md5 = None if current is None else hashlib.md5(current).hexdigest()
                if current_md5 != expected:
                    raise _conflict(key, expected, current_md5)
                _replace_at(fd, name, data, self.root / key, key)
            finally:
                os.close(lock)  # releases the flock
        finally:
            os.close(fd)
        return md5_hex

    def delete(self, key: str) -> None:
        parts, name = self._split(key)
        fd = self._folder(parts, create=False, key=key)
        if fd is None:
            return
        try:
            os.unlink(name, dir_fd=fd)  # a link is removed itself, never its target
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise PublishError(f"cannot delete {self.root / key}: {exc.strerror}", key=key) from exc
        finally:
            os.close(fd)

    def sweep(self, prefix: str) -> None:
        folder = prefix.rstrip("/")
        fd = self._folder(folder.split("/") if folder else [], create=False, key=prefix)
        if fd is None:
            return
        try:
            _remove_temps(fd, ".")
        except OSError as exc:
            raise PublishError(
                f"cannot clean {self.root / folder}: {exc.strerror}", key=prefix
            ) from exc
        finally:
            os.close(fd)


def _is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def _listed(name: str, dirfd: int) -> RemoteObject:
    """A listed file; a link lists with no MD5 (never read through), so a build file of
    that name is re-uploaded, which replaces the link."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return RemoteObject(None, 0)
        raise
    with os.fdopen(fd, "rb") as fh:
        data = fh.read()
    return RemoteObject(hashlib.md5(data).hexdigest(), len(data))


def _read_at(dirfd: int, name: str, path: Path, key: str) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PublishError(f"{path} is a symbolic link; it is never read", key=key) from exc
        raise PublishError(f"cannot read {path}: {exc.strerror}", key=key) from exc
    try:
        with os.fdopen(fd, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise PublishError(f"cannot read {path}: {exc.strerror}", key=key) from exc


def _replace_at(dirfd: int, name: str, data: bytes, path: Path, key: str) -> None:
    """Temp file in the same folder, fsync, rename over ``name`` (a link there is replaced)."""
    tmp = f".{name}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
    try:
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o644,
            dir_fd=dirfd,
        )
        try:
            os.fchmod(fd, 0o644)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dirfd)
        raise PublishError(f"cannot write {path}: {exc.strerror}", key=key) from exc


def _remove_temps(dirfd: int, start: str) -> None:
    for entry in os.listdir(dirfd):
        if entry.startswith(start) and entry.endswith(_TMP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry, dir_fd=dirfd)


#: ``fault(op, key, n)`` is asked before the n-th call of ``op`` ("put", "delete", "list",
#: "get"); returning an exception makes the call raise it (the operation is not applied).
#: ``read`` counts as "get" and ``swap`` as "put".
Fault = Callable[[str, str, int], Exception | None]


class MemoryPublisher:
    """A bucket in a dict, for unit tests: records every call and can inject faults."""

    def __init__(self, objects: dict[str, bytes] | None = None, *, fault: Fault | None = None):
        self.objects: dict[str, bytes] = dict(objects or {})
        self.etags: dict[str, str] = {}  # key -> raw ETag override, e.g. "abc-2" (multipart)
        self.calls: list[tuple[str, str]] = []
        self.fault = fault
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def _enter(self, op: str, key: str) -> None:
        with self._lock:
            self.calls.append((op, key))
            n = self._counts[op] = self._counts.get(op, 0) + 1
        if self.fault is not None:
            exc = self.fault(op, key, n)
            if exc is not None:
                raise exc

    def count(self, op: str) -> int:
        return sum(1 for o, _ in self.calls if o == op)

    def _etag(self, key: str) -> str:
        return self.etags.get(key, hashlib.md5(self.objects[key]).hexdigest())

    def list(self, prefix: str) -> dict[str, RemoteObject]:
        self._enter("list", prefix)
        with self._lock:
            return {
                key: RemoteObject(md5_of_etag(self._etag(key)), len(data))
                for key, data in self.objects.items()
                if key.startswith(prefix)
            }

    def get(self, key: str) -> bytes | None:
        self._enter("get", key)
        with self._lock:
            return self.objects.get(key)

    def read(self, key: str) -> tuple[bytes, str] | None:
        self._enter("get", key)
        with self._lock:
            return (self.objects[key], self._etag(key)) if key in self.objects else None

    def put(self, key: str, data: bytes, md5_b64: str, md5_hex: str) -> None:
        self._enter("put", key)
        _check_md5(key, data, md5_hex)
        with self._lock:
            self.objects[key] = bytes(data)
            self.etags.pop(key, None)

    def swap(self, key: str, data: bytes, md5_b64: str, md5_hex: str, expected: str | None) -> str:
        self._enter("put", key)
        _check_md5(key, data, md5_hex)
        with self._lock:
            current = self._etag(key) if key in self.objects else None
            if current != expected:
                raise _conflict(key, expected, current)
            self.objects[key] = bytes(data)
            self.etags.pop(key, None)
        return md5_hex

    def delete(self, key: str) -> None:
        self._enter("delete", key)
        with self._lock:
            self.objects.pop(key, None)
            self.etags.pop(key, None)

    def sweep(self, prefix: str) -> None:
        """Nothing to clean: a put into a dict is atomic."""
