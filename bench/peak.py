"""Run a command and measure its CPU, wall time and true peak memory.

Why not ``os.wait4`` on a child of the benchmark: Python starts children with ``vfork``,
and Linux then reports as the child's ``ru_maxrss`` the *benchmark's* own peak (the
address space it had when the child called ``exec``). A benchmark that once held a 2,000
model manifest in memory would see every dbt process peak at least there. So a small
launcher (``python -S``, ~8 MB) forks and execs the command and reports what ``wait4``
says of it: its floor is the launcher's own few megabytes, the same for every command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# argv: <result file> <command...>; writes [wait status, cpu s, wall s, peak RSS kB]
_LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as exc:
        os.write(2, f"cannot run {sys.argv[2]}: {exc}\\n".encode())
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    json.dump([status, usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss], out)
"""


@dataclass(frozen=True)
class Peak:
    returncode: int
    cpu_s: float
    wall_s: float
    max_rss_mb: float


def run_measured(
    argv: list[str],
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
) -> Peak:
    """Run ``argv`` to completion through the launcher; what it cost."""
    with tempfile.TemporaryDirectory(prefix="peak-") as folder:
        result = Path(folder) / "result.json"
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(result), *argv]
        subprocess.run(launcher, env=env, cwd=cwd, stdout=stdout, stderr=stderr, check=False)
        status, cpu, wall, rss_kb = json.loads(result.read_text())
    return Peak(os.waitstatus_to_exitcode(status), cpu, wall, rss_kb / 1024)
