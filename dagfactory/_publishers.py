"""Where pushed files land: the small interface, and the two publishers that need no boto3.

    Publisher (Protocol)     list / get / put / delete on full object keys
     ├── S3Publisher         dagfactory._s3: boto3, single-part PutObject with Content-MD5
     ├── LocalPublisher      file:// root folder standing in for a bucket
     └── MemoryPublisher     a dict, with fault injection, for unit tests

The plan/apply logic in :mod:`dagfactory.publish` only ever sees this interface, so it can be
tested without a network and it knows nothing of boto3. Every publisher reports failures as
:class:`~dagfactory.errors.PublishError` carrying the object key.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dagfactory.errors import PublishError

__all__ = [
    "LocalPublisher",
    "MemoryPublisher",
    "Publisher",
    "RemoteObject",
    "md5_of_etag",
]

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
_TMP_SUFFIX = ".dagfactory-tmp"


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
    """Four operations on full object keys; all a push needs from a bucket."""

    def list(self, prefix: str) -> dict[str, RemoteObject]:
        """Every object whose key starts with ``prefix`` (recursively), by full key."""
        ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""
        ...

    def put(self, key: str, data: bytes, md5_b64: str, md5_hex: str) -> None:
        """Write the object in one request, checked against the given MD5."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...


def _check_md5(key: str, data: bytes, md5_hex: str) -> None:
    actual = hashlib.md5(data).hexdigest()
    if actual != md5_hex:
        raise PublishError(f"content MD5 {actual} does not match the expected {md5_hex}", key=key)


class LocalPublisher:
    """A folder used as the bucket (``file:///abs/path/``), with S3's semantics.

    Keys are relative paths under ``root``. Writes go to a temp file in the same folder and
    are renamed into place, so a reader (Airflow pointed at the folder, or a sync tool) sees
    the old bytes or the new ones, never half a file; the "ETag" is the MD5 of the bytes.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts[:-1]):
            raise PublishError("object key is not a plain relative path", key=key)
        if parts[-1] in ("", ".", ".."):
            raise PublishError("object key is not a plain relative path", key=key)
        return self.root.joinpath(*parts)

    def list(self, prefix: str) -> dict[str, RemoteObject]:
        folder, _, _ = prefix.rpartition("/")
        base = self._path(folder) if folder else self.root
        found: dict[str, RemoteObject] = {}
        if not base.is_dir():
            return found
        try:
            for dirpath, _dirnames, filenames in os.walk(base):
                for name in filenames:
                    if name.endswith(_TMP_SUFFIX):
                        continue  # our own half-written file from an interrupted put
                    path = Path(dirpath, name)
                    key = path.relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        data = path.read_bytes()
                        found[key] = RemoteObject(hashlib.md5(data).hexdigest(), len(data))
        except OSError as exc:
            raise PublishError(f"cannot list {base}: {exc.strerror}", key=prefix) from exc
        return found

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PublishError(f"cannot read {path}: {exc.strerror}", key=key) from exc

    def put(self, key: str, data: bytes, md5_b64: str, md5_hex: str) -> None:
        _check_md5(key, data, md5_hex)
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{_TMP_SUFFIX}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise PublishError(f"cannot write {path}: {exc.strerror}", key=key) from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise PublishError(f"cannot delete {path}: {exc.strerror}", key=key) from exc


#: ``fault(op, key, n)`` is asked before the n-th call of ``op`` ("put", "delete", "list",
#: "get"); returning an exception makes the call raise it (the operation is not applied).
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

    def list(self, prefix: str) -> dict[str, RemoteObject]:
        self._enter("list", prefix)
        with self._lock:
            return {
                key: RemoteObject(
                    md5_of_etag(self.etags.get(key, hashlib.md5(data).hexdigest())), len(data)
                )
                for key, data in self.objects.items()
                if key.startswith(prefix)
            }

    def get(self, key: str) -> bytes | None:
        self._enter("get", key)
        with self._lock:
            return self.objects.get(key)

    def put(self, key: str, data: bytes, md5_b64: str, md5_hex: str) -> None:
        self._enter("put", key)
        _check_md5(key, data, md5_hex)
        with self._lock:
            self.objects[key] = bytes(data)
            self.etags.pop(key, None)

    def delete(self, key: str) -> None:
        self._enter("delete", key)
        with self._lock:
            self.objects.pop(key, None)
            self.etags.pop(key, None)
