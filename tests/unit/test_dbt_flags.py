"""Which cheap dbt flags a task passes, judged from the dbt version that wrote the manifest.

A flag a dbt release does not know fails every task ("No such option"), so each flag is
passed only from the first release whose ``dbt build``/``dbt test`` accept it after the
sub-command (read from each release's ``dbt/cli/main.py``; tried on dbt-core 1.6 and 1.7).
"""

from __future__ import annotations

import pytest
from helpers import bash_commands
from tests_paths import SHOP

from dagfactory import generate, load_config
from dagfactory.manifest import load_manifest
from dagfactory.specs import dbt_argv_prefix


def _flags(edited_manifest, dbt_version: str, **dbt) -> tuple[str, ...]:
    path = edited_manifest(lambda raw: raw["metadata"].update(dbt_version=dbt_version))
    config = load_config(None, {f"dbt.{key}": value for key, value in dbt.items()})
    return dbt_argv_prefix(load_manifest(path), config)[1]


@pytest.mark.parametrize(
    ("dbt_version", "passed"),
    [
        pytest.param("1.11.16", True, id="1.11"),
        pytest.param("1.7.0", True, id="1.7"),
        pytest.param("1.6.9", False, id="1.6-group-flag-only"),
        pytest.param("1.5.0", False, id="1.5-group-flag-only"),
        pytest.param("2024.9.238", True, id="dbt-cloud-release-track"),
        pytest.param("", False, id="unknown"),
    ],
)
def test_cache_selected_only_and_no_write_json_need_dbt_1_7(edited_manifest, dbt_version, passed):
    flags = _flags(edited_manifest, dbt_version)
    assert ("--cache-selected-only" in flags) is passed
    assert ("--no-write-json" in flags) is passed


def test_cache_selected_only_can_be_switched_off(edited_manifest):
    assert "--cache-selected-only" not in _flags(
        edited_manifest, "1.11.16", cache_selected_only=False
    )


def test_cache_selected_only_can_be_forced_for_a_manifest_without_a_version(edited_manifest):
    assert "--cache-selected-only" in _flags(edited_manifest, "", cache_selected_only=True)


def test_the_parse_state_is_never_trusted_without_reading_the_project():
    """``--no-partial-parse-file-diff`` saves ~0.15 s of ~8 s per task but runs stale SQL
    when the state is older than the files, and runs nothing (exit 0) when dbt cannot use
    the state (other vars, profile or dbt version): docs/running-dbt.md."""
    config = load_config(None, {"routing.force": "celery"})
    for command in bash_commands(generate(SHOP / "manifest.json", config).files).values():
        assert "DBT_PARTIAL_PARSE_FILE_PATH=" in command
        assert "PARTIAL_PARSE_FILE_DIFF" not in command.upper().replace("-", "_")
