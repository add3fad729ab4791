"""Real dbt runs the generated tasks on their slices, and runs what plain dbt would.

The shop sample project is built once (``dbt build``), parsed (``dbt parse``) and sliced
(``dagfactory dbt-slices``), as a worker image build would. Each generated task's
``bash_command`` then runs for real, with the slices folder in place: dbt must run on the
slice (run.py says so), succeed, and start exactly the nodes plain dbt starts for the same
command. A file changed after the slices were made sends the task to plain dbt.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import (
    bash_commands,
    dbt_executable,
    dbt_server_sockets,
    process_alive,
    stop_dbt_servers,
    wait_until,
)
from tests_paths import SHOP

from dagfactory import generate, load_config

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

ON_SLICE = "dagfactory: dbt runs on the slice"
PLAIN = "dagfactory: running plain dbt"
_START = re.compile(r"\d+ of \d+ START (.+?)(?: \.+)? \[RUN\]")


class Shop:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "shop"
        self.dbt = dbt_executable()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env.update(
            DBT_DUCKDB_PATH=str(root / "shop.duckdb"),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
            DBT_USE_COLORS="false",
            PYTHONPYCACHEPREFIX=str(root / "pycache"),
            AIRFLOW_CTX_DAG_ID="shop",
        )

    def dbt_setup(self, *args: str) -> None:
        dirs = ["--project-dir", str(self.project), "--profiles-dir", str(self.project)]
        done = subprocess.run(
            [self.dbt, *args, *dirs, "--log-path", str(self.root / "setup-logs")],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:]

    def write_slices(self, manifest: Path, out: Path | None = None) -> str:
        """``dagfactory dbt-slices`` in dbt's environment, as in an image build."""
        argv = [sys.executable, "-m", "dagfactory", "dbt-slices", str(manifest)]
        argv += ["--project-dir", str(self.project), "--python", sys.executable]
        argv += ["--out", str(out)] if out else []
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def commands(self, slices: bool | str, server: bool = False) -> dict[str, str]:
        """Every task's ``bash_command``; without ``server``, each task imports dbt itself."""
        settings: dict[str, object] = {
            "routing.force": "celery",
            "dbt.executable": self.dbt,
            "dbt.project_dir": str(self.project),
            "dbt.target_base": str(self.root / "targets"),
            "dbt.server_idle_seconds": 600 if server else 0,
        }
        if not slices:
            settings["dbt.slices"] = ""
        elif isinstance(slices, str):
            settings["dbt.slices"] = slices
        config = load_config(None, settings)
        return bash_commands(generate(self.project / "target" / "manifest.json", config).files)

    def run(self, task: str, command: str) -> tuple[int, str]:
        done = subprocess.run(
            ["bash", "-c", command],
            env={**self.env, "AIRFLOW_CTX_TASK_ID": task},
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        return done.returncode, done.stdout


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Shop:
    root = tmp_path_factory.mktemp("shop-slices")
    shutil.copytree(SHOP, root / "shop", ignore=shutil.ignore_patterns("target", "*.duckdb"))
    shop = Shop(root)
    shop.dbt_setup("build")  # every relation exists, as after yesterday's run
    shop.dbt_setup("parse")  # the image build: parse state and manifest
    assert "wrote 24 slices" in shop.write_slices(shop.project / "target" / "manifest.json")
    return shop


IN_SERVER = "dagfactory: dbt ran in a child of the worker's dbt server"


@pytest.fixture()
def fake_dbt(tmp_path: Path) -> Path:
    """A "dbt" that says what it got and exits 3, or, with FAKE_DBT_PID set, writes its pid
    there and sleeps: run.py hands it every task whose selector has no slice."""
    script = tmp_path / "fake-dbt"
    script.write_text(
        "#!/bin/sh\n"
        'if [ -n "$FAKE_DBT_PID" ]; then echo $$ > "$FAKE_DBT_PID"; exec sleep 120; fi\n'
        'echo "fake dbt got: $*"; exit 3\n'
    )
    script.chmod(0o755)
    return script


def _server_up(shop: Shop, fake: Path, idle: int = 600) -> list[str]:
    """A running server for the shop's slices (started by a first task), and the argv of a
    task that its children hand to ``fake`` (no slice has the selector ``no_such_node``)."""
    stop_dbt_servers()
    assert wait_until(lambda: not dbt_server_sockets(), 10)
    argv = [str(shop.project / "target" / "dagfactory_slices" / "run.py"), f"--server={idle}"]
    argv += [str(fake), "build", "--select", "no_such_node"]
    first = subprocess.run(argv, env=shop.env, cwd=shop.root, capture_output=True, text=True)
    assert first.returncode == 3 and IN_SERVER not in first.stderr, first.stderr
    assert wait_until(lambda: bool(dbt_server_sockets())), "no dbt server started"
    return argv


def test_every_task_of_the_sample_project_runs_on_its_slice(shop: Shop) -> None:
    commands = shop.commands(slices=True)
    assert len(commands) == 24
    for task, command in sorted(commands.items()):
        code, out = shop.run(task, command)
        assert code == 0, f"{task}:\n{out[-3000:]}"
        assert ON_SLICE in out and PLAIN not in out, f"{task}:\n{out[-3000:]}"
        assert _START.findall(out), task


@pytest.mark.parametrize(
    "task",
    [
        "fct_orders",  # incremental, reads two ephemerals that read two staging models
        "mkt_channel_spend",  # carries a unit test; selected by path:
        "stg_ad_spend",  # reads a source, and its source test is a task of its own
        "relationships_fct_revenue_order_id__order_id__ref_fct_orders",  # two parents
        "customers_snapshot",
        "raw_customers",  # a seed
    ],
)
def test_a_task_on_its_slice_starts_what_plain_dbt_starts(shop: Shop, task: str) -> None:
    code, sliced = shop.run(task, shop.commands(slices=True)[task])
    assert code == 0 and ON_SLICE in sliced, sliced[-3000:]
    code, plain = shop.run(task, shop.commands(slices=False)[task])
    assert code == 0 and ON_SLICE not in plain, plain[-3000:]
    assert sorted(_START.findall(sliced)) == sorted(_START.findall(plain))


def test_a_file_changed_after_the_slices_were_made_sends_the_task_to_plain_dbt(
    shop: Shop,
) -> None:
    sql = shop.project / "models" / "marts" / "sales" / "sales_by_country.sql"
    original = sql.read_text()
    sql.write_text(original + "\n-- changed after the image build\n")
    try:
        code, out = shop.run("sales_by_country", shop.commands(slices=True)["sales_by_country"])
    finally:
        sql.write_text(original)
    assert code == 0, out[-3000:]
    assert f"{PLAIN}: models/marts/sales/sales_by_country.sql changed" in out
    assert ON_SLICE not in out


@pytest.mark.parametrize("server", [False, True], ids=["own_process", "forked_from_server"])
def test_a_failing_test_on_a_slice_fails_the_task_with_dbt_exit_code_1(
    shop: Shop, fake_dbt: Path, server: bool
) -> None:
    import duckdb

    if server:
        _server_up(shop, fake_dbt)
    # Same database file (its path is in the profile the slices were made with), one order
    # fewer: the relationships test from fct_revenue to fct_orders must fail.
    database = shop.root / "shop.duckdb"
    saved = shop.root / "shop.duckdb.saved"
    shutil.copyfile(database, saved)
    try:
        with duckdb.connect(str(database)) as con:
            con.execute(
                "delete from main.fct_orders"
                " where order_id = (select min(order_id) from main.fct_revenue)"
            )
        task = "relationships_fct_revenue_order_id__order_id__ref_fct_orders"
        code, out = shop.run(task, shop.commands(slices=True, server=server)[task])
    finally:
        shutil.move(saved, database)
    assert ON_SLICE in out and (IN_SERVER in out) == server, out[-3000:]
    assert code == 1 and "FAIL 1" in out, out[-3000:]


def test_another_target_or_database_than_the_parse_sends_the_task_to_plain_dbt(
    shop: Shop,
) -> None:
    command = shop.commands(slices=True)["stg_orders"]
    env = {**shop.env, "DBT_DUCKDB_PATH": str(shop.root / "elsewhere" / "shop.duckdb")}
    (shop.root / "elsewhere").mkdir(exist_ok=True)
    done = subprocess.run(
        ["bash", "-c", command],
        env={**env, "AIRFLOW_CTX_TASK_ID": "stg_orders"},
        cwd=shop.root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "environment variable DBT_DUCKDB_PATH differs" in done.stderr, done.stderr[-3000:]
    code, out = shop.run("stg_orders", command + " --target dev")
    assert "target dev is not the one the slices were parsed with" in out, out[-3000:]
    assert code == 0 and ON_SLICE not in out  # plain dbt ran it


def test_other_vars_than_the_parse_send_the_task_to_plain_dbt(shop: Shop) -> None:
    command = shop.commands(slices=True)["stg_orders"] + " --vars '{fail_test: true}'"
    code, out = shop.run("stg_orders", command)
    assert code == 0 and "--vars differ" in out and ON_SLICE not in out, out[-3000:]


def test_slices_from_the_manifest_dbt_run_writes_run_ephemeral_parents(shop: Shop) -> None:
    # `dbt compile` (like run and build) writes manifest.json with nodes marked compiled; a
    # slice of that manifest must still give fct_orders the CTEs of its ephemeral parents.
    compiled = shop.root / "compiled"
    shop.dbt_setup("compile", "--select", "+fct_orders", "--target-path", str(compiled))
    folder = shop.root / "slices-from-compile"
    shop.write_slices(compiled / "manifest.json", folder)
    code, out = shop.run("fct_orders", shop.commands(slices=str(folder))["fct_orders"])
    assert code == 0 and ON_SLICE in out, out[-3000:]


# --- the worker's dbt server (run.py --server) -------------------------------------------


def test_once_the_workers_dbt_server_listens_a_task_forks_from_it(
    shop: Shop, fake_dbt: Path
) -> None:
    _server_up(shop, fake_dbt)
    command = shop.commands(slices=True, server=True)["fct_orders"]
    code, forked = shop.run("fct_orders", command)
    assert code == 0 and ON_SLICE in forked and IN_SERVER in forked, forked[-3000:]
    code, plain = shop.run("fct_orders", shop.commands(slices=False)["fct_orders"])
    assert code == 0, plain[-3000:]
    assert sorted(_START.findall(forked)) == sorted(_START.findall(plain))


def test_the_task_gets_the_output_and_exit_code_of_its_child_in_the_server(
    shop: Shop, fake_dbt: Path
) -> None:
    argv = _server_up(shop, fake_dbt)
    done = subprocess.run(argv, env=shop.env, cwd=shop.root, capture_output=True, text=True)
    assert done.returncode == 3
    assert "fake dbt got: build --select no_such_node" in done.stdout
    assert "running plain dbt: no slice for this selector" in done.stderr
    assert IN_SERVER in done.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_task_stopped_by_a_signal_stops_its_child_in_the_server(
    shop: Shop, fake_dbt: Path, tmp_path: Path, signum: int
) -> None:
    # SIGTERM (Airflow's kill, a timeout) is forwarded; SIGKILL leaves the server to notice
    # that the task is gone.
    argv = _server_up(shop, fake_dbt)
    pid_file = tmp_path / "dbt.pid"
    env = {**shop.env, "FAKE_DBT_PID": str(pid_file)}
    task = subprocess.Popen(argv, env=env, cwd=shop.root, stdout=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: pid_file.is_file() and pid_file.read_text().strip(), 60)
        child = int(pid_file.read_text())
        task.send_signal(signum)
        assert task.wait(timeout=30) == -signum  # it dies of the signal, as dbt would
        assert wait_until(lambda: not process_alive(child), 10), "dbt outlived its task"
    finally:
        task.kill()


def test_the_server_leaves_when_the_slices_are_rewritten(shop: Shop, fake_dbt: Path) -> None:
    argv = _server_up(shop, fake_dbt)
    (pid_file,) = dbt_server_sockets()[0].parent.glob("*.pid")
    server = int(pid_file.read_text())
    base = shop.project / "target" / "dagfactory_slices" / "base.json"
    base.write_bytes(base.read_bytes())  # a new image's slices: same path, another file
    done = subprocess.run(argv, env=shop.env, cwd=shop.root, capture_output=True, text=True)
    assert done.returncode == 3 and IN_SERVER not in done.stderr  # this task ran on its own
    assert wait_until(lambda: not process_alive(server), 30), "the server kept the old slices"
    # ... and started a server for the next tasks, on the new slices
    assert wait_until(lambda: pid_file.is_file() and int(pid_file.read_text()) != server)
    assert wait_until(lambda: bool(dbt_server_sockets()))
    done = subprocess.run(argv, env=shop.env, cwd=shop.root, capture_output=True, text=True)
    assert done.returncode == 3 and IN_SERVER in done.stderr


def test_an_idle_server_leaves(shop: Shop, fake_dbt: Path) -> None:
    _server_up(shop, fake_dbt, idle=1)
    assert wait_until(lambda: not dbt_server_sockets(), 30), "the idle server stayed"
