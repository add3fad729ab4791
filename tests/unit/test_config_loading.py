"""A config file is read as plain YAML data: every mistake or trick in it is one error naming
the file and the key, with exit code 2, never a traceback or minutes of work."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from tests_paths import SHOP

from dagfactory import ConfigError, load_config
from dagfactory.cli import cli

ALIAS_BOMB = "dbt:\n  vars:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"    {chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)

CASES = [
    pytest.param(
        b"dag_defaults:\n  start_date: 2024-13-45\n",
        r"key 'dag_defaults.start_date': '2024-13-45' is not an ISO date",
        id="impossible-date",
    ),
    pytest.param(b'team: "\xff\xfe"\n', r"not UTF-8 \(byte 7\)", id="not-utf8"),
    pytest.param(
        b"dag_defaults:\n  default_args: {start_date: 2024-01-01}\n",
        r"key 'dag_defaults.default_args.start_date': is a DAG setting",
        id="start-date-in-default-args",
    ),
    pytest.param(
        b"task_defaults:\n  retry_delay_seconds: .inf\n",
        r"key 'task_defaults.retry_delay_seconds': expected a finite number, got inf",
        id="infinity",
    ),
    pytest.param(
        b"dag_defaults:\n  default_args: {retries: .nan}\n",
        r"key 'dag_defaults.default_args.retries': expected a finite number, got nan",
        id="nan-in-free-form",
    ),
    pytest.param(
        b"team: !!binary aGVsbG8=\n",
        r"key 'team': expected plain YAML data, got bytes",
        id="binary",
    ),
    pytest.param(
        b"dbt:\n  vars: !!set {a, b}\n",
        r"key 'dbt.vars': expected plain YAML data, got set",
        id="set",
    ),
    pytest.param(
        b"task_defaults:\n  retries: " + b"9" * 5000 + b"\n",
        r"invalid YAML: Exceeds the limit",
        id="5000-digit-integer",
    ),
    pytest.param(ALIAS_BOMB.encode(), r"expands to over 100,000 values", id="alias-bomb"),
    pytest.param(b"a: &a [*a]\n", r"alias refers to itself", id="recursive-alias"),
    pytest.param(b"dbt:\n  vars: {1: x}\n", r"keys must be strings, got int 1", id="int-key"),
    pytest.param(b"team: [unclosed\n", r"invalid YAML: while parsing", id="broken-yaml"),
    pytest.param(b"- just\n- a list\n", r"must hold a mapping at the top", id="not-a-mapping"),
    pytest.param(b"#" * 1_000_001, r"over 1,000,000 bytes", id="too-large"),
]


@pytest.mark.parametrize(("content", "message"), CASES)
def test_a_bad_config_file_is_one_error_naming_the_file(tmp_path: Path, content, message):
    path = tmp_path / "dagfactory.yml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path)
    assert error.value.path == str(path)


@pytest.mark.parametrize(("content", "message"), CASES[:4])
def test_the_cli_prints_it_on_one_line_and_exits_2(tmp_path: Path, content, message):
    path = tmp_path / "dagfactory.yml"
    path.write_bytes(content)
    argv = ["build", "--manifest", str(SHOP / "manifest.json"), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, [*argv, "--config", str(path)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_dates_stay_text_so_a_valid_one_reads_as_written(tmp_path: Path):
    path = tmp_path / "dagfactory.yml"
    path.write_text("dag_defaults:\n  start_date: 2023-02-01\ndbt:\n  vars: {day: 2024-06-01}\n")
    config = load_config(path)
    assert config.dag_defaults.start_date == "2023-02-01"
    assert config.dbt.vars == {"day": "2024-06-01"}


def test_aliases_within_the_limit_still_work(tmp_path: Path):
    path = tmp_path / "dagfactory.yml"
    path.write_text("dbt:\n  env: &env {A: '1'}\ngroups:\n  sales: {tags: [a]}\n")
    assert load_config(path).dbt.env == {"A": "1"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("team", "shop\n"),
        ("project", "shop\n"),
        ("routing.kubernetes.namespace", "dbt\n"),
        ("routing.kubernetes.image", "dbt:1\n"),
        ("routing.kubernetes.pod.service_account_name", "runner\n"),
        ("routing.kubernetes.pod.labels", {"app": "dbt\n"}),
        ("routing.kubernetes.pod.node_selector", {"pool\n": "dbt"}),
        ("routing.kubernetes.pod.env_vars", {"DBT_X\n": "1"}),
    ],
)
def test_a_name_with_a_trailing_newline_is_refused(key, value):
    """Checks written as ``^...$`` let ``"shop\\n"`` through, to fail later at the push."""
    from dagfactory import DagFactoryError, generate

    overrides = {"team": "shop", key: value}
    with pytest.raises(DagFactoryError) as error:
        generate(SHOP / "manifest.json", load_config(SHOP / "dagfactory.yml", overrides))
    assert error.value.exit_code == 2
