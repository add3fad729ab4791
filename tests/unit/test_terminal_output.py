"""What the CLI prints holds user text (owners, group names, error details) as data: a newline
cannot forge a summary or ``error:`` line, and a terminal escape sequence arrives escaped."""

from __future__ import annotations

from click.testing import CliRunner

from dagfactory.cli import cli

HOSTILE_OWNER = "Ops\nerror: forged line\x1b]0;pwned\x07\x9b31m"


def _with_owner(raw):
    raw["groups"]["group.shop.sales"]["owner"]["name"] = HOSTILE_OWNER


def _build(manifest, out):
    argv = ["build", "--manifest", str(manifest), "--out", str(out), "--runner", "celery"]
    return CliRunner().invoke(cli, argv)


def _clean(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert not any(line.startswith("error: forged") for line in text.splitlines())


def test_an_owner_with_controls_prints_on_its_own_row_escaped(edited_manifest, tmp_path):
    result = _build(edited_manifest(_with_owner), tmp_path / "out")
    assert result.exit_code == 0, result.output
    _clean(result.stdout)
    row = next(line for line in result.stdout.splitlines() if line.startswith("shop__sales"))
    assert "Ops\\nerror: forged line\\x1b]0;pwned\\x07\\x9b31m" in row


def test_a_warning_about_a_hostile_key_is_one_escaped_line(shop_manifest, tmp_path):
    config = tmp_path / "dagfactory.yml"
    config.write_text('dbt:\n  vars: {"run\\nerror: forged\\e[2J": "{{ ds }}"}\n')
    argv = ["build", "--manifest", str(shop_manifest), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, [*argv, "--runner", "celery", "--config", str(config)])
    assert result.exit_code == 0, result.output
    _clean(result.stderr)
    assert [line[:8] for line in result.stderr.splitlines()] == ["warning:"]
    assert "run\\nerror: forged\\x1b[2J" in result.stderr
