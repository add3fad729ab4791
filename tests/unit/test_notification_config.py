"""`notifications:` in config and meta: what each level writes into a file, and each refusal."""

from __future__ import annotations

import pytest

from dagfactory import generate
from dagfactory.config import load_config
from dagfactory.errors import ConfigError, ManifestError
from dagfactory.notifications import TASK_EVENTS, parse_events

SMTP = "airflow.providers.smtp.notifications.smtp.SmtpNotifier"
SLACK = "airflow.providers.slack.notifications.slack.SlackNotifier"


def _notifier(path: str, **kwargs):
    return {"notifier": path, "kwargs": kwargs}


def _texts(overrides, manifest):
    config = load_config(overrides={"routing.force": "celery", **overrides})
    return {f.name: f.text for f in generate(manifest, config).files}


@pytest.mark.parametrize(
    ("overrides", "marketing_has", "finance_has"),
    [
        pytest.param(
            {"notifications.task.on_failure": [_notifier(SMTP, to="a@example.com")]},
            "on_failure_callback=[SmtpNotifier(to='a@example.com')]",
            "on_failure_callback=[SmtpNotifier(to='a@example.com')]",
            id="global task level reaches every DAG",
        ),
        pytest.param(
            {
                "notifications.task.on_failure": [_notifier(SMTP, to="a@example.com")],
                "groups.finance.notifications.task.on_failure": [_notifier(SLACK, channel="#f")],
            },
            "SmtpNotifier(to='a@example.com')",
            "on_failure_callback=[SlackNotifier(channel='#f')]",
            id="a group's event replaces the global one",
        ),
        pytest.param(
            {"notifications.dag.on_success": [_notifier(SMTP, to="b@example.com")]},
            "        on_success_callback=[SmtpNotifier(to='b@example.com')],\n    ) as dag:",
            "        on_success_callback=[SmtpNotifier(to='b@example.com')],\n    ) as dag:",
            id="DAG level goes on the DAG",
        ),
    ],
)
def test_config_levels_write_callbacks(overrides, marketing_has, finance_has, shop_manifest):
    texts = _texts(overrides, shop_manifest)
    assert marketing_has in texts["shop__marketing.py"]
    assert finance_has in texts["shop__finance.py"]
    assert "from airflow.providers." in texts["shop__finance.py"]


def test_a_node_event_beats_its_group_and_the_global_one(edited_manifest):
    def edit(raw):
        meta = raw["nodes"]["model.shop.mkt_channel_spend"]["config"]["meta"]
        meta["dagfactory"] = {"notifications": {"on_failure": []}}

    manifest = edited_manifest(edit)
    text = _texts({"notifications.task.on_failure": [_notifier(SMTP, to="a")]}, manifest)[
        "shop__marketing.py"
    ]
    assert text.count("on_failure_callback=") == 1  # only mkt_customer_segments keeps it


@pytest.mark.parametrize(
    ("overrides", "key", "match"),
    [
        ({"notifications.task.on_failure": [_notifier("os.system")]}, "notifications.task.on_failure[0].notifier", "outside the allowed modules"),
        ({"notifications.task.on_failure": [_notifier("airflow.providersx.A")]}, "notifications.task.on_failure[0].notifier", "outside"),
        ({"notifications.dag.on_retry": [_notifier(SMTP)]}, "notifications.dag.on_retry", "unknown event"),
        ({"notifications.task.on_failure": [_notifier("not a path")]}, "notifications.task.on_failure[0].notifier", "dotted import path"),
        ({"notifications.task.on_failure": [_notifier("airflow.providers.x.DAG")]}, "notifications.task.on_failure[0].notifier", "cannot be imported"),
        ({"groups.finance.notifications.task.on_failure": [_notifier("evil.Notifier")]}, "groups.finance.notifications.task.on_failure[0].notifier", "outside"),
    ],
    ids=["os.system", "prefix is not a package boundary", "a DAG does not retry", "not dotted", "shadows DAG", "group level"],
)  # fmt: skip
def test_a_bad_notifier_is_a_config_error_naming_the_key(overrides, key, match):
    with pytest.raises(ConfigError, match=match) as error:
        load_config(overrides=overrides)
    assert error.value.key == key and error.value.exit_code == 2


def test_an_argument_must_be_a_literal():
    with pytest.raises(Exception, match="literals"):
        parse_events(
            {"on_failure": [{"notifier": SMTP, "kwargs": {"to": {1, 2}}}]}, TASK_EVENTS, "k"
        )


def test_a_node_cannot_widen_the_allow_list(edited_manifest):
    def edit(raw):
        meta = raw["nodes"]["model.shop.mkt_channel_spend"]["config"]["meta"]
        meta["dagfactory"] = {"notifications": {"on_failure": ["evil.Notifier"]}}

    config = load_config(overrides={"routing.force": "celery"})
    with pytest.raises(ManifestError, match="outside the allowed modules") as error:
        generate(edited_manifest(edit), config)
    assert error.value.unique_id == "model.shop.mkt_channel_spend"
    assert error.value.key == "meta.dagfactory.notifications.on_failure[0].notifier"
