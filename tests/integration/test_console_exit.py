"""The console script ends its process itself (``os._exit`` after flushing): what it prints
and the exit code it returns must be exactly those of a normal exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests_paths import SHOP

DAGFACTORY = Path(sys.executable).parent / "dagfactory"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(DAGFACTORY), *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_a_successful_build_prints_its_summary_and_exits_0(tmp_path: Path) -> None:
    done = _run("build", "--manifest", str(SHOP / "manifest.json"), "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    assert (tmp_path / "o").is_dir()


def test_bad_input_exits_2_with_its_one_line_error(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{not json")
    done = _run("build", "--manifest", str(manifest), "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error:")


def test_help_output_reaches_a_pipe_whole() -> None:
    done = _run("--help")
    assert done.returncode == 0
    assert done.stdout.rstrip().splitlines()[0].startswith("Usage:")
    assert "build" in done.stdout


def test_a_usage_error_exits_2() -> None:
    assert _run("build", "--no-such-option").returncode == 2
