"""The build folder: what ``dagfactory build --out DIR`` owns, and how a new build replaces it.

One module for both sides, so the build (which writes and replaces the folder) and the push
(which reads it) agree on what a build folder is.

The marker
----------
``DIR/.dagfactory-build.json`` lists every file the build wrote with its sha256, plus the
generator, team and project. Its *content* is the proof that dagfactory owns the folder: a
folder is replaced only when its marker parses and everything in it is either the marker or a
listed file still holding the listed bytes. Anything else (a hand-written DAG, an
``.airflowignore``, the manifest the build is reading, a listed file edited by hand, a
subfolder, a symlink) makes the build refuse, name what it found and delete nothing.

The swap
--------
A new build is written to ``.<name>.dagfactory-<random>/build`` beside ``DIR``; that staging
folder also holds an ``.airflowignore`` that ignores everything below it, so Airflow never
parses a half-written or an outgoing build as duplicate DAGs when ``DIR`` sits inside a DAG
folder (Airflow 3.3 walks hidden folders too and honours ``.airflowignore`` per folder). The
new ``build`` and ``DIR`` are then exchanged in one ``renameat2(RENAME_EXCHANGE)`` call
(Linux), so a kill at any moment leaves either the old or the new build at ``DIR``, never
none; the outgoing build, now inside the staging folder, is removed afterwards. Where the
exchange is unavailable (not Linux, or a filesystem without it) two plain renames are used,
with a window of microseconds in which ``DIR`` is missing. A killed build leaves only a
staging folder; the next build for ``DIR`` removes it. Builds into one parent folder are
serialised with ``flock`` on that folder, so one build never removes another's staging.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: builds into one folder are not serialised
    fcntl = None  # type: ignore[assignment]

from dagfactory._version import __version__
from dagfactory.errors import ConfigError, ForeignOutputError, OutputError, one_line

__all__ = [
    "BUILD_MARKER",
    "MARKER_FORMAT",
    "BuildFolder",
    "marker_bytes",
    "read_build_folder",
    "replace_folder",
    "swap_folder",
]

BUILD_MARKER = ".dagfactory-build.json"
MARKER_FORMAT = 2
#: ``.airflowignore`` of a staging folder: ``*`` for the default glob syntax, ``.*`` for
#: ``[core] dag_ignore_file_syntax = regexp`` (each is harmless in the other syntax)
STAGING_IGNORE = "# dagfactory: a build being swapped in or out; never parse it\n*\n.*\n"
STAGED = "build"  # the new build's folder inside the staging folder
SHOWN = 5  # a refusal names this many unexpected entries, then counts the rest

#: a DAG file, or the build summary ``<project>.dagfactory.json`` (dagfactory.preview)
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\.(py|dagfactory\.json)")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class MarkerError(ValueError):
    """The marker is missing or does not prove a build; callers pick the error class."""


@dataclass(frozen=True)
class BuildFolder:
    """A marker's content: whom the build is for and each file's sha256 (``None``: a marker
    written before hashes were recorded, which still names its files)."""

    team: str | None
    project: str | None
    version: str | None
    files: Mapping[str, str | None] = field(repr=False)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def marker_bytes(files: Mapping[str, bytes], *, team: str, project: str) -> bytes:
    """The marker for these files, deterministic: sorted keys, no clock."""
    doc = {
        "files": {name: _sha256(files[name]) for name in sorted(files)},
        "format": MARKER_FORMAT,
        "generator": "dagfactory",
        "project": project,
        "team": team,
        "version": __version__,
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _read_nofollow(path: Path) -> bytes:
    """A file's bytes, refusing a symlink in its place (``ELOOP``) rather than following it."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _marker_files(value: object) -> dict[str, str | None]:
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        if len(set(value)) != len(value):
            raise MarkerError("the build marker lists a file twice")
        files: dict[str, str | None] = dict.fromkeys(value)
    elif isinstance(value, dict) and all(
        isinstance(digest, str) and _SHA256.fullmatch(digest) for digest in value.values()
    ):
        files = dict(value)
    else:
        raise MarkerError(
            "the build marker's 'files' is not a list of names nor a map of names to sha256"
        )
    for name in sorted(files):
        if not _FILE_NAME.fullmatch(name):
            raise MarkerError(
                f"the build marker lists {one_line(repr(name))}, "
                "which is not a flat <dag_id>.py file name"
            )
    return files


def read_marker(folder: Path) -> BuildFolder:
    """Parse ``folder``'s marker; :class:`MarkerError` says why it proves nothing."""
    try:
        data = _read_nofollow(folder / BUILD_MARKER)
    except FileNotFoundError:
        raise MarkerError(f"not a dagfactory build folder: {BUILD_MARKER} is missing") from None
    except OSError as exc:
        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise MarkerError(f"cannot read the build marker: {reason}") from exc
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise MarkerError(f"cannot read the build marker: {one_line(str(exc))}") from exc
    if not isinstance(doc, dict) or doc.get("generator") != "dagfactory":
        raise MarkerError("the build marker was not written by dagfactory")
    files = _marker_files(doc.get("files"))

    def text(key: str) -> str | None:
        value = doc.get(key)
        return value if isinstance(value, str) else None

    return BuildFolder(text("team"), text("project"), text("version"), files)


def read_build_folder(folder: str | Path) -> tuple[BuildFolder, dict[str, bytes]]:
    """The marker and exactly the files it lists, for a push.

    Files the marker does not list are not read (they are not part of the build). A listed
    file that is a symlink, is missing, or no longer holds the bytes the build wrote is
    refused: a push sends what dagfactory generated or nothing.
    """
    folder = Path(folder)
    try:
        marker = read_marker(folder)
    except MarkerError as exc:
        missing = "is missing" in str(exc)
        hint = f" (run `dagfactory build --out {folder}` first)" if missing else ""
        path = folder if missing else folder / BUILD_MARKER
        raise ConfigError(f"{exc}{hint}", path=str(path)) from None
    files: dict[str, bytes] = {}
    for name, digest in sorted(marker.files.items()):
        path = folder / name
        try:
            data = _read_nofollow(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ConfigError(
                    f"{name} is a symbolic link; a build folder holds only the files "
                    "dagfactory wrote, so it is not followed (rebuild)",
                    path=str(path),
                ) from None
            raise ConfigError(
                f"the build lists {name} but it cannot be read: {exc.strerror}", path=str(path)
            ) from exc
        if digest is not None and _sha256(data) != digest:
            raise ConfigError(
                f"{name} was changed after the build (its sha256 differs from the marker's); "
                "rebuild instead of editing generated files",
                path=str(path),
            )
        files[name] = data
    return marker, files


def _unexpected(folder: Path) -> list[str]:
    """What replacing ``folder`` would lose: entries no build wrote, or listed files edited.

    Raises :class:`MarkerError` when a non-empty folder has no marker that proves a build.
    """
    entries = sorted(os.listdir(folder))
    if not entries:
        return []
    marker = read_marker(folder)
    found = []
    for name in entries:
        if name == BUILD_MARKER:
            continue
        path = folder / name
        if name not in marker.files or path.is_symlink() or not path.is_file():
            found.append(name)
        elif (digest := marker.files[name]) is not None and _sha256(path.read_bytes()) != digest:
            found.append(f"{name} (changed since the build)")
    return found


def _names(names: list[str]) -> str:
    """The first few names, quoted and on one line, then how many more."""
    shown = ", ".join(one_line(repr(name)) for name in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def check_replaceable(out: Path) -> None:
    """Refuse (exit 2, nothing touched) unless ``out`` is absent, empty or a proven build."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise ForeignOutputError(
            "--out exists and is not a folder; choose a new or empty folder", path=str(out)
        )
    try:
        found = _unexpected(out)
    except MarkerError as exc:
        entries = sorted(os.listdir(out))
        raise ForeignOutputError(
            f"refusing to replace a non-empty folder that dagfactory did not write ({exc}); "
            f"it holds {len(entries)}: {_names(entries)}; choose an empty or new --out folder",
            path=str(out),
        ) from None
    except OSError as exc:
        raise OutputError(f"cannot read the output folder: {exc.strerror}", path=str(out)) from exc
    if found:
        raise ForeignOutputError(
            f"refusing to replace the output folder: it holds {len(found)} "
            f"{'entry' if len(found) == 1 else 'entries'} the previous build did not write: "
            f"{_names(found)}; move them out of --out (keep --out for dagfactory alone) "
            "and build again",
            path=str(out),
        )


# --------------------------------------------------------------------------- the swap


def _kill_point(step: str) -> None:
    """Die here, as a crash would, when a test asks for it (``_DAGFACTORY_KILL_AT``)."""
    if os.environ.get("_DAGFACTORY_KILL_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_EXCHANGE = _renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step; ``False`` when this system cannot."""
    if _EXCHANGE is None:
        return False
    result = _EXCHANGE(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # the filesystem has no exchange: the caller falls back
    raise OSError(code, os.strerror(code), str(a))


def _staging_prefix(out: Path) -> str:
    return f".{out.name}.dagfactory-"


def _remove_debris(out: Path) -> None:
    """Remove staging folders that killed builds for ``out`` left beside it."""
    prefix = _staging_prefix(out)
    for entry in os.scandir(out.parent):
        if entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)


class _ParentLock:
    """``flock`` on the parent folder: one build at a time swaps folders in it."""

    def __init__(self, parent: Path) -> None:
        self.fd = os.open(parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def __enter__(self) -> _ParentLock:
        if fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the lock


def _write_files(folder: Path, files: Iterable[tuple[str, bytes]]) -> None:
    for index, (name, data) in enumerate(files):
        if index == 1:
            _kill_point("files-half-written")
        (folder / name).write_bytes(data)


def replace_folder(
    out_dir: str | Path, files: Mapping[str, bytes], *, team: str, project: str
) -> Path:
    """Write ``files`` and the marker as the new content of ``out_dir``, replacing it whole.

    Refuses (:class:`ForeignOutputError`) a folder that is not a proven previous build; any
    other failure leaves the previous build in place.
    """
    for name in files:
        if not _FILE_NAME.fullmatch(name):
            raise OutputError(f"refusing to write {one_line(repr(name))}: not a flat file name")

    def fill(new: Path) -> None:
        _write_files(new, sorted(files.items()))
        marker = marker_bytes(files, team=team, project=project)
        (new / BUILD_MARKER).write_bytes(marker)
        _kill_point("marker-written")

    return swap_folder(out_dir, fill, check_replaceable)


def swap_folder(
    out_dir: str | Path, fill: Callable[[Path], None], check: Callable[[Path], None]
) -> Path:
    """Make ``out_dir`` a new folder that ``fill`` writes, in one step, or leave it as it was.

    One writer at a time per parent folder (``flock``); ``check`` refuses an ``out_dir``
    that must not be replaced; the new folder is written aside, then exchanged in (renameat2,
    else two renames, the old one put back if the second fails); what killed runs left
    aside is removed. An ``OSError`` becomes an :class:`OutputError` naming the folder.
    """
    out = Path(out_dir).resolve()  # a symlinked --out: its folder is the one replaced
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        lock = _ParentLock(out.parent)
    except OSError as exc:
        raise OutputError(
            f"cannot create the output folder: {exc.strerror}", path=str(out)
        ) from exc
    with lock:
        check(out)
        try:
            _remove_debris(out)
            staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(out), dir=out.parent))
        except OSError as exc:
            raise OutputError(
                f"cannot create the output folder: {exc.strerror}", path=str(out)
            ) from exc
        try:
            _kill_point("staging-created")
            (staging / ".airflowignore").write_text(STAGING_IGNORE, encoding="utf-8")
            new = staging / STAGED
            new.mkdir()
            fill(new)
            if not out.exists():
                os.rename(new, out)
            elif not exchange(new, out):
                os.rename(out, staging / "old")
                _kill_point("between-renames")
                try:
                    os.rename(new, out)
                except OSError:
                    os.rename(staging / "old", out)  # put the previous build back
                    raise
            _kill_point("swapped")
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise OutputError(
                f"cannot write the output folder: {exc.strerror}", path=str(out)
            ) from exc
        shutil.rmtree(staging, ignore_errors=True)  # the previous build, now staged out
    return out
