"""The output swap under real kills, and what Airflow's file discovery sees meanwhile.

A build runs in a subprocess and is SIGKILLed at each step of the swap (a test hook in
``buildfolder``) and after a range of delays; ``--out`` must then hold a complete build, old
or new, and the next build must leave no staging folder behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dagfactory.buildfolder import read_build_folder, replace_folder

REPO = Path(__file__).resolve().parents[2]
OLD = {f"shop__old_{i:04d}.py": f"# old build, dag {i}\n".encode() * 40 for i in range(300)}
NEW = {f"shop__new_{i:04d}.py": f"# new build, dag {i}\n".encode() * 40 for i in range(300)}
STEPS = ["staging-created", "files-half-written", "marker-written", "swapped"]

_DRIVER = textwrap.dedent(
    """
    import sys
    from dagfactory import buildfolder
    if sys.argv[2] == "renames":
        buildfolder._EXCHANGE = None
    files = {f"shop__new_{i:04d}.py": f"# new build, dag {i}\\n".encode() * 40 for i in range(300)}
    buildfolder.replace_folder(sys.argv[1], files, team="team-a", project="shop")
    """
)


def _start(out: Path, *, kill_at: str | None = None, swap: str = "exchange") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("_DAGFACTORY_KILL_AT", None)
    if kill_at:
        env["_DAGFACTORY_KILL_AT"] = kill_at
    command = [sys.executable, "-c", _DRIVER, str(out), swap]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE)


def _assert_complete_build(out: Path) -> str:
    """``out`` holds exactly one whole build; which one."""
    _, files = read_build_folder(out)
    assert files in (OLD, NEW)
    assert sorted(p.name for p in out.iterdir()) == sorted([*files, ".dagfactory-build.json"])
    return "old" if files == OLD else "new"


def _assert_next_build_cleans_up(out: Path) -> None:
    replace_folder(out, NEW, team="team-a", project="shop")
    assert [p.name for p in out.parent.iterdir()] == [out.name]
    assert _assert_complete_build(out) == "new"


@pytest.mark.parametrize("step", STEPS)
def test_a_build_killed_at_any_step_leaves_a_whole_build_and_no_debris_after_the_next(
    tmp_path, step
):
    out = tmp_path / "dags"
    replace_folder(out, OLD, team="team-a", project="shop")
    process = _start(out, kill_at=step)
    assert process.wait(60) == -signal.SIGKILL
    expected = "new" if step == "swapped" else "old"
    assert _assert_complete_build(out) == expected
    _assert_next_build_cleans_up(out)


@pytest.mark.slow
def test_a_build_killed_after_any_delay_leaves_a_whole_build(tmp_path):
    out = tmp_path / "dags"
    replace_folder(out, OLD, team="team-a", project="shop")
    started = time.monotonic()
    assert _start(out).wait(60) == 0
    whole_run = time.monotonic() - started  # a loaded machine is slower: scale the delays
    seen = set()
    # 0 to 1.25 runs, then longer until one run finishes before its kill: a loaded machine
    # can make a later run slower than the first, and the delays must reach past the swap
    delays = [whole_run * step / 12 for step in range(16)]
    delays += [whole_run * 1.5**n for n in range(1, 8)]
    for delay in delays:
        replace_folder(out, OLD, team="team-a", project="shop")
        process = _start(out)
        time.sleep(delay)
        finished_first = process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait(60)
        seen.add(_assert_complete_build(out))
        if finished_first and delay > whole_run:
            break
    _assert_next_build_cleans_up(out)
    assert seen == {"old", "new"}  # the delays covered both sides of the swap


def test_the_two_rename_fallback_is_whole_after_the_swap_too(tmp_path):
    """Without an exchange, only the instant between the renames has no ``--out``."""
    out = tmp_path / "dags"
    replace_folder(out, OLD, team="team-a", project="shop")
    process = _start(out, kill_at="swapped", swap="renames")
    assert process.wait(60) == -signal.SIGKILL
    assert _assert_complete_build(out) == "new"
    _assert_next_build_cleans_up(out)


@pytest.mark.parametrize("step", ["files-half-written", "swapped"])
def test_the_dagfactory_command_killed_mid_swap_leaves_a_whole_build(tmp_path, step):
    """The same under ``python -m dagfactory build``: the CLI goes through the one swap."""
    out = tmp_path / "dags"
    shop = REPO / "sample_manifests" / "shop" / "manifest.json"
    command = [sys.executable, "-m", "dagfactory", "build", "--manifest", str(shop)]
    command += ["--out", str(out), "--runner", "celery"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([*command, "--team", "before"], env=env, check=True, capture_output=True)
    killed = subprocess.run(
        command, env={**env, "_DAGFACTORY_KILL_AT": step}, capture_output=True, check=False
    )
    assert killed.returncode == -signal.SIGKILL
    marker, files = read_build_folder(out)
    assert marker.team == ("shop_team" if step == "swapped" else "before")
    assert sorted(p.name for p in out.iterdir()) == sorted([*files, ".dagfactory-build.json"])
    subprocess.run(command, env=env, check=True, capture_output=True)
    assert [p.name for p in tmp_path.iterdir()] == ["dags"]


@pytest.mark.airflow
@pytest.mark.parametrize("syntax", ["glob", "regexp"])
@pytest.mark.parametrize("step", ["files-half-written", "marker-written", "swapped"])
def test_airflow_never_finds_a_staged_or_outgoing_build_beside_out(
    tmp_path, monkeypatch, step, syntax
):
    """``--out`` inside a DAG folder: discovery lists only the files at ``--out``, with
    either ``[core] dag_ignore_file_syntax``."""
    pytest.importorskip("airflow")
    monkeypatch.setenv("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX", syntax)
    from airflow.utils.file import list_py_file_paths

    dag_folder = tmp_path / "dags"
    out = dag_folder / "team-a"
    replace_folder(out, OLD, team="team-a", project="shop")
    process = _start(out, kill_at=step)
    assert process.wait(60) == -signal.SIGKILL
    assert len(list(dag_folder.iterdir())) == 2  # --out and the killed build's staging folder
    found = {Path(path).relative_to(dag_folder) for path in list_py_file_paths(dag_folder, False)}
    which = NEW if step == "swapped" else OLD
    assert found == {Path("team-a", name) for name in which}
