"""The worker's dbt server (``run.py --server``): what is decided without running dbt.

The server itself (a real fork of a process that imported dbt, signals, exit codes, its
leaving) is exercised with real dbt in tests/integration/dbt/test_dbt_slices.py.
"""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests_paths import SHOP

from dagfactory import dbt_slice_runner as runner
from dagfactory import generate, load_config
from dagfactory.errors import ConfigError
from dagfactory.manifest import load_manifest
from dagfactory.specs import dbt_run

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


@given(
    argv=st.lists(text, min_size=1, max_size=8),
    cwd=text,
    env=st.dictionaries(text, text, max_size=8),
    umask=st.integers(0, 0o777),
)
def test_a_request_reads_back_as_it_was_sent(argv, cwd, env, umask):
    request = runner.TaskRequest(argv, cwd, env, umask)
    assert runner.decode_request(runner.encode_request(request)) == request


def test_a_task_sends_its_own_folder_environment_and_umask(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DBT_TARGET", "prod")
    old = os.umask(0o027)
    try:
        request = runner.TaskRequest.of_this_process(["dbt", "build"])
    finally:
        os.umask(old)
    assert request.cwd == str(tmp_path) and request.env["DBT_TARGET"] == "prod"
    assert request.umask == 0o027 and request.argv == ["dbt", "build"]


def test_a_request_cut_short_is_not_read_yet():
    whole = runner.encode_request(runner.TaskRequest(["dbt", "build", "--select", "x"], "/", {}))
    for end in range(len(whole)):
        assert runner.decode_request(whole[:end]) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"argv": [], "cwd": "/", "env": {}, "umask": 18}',
        b'{"argv": ["dbt", 1], "cwd": "/", "env": {}, "umask": 18}',
        b'{"argv": ["dbt"], "cwd": 7, "env": {}, "umask": 18}',
        b'{"argv": ["dbt"], "cwd": "/", "env": [], "umask": 18}',
        b'{"argv": ["dbt"], "cwd": "/", "env": {}, "umask": 4096}',
        b'{"argv": ["dbt"], "cwd": "/"}',
        b'["dbt"]',
        b"not json",
    ],
)
def test_a_request_that_is_not_a_command_is_refused(body):
    with pytest.raises(ValueError):
        runner.decode_request(len(body).to_bytes(8, "big") + body)


@pytest.mark.parametrize(
    ("status", "code"),
    [(0, 0), (1 << 8, 1), (2 << 8, 2), (signal.SIGTERM, 143), (signal.SIGKILL, 137)],
)
def test_the_task_exits_as_a_shell_reports_its_dbt(status, code):
    assert runner.exit_code(status) == code


def test_the_socket_is_in_a_folder_only_this_user_may_enter(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    address = runner.server_address(Path("/opt/airflow/dbt/shop/target/dagfactory_slices"))
    assert address is not None
    assert address.parent == tmp_path / f"dagfactory-dbt-{os.getuid()}"
    assert stat.S_IMODE(address.parent.stat().st_mode) == 0o700


def test_each_slices_folder_has_its_own_server(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    one = runner.server_address(Path("/opt/airflow/dbt/shop/target/dagfactory_slices"))
    other = runner.server_address(Path("/opt/airflow/dbt/jaffle/target/dagfactory_slices"))
    assert one != other


def test_no_server_where_other_users_could_answer_in_its_place(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    folder = tmp_path / f"dagfactory-dbt-{os.getuid()}"
    folder.mkdir(mode=0o700)
    folder.chmod(0o777)
    assert runner.server_address(Path("/slices")) is None
    folder.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    folder.symlink_to(elsewhere)
    assert runner.server_address(Path("/slices")) is None


class _Calls:
    def __init__(self, monkeypatch):
        self.asked: list[list[str]] = []
        self.here: list[list[str]] = []
        monkeypatch.setattr(runner, "ask_server", lambda _a, argv, _i: self.asked.append(argv))
        monkeypatch.setattr(runner, "run_here", lambda exe, args: self.here.append([exe, *args]))


def test_a_task_asks_the_server_and_runs_itself_when_none_took_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv(runner.IN_EXECUTOR_POD, raising=False)
    calls = _Calls(monkeypatch)  # ask_server answers None: no server took the task
    runner.main(["--server=600", "dbt", "build", "--select", "x"])
    assert calls.asked == [["dbt", "build", "--select", "x"]]
    assert calls.here == [["dbt", "build", "--select", "x"]]


@pytest.mark.parametrize("server", ["--server=0", None])
def test_without_a_server_idle_time_a_task_runs_itself(tmp_path, monkeypatch, server):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    calls = _Calls(monkeypatch)
    runner.main([server, "dbt", "build"] if server else ["dbt", "build"])
    assert calls.asked == [] and calls.here == [["dbt", "build"]]


def test_in_a_kubernetes_executor_pod_a_task_runs_itself(tmp_path, monkeypatch):
    # one task per pod: a server would import dbt for nobody
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv(runner.IN_EXECUTOR_POD, "True")
    calls = _Calls(monkeypatch)
    runner.main(["--server=600", "dbt", "build"])
    assert calls.asked == [] and calls.here == [["dbt", "build"]]


# --- the generated command ----------------------------------------------------------------


def _setup_line(overrides: dict) -> str:
    config = load_config(None, {"routing.force": "celery", **overrides})
    (staging,) = (f for f in generate(SHOP / "manifest.json", config).files if "staging" in f.name)
    return next(line for line in staging.text.splitlines() if line.startswith("DBT_SETUP = "))


@pytest.mark.parametrize(
    ("idle", "server"),
    [
        (None, " --server=600 dbt"),
        (30, " --server=30 dbt"),
        (0.5, " --server=0.5 dbt"),
        (0, " dbt"),
    ],
)
def test_tasks_ask_the_workers_dbt_server_unless_its_idle_time_is_0(idle, server):
    overrides = {} if idle is None else {"dbt.server_idle_seconds": idle}
    assert f"dagfactory_slices/run.py{server}; fi" in _setup_line(overrides)


def test_without_slices_there_is_no_server_either():
    manifest = load_manifest(SHOP / "manifest.json")
    assert dbt_run(manifest, load_config(None, {"dbt.slices": ""})).server_idle_seconds == 0


@pytest.mark.parametrize("idle", [-1, True, "600", float("inf")])
def test_a_server_idle_time_that_is_not_seconds_is_refused(idle):
    with pytest.raises(ConfigError, match=r"dbt\.server_idle_seconds"):
        load_config(None, {"dbt.server_idle_seconds": idle})
