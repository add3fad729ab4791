"""A `dagfactory push` to file:// killed (SIGKILL) while it writes: the next push takes over
the dead push's lease at once, removes its temp files and converges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dagfactory.publish import decode_state_doc

MARKER = ".dagfactory-build.json"


def big_build(out: Path, rev: int, n: int = 40, size: int = 2_000_000) -> dict[str, bytes]:
    """A build whose files are large enough that a push spends its time writing them."""
    out.mkdir(parents=True)
    files = {}
    for i in range(n):
        name = f"shop__g{i:02d}.py"
        files[name] = f"# rev {rev}\n".encode() + b"#" * size + b"\n"
        (out / name).write_bytes(files[name])
    marker = {
        "generator": "dagfactory",
        "team": "team-a",
        "project": "shop",
        "files": sorted(files),
    }
    (out / MARKER).write_text(json.dumps(marker))
    return files


def temps(folder: Path) -> list[str]:
    try:
        return [e.name for e in os.scandir(folder) if e.name.endswith(".dagfactory-tmp")]
    except FileNotFoundError:
        return []


@pytest.mark.slow
def test_a_push_killed_mid_write_leaves_no_temp_file_after_the_next_push(tmp_path: Path):
    root = tmp_path / "bucket"
    project = root / "team-a" / "shop"
    url = root.as_uri() + "/"
    argv = [sys.executable, "-m", "dagfactory", "push"]
    left = []
    for attempt in range(5):
        out = tmp_path / f"build-{attempt}"
        big_build(out, attempt)
        proc = subprocess.Popen([*argv, str(out), url], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and not temps(project) and time.monotonic() < deadline:
            time.sleep(0.001)
        proc.kill()
        proc.wait()  # reaped: its pid is gone, as after a CI job is cancelled
        left = temps(project)
        if left:
            break
    assert left, "no kill landed while a temp file existed"

    final = tmp_path / "build-final"
    files = big_build(final, 99, n=3, size=10)
    done = subprocess.run([*argv, str(final), url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert temps(project) == []
    assert {p.name: p.read_bytes() for p in project.glob("*.py")} == files
    state = (project / ".dagfactory" / "state.json").read_bytes()
    key = "team-a/shop/.dagfactory/state.json"
    assert decode_state_doc(state, key=key, team="team-a", project="shop") == (
        frozenset(files),
        None,
    )
