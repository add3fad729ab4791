"""Run one task's dbt command on a slice of the manifest, or hand it to plain dbt.

Why: a ``dbt build --select <one node>`` process reads the whole project's parse state and
links the whole graph before it runs its node, so each task costs what the project costs.
``dagfactory dbt-slices`` writes, next to the project in the worker image, one small
manifest per task (its nodes, the nodes they read, every macro); this script gives that
slice to dbt in-process (``dbtRunner(manifest=...)``), so dbt parses and links nothing.

It is copied into the slices folder as ``run.py`` and runs on the worker with the Python
that runs dbt, so it imports only the standard library and dbt. Its command line is
``run.py <dbt executable> <dbt arguments...>``. Whenever the slice might not say what
dbt's own parse would (no slice for this selector, another dbt version, a changed file of
the task's nodes or ``dbt_project.yml``, an environment variable read at parse time that
has another value now, other ``--vars``), it says why on stderr and replaces itself with plain
dbt (``exec``), which then parses as it always does. ``--vars`` must equal the vars the
manifest was parsed with (``dagfactory dbt-slices --vars``): dbt bakes them into configs;
so must the target and ``profiles.yml`` (with the env vars it reads): dbt resolves every
node's database and schema with them. Exit codes are dbt's: 0 success,
1 a node failed, 2 dbt could not run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = 1  # of base.json and the slice files; a mismatch means "written by another version"


def slice_name(selector: str) -> str:
    """The file holding the slice of the task that selects ``selector``."""
    return hashlib.sha256(selector.encode()).hexdigest()[:32] + ".json"


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1 :]
    return None


def _vars(args: list[str]) -> Any:
    """The task's ``--vars`` as a value (dagfactory writes them as JSON); {} without."""
    text = _option(args, "--vars")
    if text is None:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return None  # YAML or broken: never equal to what the slices recorded


def profiles_file(profiles_dir: str | None) -> Path:
    """The ``profiles.yml`` dbt reads: ``--profiles-dir``, ``DBT_PROFILES_DIR``, the working
    folder if it holds one, else ``~/.dbt`` (dbt's own order)."""
    folder = profiles_dir or os.environ.get("DBT_PROFILES_DIR")
    if folder:
        return Path(folder) / "profiles.yml"
    here = Path.cwd() / "profiles.yml"
    return here if here.exists() else Path.home() / ".dbt" / "profiles.yml"


def why_not(base: dict[str, Any], piece: dict[str, Any] | None, args: list[str]) -> str | None:
    """Why this slice cannot stand in for dbt's own parse (None: it can)."""
    if not base:
        return "no readable base.json in the slices folder"
    if base.get("format") != FORMAT:
        return "the slices were written by another dagfactory version"
    if base.get("refused"):
        return f"no slices for this project: {base['refused']}"
    if piece is None:
        return "no slice for this selector"
    if piece.get("selector") != _option(args, "--select"):
        return "the slice is for another selector"
    if _vars(args) != base.get("vars", {}):
        return "--vars differ from the ones the slices were parsed with"
    project = Path(_option(args, "--project-dir") or os.environ.get("DBT_PROJECT_DIR") or ".")
    if file_sha256(project / "dbt_project.yml") != base.get("dbt_project_sha256"):
        return f"{project / 'dbt_project.yml'} differs from the one the slices were made with"
    # dbt resolves schemas and databases with the profile's target at parse time.
    profile = base.get("profile", {})
    target = _option(args, "--target") or os.environ.get("DBT_TARGET")
    if target != profile.get("target"):
        return f"target {target or '(default)'} is not the one the slices were parsed with"
    profiles = profiles_file(_option(args, "--profiles-dir"))
    if file_sha256(profiles) != profile.get("sha256"):
        return f"{profiles} differs from the one the slices were made with"
    for name, value in sorted({**base.get("env", {}), **piece.get("env", {})}.items()):
        if os.environ.get(name) != value:
            return f"environment variable {name} differs from the image build's parse"
    for path, digest in sorted({**base.get("files", {}), **piece.get("files", {})}.items()):
        if file_sha256(project / path) != digest:
            return f"{path} changed since the slices were made"
    return None


def load_manifest(base: dict[str, Any], piece: dict[str, Any]) -> Any:
    """A dbt ``Manifest`` of the slice's nodes and the project's macros."""
    from dbt.artifacts import resources as r
    from dbt.artifacts.resources.types import NodeType
    from dbt.contracts.graph.manifest import Manifest, ManifestMetadata
    from dbt.contracts.graph.nodes import RESOURCE_CLASS_TO_NODE_CLASS

    by_type = {
        NodeType.Model: r.Model,
        NodeType.Seed: r.Seed,
        NodeType.Snapshot: r.Snapshot,
        NodeType.Operation: r.HookNode,
        NodeType.Analysis: r.Analysis,
        NodeType.SqlOperation: r.SqlOperation,
    }

    def node(data: dict[str, Any]) -> Any:
        cls: Any
        kind = data["resource_type"]
        if kind == NodeType.Test:
            cls = r.GenericTest if data.get("test_metadata") else r.SingularTest
        else:
            cls = by_type[NodeType(kind)]
        return RESOURCE_CLASS_TO_NODE_CLASS[cls].from_resource(cls.from_dict(data))

    def each(cls: Any, section: dict[str, Any]) -> dict[str, Any]:
        node_cls = RESOURCE_CLASS_TO_NODE_CLASS.get(cls)
        return {
            uid: (node_cls.from_resource(cls.from_dict(d)) if node_cls else cls.from_dict(d))
            for uid, d in section.items()
        }

    from dbt.contracts.graph.nodes import UnitTestDefinition

    manifest = Manifest(
        nodes={uid: node(d) for uid, d in {**base.get("nodes", {}), **piece["nodes"]}.items()},
        sources=each(r.SourceDefinition, piece.get("sources", {})),
        macros=each(r.Macro, base["macros"]),
        groups=each(r.Group, base.get("groups", {})),
        unit_tests={
            uid: UnitTestDefinition.from_dict(d) for uid, d in piece.get("unit_tests", {}).items()
        },
        metadata=ManifestMetadata.from_dict(base["metadata"]),
    )
    manifest.build_flat_graph()
    return manifest


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def plain_dbt(executable: str, args: list[str], reason: str) -> None:
    print(f"dagfactory: running plain dbt: {reason}", file=sys.stderr, flush=True)
    try:
        os.execvp(executable, [executable, *args])
    except OSError as exc:
        print(f"dagfactory: cannot run {executable}: {exc.strerror}", file=sys.stderr)
        sys.exit(2)


# --- the worker's dbt server ---------------------------------------------------------------
#
# Importing dbt and its adapter is most of what a task on a slice costs (~2 s of CPU and
# ~110 MB of memory, every task). With ``--server=<idle seconds>``, run.py asks a process
# that has imported them once per worker (and per slices folder and Python) to fork a child
# for the task: the child shares the imported modules' memory with the server and starts
# at once. The child gets the task's stdin, stdout and stderr (passed over the socket),
# working folder and environment, runs exactly what run.py would (run_here), and its exit
# status becomes run.py's. When no server answers, run.py starts one for the next tasks and
# runs this task itself. The server leaves after ``idle`` seconds without a task, or when
# base.json or run.py change under it.

SERVER = "--server"  # run.py --server=<idle seconds> <dbt> <args>: ask the worker's server
SERVE = "--serve"  # run.py --serve=<idle seconds> <socket>: be the server
#: set by Airflow's KubernetesExecutor in a task's pod: one task per pod, nothing to share
IN_EXECUTOR_POD = "AIRFLOW_IS_K8S_EXECUTOR_POD"
_STDIO = (0, 1, 2)
_FORWARDED = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def server_address(folder: Path) -> Path | None:
    """The socket of this user's server for ``folder`` and this Python, in a folder only
    this user may enter (None when it is not one: another user could answer instead)."""
    import stat
    import tempfile

    root = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    root = root / f"dagfactory-dbt-{os.getuid()}"
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        st = root.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    key = hashlib.sha256(f"{folder}\0{sys.executable}".encode()).hexdigest()[:16]
    return root / f"{key}.sock"


@dataclass(frozen=True)
class TaskRequest:
    """What a task's process sends the server: what its child must become."""

    argv: list[str]  # run.py's arguments: the dbt executable and dbt's arguments
    cwd: str
    env: dict[str, str]
    umask: int = 0o022

    @classmethod
    def of_this_process(cls, argv: list[str]) -> TaskRequest:
        umask = os.umask(0)
        os.umask(umask)
        return cls(argv, os.getcwd(), dict(os.environ), umask)


def encode_request(request: TaskRequest) -> bytes:
    body = json.dumps(dataclasses.asdict(request)).encode()
    return len(body).to_bytes(8, "big") + body


def decode_request(data: bytes) -> TaskRequest | None:
    """The request of a whole message (None while it is incomplete)."""
    if len(data) < 8 or len(data) < 8 + int.from_bytes(data[:8], "big"):
        return None
    fields = json.loads(data[8 : 8 + int.from_bytes(data[:8], "big")])
    try:
        argv, cwd, env, umask = (fields[k] for k in ("argv", "cwd", "env", "umask"))
    except (KeyError, TypeError):
        raise ValueError("a request holds argv, cwd, env and umask") from None
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise ValueError("argv must be a list of strings")
    if not isinstance(cwd, str) or not isinstance(env, dict):
        raise ValueError("cwd must be a string and env an object")
    if not isinstance(umask, int) or not 0 <= umask <= 0o777:
        raise ValueError("umask must be a file mode")
    return TaskRequest(argv, cwd, {str(k): str(v) for k, v in env.items()}, umask)


def exit_code(status: int) -> int:
    """A shell's exit code for a wait status (128 + the signal that killed it)."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _stdio_fds() -> list[int]:
    """fds 0-2 to hand the server; a closed one is replaced by /dev/null."""
    fds = []
    for fd in _STDIO:
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def ask_server(address: Path, argv: list[str], idle: float) -> int | None:
    """Run the task in a child of this worker's server: its exit code, or None when no
    server took the task (one is then started for the next tasks)."""
    import signal
    import socket

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(address))
        request = encode_request(TaskRequest.of_this_process(argv))
        socket.send_fds(conn, [request], _stdio_fds())
        replies = conn.makefile("rb")
        first = replies.readline()
    except OSError:
        first = b""
    if not first:  # no server, or one that is leaving (its slices changed)
        conn.close()
        start_server(address, idle)
        return None
    child = json.loads(first)["pid"]

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.killpg(child, signum)

    for name in _FORWARDED:
        signal.signal(getattr(signal, name), forward)
    done: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):  # a server killed mid-task says no more
        for line in replies:
            done.update(json.loads(line))
    conn.close()
    if "status" not in done:  # the server died under the task
        print("dagfactory: the dbt server stopped during the task", file=sys.stderr)
        return 2
    if "cpu_s" in done:
        own = f", {done['own_mb']:.0f} MB of it its own" if "own_mb" in done else ""
        print(
            f"dagfactory: dbt ran in a child of the worker's dbt server (pid {child}): "
            f"{done['cpu_s']:.2f} s CPU, peak {done['max_rss_mb']:.0f} MB resident{own}",
            file=sys.stderr,
        )
    status = int(done["status"])
    if os.WIFSIGNALED(status):  # die the way the child died, as a shell would report it
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    return exit_code(status)


def start_server(address: Path, idle: float) -> None:
    """A server for the next tasks, in its own session so that it outlives this one."""
    import subprocess

    log = address.with_suffix(".log")
    try:
        with open(log, "ab") as out:
            subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), f"{SERVE}={idle}", str(address)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd="/",
                start_new_session=True,
            )
    except OSError as exc:
        print(f"dagfactory: cannot start a dbt server: {exc}", file=sys.stderr)


def _stamp(folder: Path) -> tuple[Any, ...]:
    """What changes when the slices folder is rewritten under a running server."""
    stamps: list[Any] = []
    for name in ("base.json", Path(__file__).name):
        try:
            st = (folder / name).stat()
            stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def _own_memory_mb() -> float | None:
    """Memory only this process maps (not shared with the server), from Linux's smaps."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return None
    private = ("Private_Clean", "Private_Dirty")
    return sum(int(fields[k].split()[0]) for k in private if k in fields) / 1024


def serve(address: Path, idle: float) -> int:
    """Import dbt once, then fork a child per task until ``idle`` seconds pass without one.

    It stops taking tasks (and leaves once its children are done) when idle, when its
    slices folder changes, or when its socket is removed or replaced; ``<socket>.pid``
    names it while it listens."""
    import fcntl
    import gc
    import selectors
    import signal
    import socket
    import threading
    import time

    folder = Path(__file__).resolve().parent
    lock = open(address.with_suffix(".lock"), "w")  # noqa: SIM115 (held for the server's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another server has this address
    pid_file = address.with_suffix(".pid")  # names the server that holds the lock
    written = address.with_suffix(f".pid.{os.getpid()}")
    written.write_text(f"{os.getpid()}\n")
    written.replace(pid_file)
    stamp = _stamp(folder)
    base = _read(folder / "base.json") or {}
    try:
        import dbt.cli.main  # noqa: F401

        _warm(folder, base)
        problem = "importing dbt started a thread" if threading.active_count() > 1 else None
    except Exception as exc:
        problem = f"cannot import dbt ({type(exc).__name__}: {exc})"
    if problem is not None:  # forking a threaded process is unsafe
        print(f"dagfactory: no dbt server, {problem}", file=sys.stderr, flush=True)
        time.sleep(idle)  # holding the lock, so that tasks' attempts to start one end at once
        return 1
    address.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(address))
    listener.listen(64)
    bound = address.stat().st_ino
    gc.collect()
    gc.freeze()  # the collector leaves the imported objects' pages shared with children
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    tasks: dict[int, socket.socket] = {}  # child pid -> its client's connection
    last = time.monotonic()
    asked_to_stop: list[int] = []  # SIGTERM: take no more tasks, leave after the running ones
    signal.signal(signal.SIGTERM, lambda signum, _frame: asked_to_stop.append(signum))
    print(f"dagfactory: dbt server {os.getpid()} at {address}", file=sys.stderr, flush=True)

    def ours() -> bool:
        try:
            return address.stat().st_ino == bound
        except OSError:
            return False

    def stop_listening() -> None:
        sel.unregister(listener)
        listener.close()
        if ours():
            address.unlink(missing_ok=True)

    while listener.fileno() >= 0 or tasks:
        for key, _ in sel.select(timeout=0.2):
            if key.fileobj is listener:
                conn, _addr = listener.accept()
                if _stamp(folder) != stamp:  # new slices: a new server must read them
                    conn.close()
                    stop_listening()
                    continue
                pid = _start_task(conn, listener, lock, tasks, base)
                if pid is not None:
                    tasks[pid] = conn
                    sel.register(conn, selectors.EVENT_READ, pid)
                last = time.monotonic()
            elif not key.fileobj.recv(1):  # type: ignore[union-attr]
                with contextlib.suppress(OSError):  # the client is gone (killed): so is its task
                    os.killpg(key.data, signal.SIGTERM)
                sel.unregister(key.fileobj)
        while tasks:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
            if not pid:
                break
            conn = tasks.pop(pid)
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(conn)
            done = {
                "status": status,
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
                "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
            }
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(done).encode() + b"\n")
            conn.close()
            last = time.monotonic()
        if listener.fileno() >= 0 and (
            (not tasks and time.monotonic() - last > idle) or asked_to_stop or not ours()
        ):
            stop_listening()
    pid_file.unlink(missing_ok=True)
    return 0


#: imported by every ``dbt build``/``run``/``test``/``seed``/``snapshot`` after start-up
_TASK_MODULES = (
    "dbt.cli.main",
    "dbt.task.build",
    "dbt.compilation",
    "dbt.graph",
    "multiprocessing.dummy",
    "sqlparse",
    "daff",
    "babel.dates",
    "_strptime",
)
#: dbt builds the JSON schema of these (to check dbt_project.yml, profiles.yml, selectors
#: and test results) in every process, once: ~1 s of CPU
_VALIDATED = (
    "dbt.contracts.project:ProjectFlags",
    "dbt.contracts.project:ProfileConfig",
    "dbt.contracts.project:Project",
    "dbt.contracts.project:PackageConfig",
    "dbt.contracts.project:Configuration",
    "dbt.contracts.selection:SelectorFile",
    "dbt.task.test:TestResultData",
)


def _warm(folder: Path, base: dict[str, Any]) -> None:
    """Do, once in the server, what every task's dbt does first and the same way: import
    its modules, build the JSON schemas it checks files with, and the code with which its
    classes read a manifest. Anything that fails here is left for the child to meet."""
    import importlib

    for name in _TASK_MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    classes = list(_VALIDATED)
    adapter = base.get("metadata", {}).get("adapter_type")
    if isinstance(adapter, str) and adapter.isidentifier():  # its credentials' schema too
        classes.append(f"dbt.adapters.{adapter}:Plugin")
    for spec in classes:
        module, _, name = spec.partition(":")
        with contextlib.suppress(Exception):
            cls = getattr(importlib.import_module(module), name)
            (cls.credentials if name == "Plugin" else cls).json_schema()
    piece = next((p for p in sorted(folder.glob("*.json")) if p.name != "base.json"), None)
    if piece is not None:
        with contextlib.suppress(Exception):
            load_manifest(base, _read(piece) or {})


def _start_task(
    conn: Any, listener: Any, lock: Any, tasks: dict[int, Any], base: dict[str, Any]
) -> int | None:
    """Read a task's request and fork its child; the child's pid (None: a bad request)."""
    import socket

    conn.settimeout(10)
    try:
        data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, len(_STDIO))
        while (request := decode_request(data)) is None:
            more = conn.recv(1 << 20)
            if not more:
                raise ValueError("the request ends early")
            data += more
        if len(fds) != len(_STDIO):
            raise ValueError("the request must carry stdin, stdout and stderr")
    except (OSError, ValueError) as exc:
        print(f"dagfactory: bad request: {exc}", file=sys.stderr, flush=True)
        conn.close()
        return None
    conn.settimeout(None)
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the task's process
        code = 2
        try:
            os.setpgid(0, 0)
            listener.close()
            lock.close()
            for other in tasks.values():
                other.close()
            code = _child(conn, fds, request, base)
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    with contextlib.suppress(OSError):  # unless the child did it first
        os.setpgid(pid, pid)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    return pid


def _child(conn: Any, fds: list[int], request: TaskRequest, base: Any) -> int:
    """Become the task's process (its stdio, folder, environment, umask), then run_here."""
    import io
    import signal
    import time

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(Exception):  # Linux: the task ends with the server (PR_SET_PDEATHSIG)
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    sys.argv = [sys.argv[0], *request.argv]  # as run.py's own: dbt reads its command line there
    for target, fd in zip(_STDIO, fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), line_buffering=True)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), errors="backslashreplace", write_through=True
    )
    os.environ.clear()
    os.environ.update(request.env)
    os.umask(request.umask)
    time.tzset()
    code = 2
    try:
        os.chdir(request.cwd)
        code = run_here(request.argv[0], request.argv[1:], base)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
    import atexit

    atexit._run_exitfuncs()  # what the interpreter does at exit (dbt's and multiprocessing's)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    own = _own_memory_mb()
    if own is not None:
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"own_mb": round(own, 1)}).encode() + b"\n")
    return code


def run_here(executable: str, args: list[str], base: dict[str, Any] | None = None) -> int:
    """Run dbt on the task's slice in this process (or ``exec`` plain dbt and never return)."""
    folder = Path(__file__).resolve().parent
    if base is None:
        base = _read(folder / "base.json") or {}
    selector = _option(args, "--select") or ""
    piece = _read(folder / slice_name(selector)) if selector else None
    reason = why_not(base, piece, args)
    if reason is None:
        import dbt.version

        if dbt.version.__version__ != base.get("dbt_version"):
            reason = f"dbt {dbt.version.__version__} is not the dbt {base.get('dbt_version')} "
            reason += "that wrote the manifest"
    if reason is not None:
        plain_dbt(executable, args, reason)
    assert piece is not None
    try:
        manifest = load_manifest(base, piece)
    except Exception as exc:  # a dbt whose classes read the slice otherwise: dbt decides
        plain_dbt(executable, args, f"this dbt cannot read the slice ({type(exc).__name__})")
    from dbt.cli.main import dbtRunner

    print(f"dagfactory: dbt runs on the slice {slice_name(selector)}", file=sys.stderr)
    result = dbtRunner(manifest=manifest).invoke(args)
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


USAGE = "usage: run.py [--server=<idle seconds>] <dbt executable> <dbt arguments...>"


def main(argv: list[str]) -> int:
    idle = 0.0
    if argv and argv[0].startswith(SERVE + "="):
        return serve(Path(argv[1]), float(argv[0].split("=", 1)[1])) if len(argv) == 2 else 2
    if argv and argv[0].startswith(SERVER + "="):
        try:
            idle = float(argv.pop(0).split("=", 1)[1])
        except ValueError:
            idle = 0.0
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    if idle > 0 and not os.environ.get(IN_EXECUTOR_POD):
        address = server_address(Path(__file__).resolve().parent)
        if address is not None:
            code = ask_server(address, argv, idle)
            if code is not None:
                return code
    return run_here(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
