"""Notifications from config reach a real mail server when a task fails in a real Airflow run.

The sample project is built with a ``notifications:`` section naming the SMTP provider's
notifier, and with ``dbt.executable: "false"`` so each dbt task fails at once without needing a
warehouse. Airflow 3.3 runs one DAG with ``dag.test()`` (the e2e harness's runner, in a
temporary ``AIRFLOW_HOME``); one task runs and fails, the other is marked successful. The
notifier sends through the ``smtp_default`` connection, given as ``AIRFLOW_CONN_SMTP_DEFAULT``,
to an aiosmtpd server this test starts on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from e2e.harness import RUNNER, AirflowHome
from helpers import load_dagbag
from s3servers import free_port

from dagfactory.cli import main as dagfactory_main

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
SHOP_MANIFEST = REPO / "sample_manifests" / "shop" / "manifest.json"
DAG_ID = "shop_team__marketing"
FAILING, SKIPPED = "mkt_channel_spend", "mkt_customer_segments"
OWNER = "Growth Marketing"
CONFIG = textwrap.dedent(
    """\
    team: shop_team
    dbt:
      executable: "false"    # every dbt task fails at once
    task_defaults:
      retries: 0
    notifications:
      task:
        on_failure:
          - notifier: airflow.providers.smtp.notifications.smtp.SmtpNotifier
            kwargs:
              to: data-oncall@example.com
              from_email: airflow@example.com
              subject: "[{{ dag.dag_id }}] {{ ti.task_id }} failed"
              html_content: "DAG {{ dag.dag_id }}, task {{ ti.task_id }}, owner {{ task.owner }}"
    """
)


@pytest.fixture
def smtp_server():
    """aiosmtpd on 127.0.0.1: (port, the messages it received as raw bytes)."""
    controller_module = pytest.importorskip("aiosmtpd.controller")
    received: list[bytes] = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
            received.append(envelope.original_content or envelope.content)
            return "250 OK"

    port = free_port()
    controller = controller_module.Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def _build(tmp_path: Path, config: str) -> tuple[int, Path]:
    """`dagfactory build` of the sample through the CLI: (exit code, output folder)."""
    (tmp_path / "dagfactory.yml").write_text(config)
    out = tmp_path / "dags"
    argv = ["build", "--manifest", str(SHOP_MANIFEST), "--out", str(out), "--runner", "celery"]
    with pytest.raises(SystemExit) as done:
        dagfactory_main([*argv, "--config", str(tmp_path / "dagfactory.yml")])
    return done.value.code or 0, out


def test_a_failing_task_sends_one_mail_naming_dag_task_and_owner(smtp_server, tmp_path):
    port, received = smtp_server
    code, dags = _build(tmp_path, CONFIG)
    assert code == 0
    home = AirflowHome(tmp_path / "airflow", dags)
    plan = {
        "migrate": True,
        "pools": {},
        "logical_date": "2024-06-01T00:00:00+00:00",
        "runs": [{"dag_id": DAG_ID, "mark_success_pattern": f"^{SKIPPED}$"}],
    }
    plan_path, result_path = tmp_path / "plan.json", tmp_path / "result.json"
    plan_path.write_text(json.dumps(plan))
    connection = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 10, "retry_limit": 1},
    }
    env = {**home.env(), "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(connection)}
    run = subprocess.run(
        [sys.executable, str(RUNNER), str(plan_path), str(result_path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (dag_run,) = json.loads(result_path.read_text())["runs"]
    states = {ti["task_id"]: ti["state"] for ti in dag_run["task_instances"]}
    assert states == {FAILING: "failed", SKIPPED: "success"}, dag_run["error"]

    (raw,) = received
    message = message_from_bytes(raw)
    subject = str(make_header(decode_header(message["Subject"])))
    assert subject == f"[{DAG_ID}] {FAILING} failed"
    body = b"".join(
        part.get_payload(decode=True) or b"" for part in message.walk() if not part.is_multipart()
    ).decode()
    assert f"DAG {DAG_ID}, task {FAILING}, owner {OWNER}" in body
    assert message["To"] == "data-oncall@example.com"


def test_a_notifier_outside_the_allow_list_is_a_build_error(tmp_path, capsys):
    config = CONFIG.replace("airflow.providers.smtp.notifications.smtp.SmtpNotifier", "os.system")
    code, out = _build(tmp_path, config)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "notifications.task.on_failure[0].notifier" in err and "'os.system'" in err
    assert not out.exists()


def test_dag_level_notifiers_load_as_the_dags_callbacks(tmp_path):
    config = CONFIG.replace("\n  task:\n", "\n  dag:\n")
    assert config != CONFIG
    code, dags = _build(tmp_path, config)
    assert code == 0
    dagbag = load_dagbag(dags)
    assert dagbag.import_errors == {}
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    for dag in dagbag.dags.values():
        (notifier,) = dag.on_failure_callback
        assert isinstance(notifier, SmtpNotifier) and notifier.to == "data-oncall@example.com"
        assert all(not task.on_failure_callback for task in dag.tasks)
