"""`dagfactory diff OLD NEW` and `preview --against DIR`: exactly what a dbt change changes.

The second build is the sample project with three edits to its real manifest: one model moved
to another group, one re-routed to Kubernetes, one removed (with its own tests). Both commands
must report exactly those three, as text, Markdown and JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import MOVED_MODEL as MOVED
from helpers import REMOVED_MODEL as REMOVED
from helpers import REROUTED_MODEL as REROUTED
from helpers import change_three_models
from tests_paths import SHOP

from dagfactory.cli import cli

CONFIG = str(SHOP / "dagfactory.yml")


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def two_builds(tmp_path: Path, shop_manifest: Path, edited_manifest) -> tuple[Path, Path, Path]:
    """(old build folder, new build folder, new manifest)."""
    new_manifest = edited_manifest(change_three_models, name="changed.json")
    old, new = tmp_path / "old", tmp_path / "new"
    run("build", "--manifest", str(shop_manifest), "--config", CONFIG, "--out", str(old))
    run("build", "--manifest", str(new_manifest), "--config", CONFIG, "--out", str(new))
    return old, new, new_manifest


EXPECTED_TEXT = """\
changes against {old}: models: 1 moved, 1 re-routed, 1 removed; DAGs: 0 added, 0 removed, 3 changed
  removed model.shop.finance_customer_ltv (was in shop_team__finance.finance_customer_ltv)
  re-routed model.shop.mkt_customer_segments: celery (default) -> kubernetes pod (meta, size small)
  moved model.shop.sales_by_country: shop_team__sales -> shop_team__marketing
  DAG changed: shop_team__finance
    task removed: finance_customer_ltv
  DAG changed: shop_team__marketing
    task added: sales_by_country
    route of mkt_customer_segments: celery (default) -> kubernetes pod (meta, size small)
  DAG changed: shop_team__sales
    task removed: sales_by_country
"""


def test_diff_text_lists_exactly_the_moved_rerouted_and_removed_models(two_builds):
    old, new, _ = two_builds
    assert run("diff", str(old), str(new)) == EXPECTED_TEXT.format(old=old)


def test_diff_json_holds_the_same_three_model_changes(two_builds):
    old, new, _ = two_builds
    data = json.loads(run("diff", str(old), str(new), "--format", "json"))
    assert [(m["kind"], m["unique_id"], m["before"], m["after"]) for m in data["models"]] == [
        ("removed", REMOVED, "shop_team__finance.finance_customer_ltv", ""),
        ("re-routed", REROUTED, "celery (default)", "kubernetes pod (meta, size small)"),
        ("moved", MOVED, "shop_team__sales", "shop_team__marketing"),
    ]
    changed = {d["dag_id"]: d for d in data["dags_changed"]}
    assert sorted(changed) == ["shop_team__finance", "shop_team__marketing", "shop_team__sales"]
    assert changed["shop_team__finance"]["tasks_removed"] == ["finance_customer_ltv"]
    assert changed["shop_team__marketing"]["tasks_added"] == ["sales_by_country"]
    assert changed["shop_team__marketing"]["changed"] == [
        {
            "what": "route of mkt_customer_segments",
            "before": "celery (default)",
            "after": "kubernetes pod (meta, size small)",
        }
    ]
    assert changed["shop_team__sales"]["tasks_removed"] == ["sales_by_country"]
    assert (data["dags_added"], data["dags_removed"], data["project"]) == ([], [], [])


def test_diff_markdown_is_the_same_list_as_bullets(two_builds):
    old, new, _ = two_builds
    text = run("diff", str(old), str(new), "--format", "markdown")
    lines = text.splitlines()
    assert lines[0].startswith("#### changes against ")
    bullets = [line for line in lines if line.startswith("- ")]
    assert bullets == [
        r"- removed model.shop.finance\_customer\_ltv (was in "
        r"shop\_team\_\_finance.finance\_customer\_ltv)",
        r"- re-routed model.shop.mkt\_customer\_segments: celery (default) -> "
        "kubernetes pod (meta, size small)",
        r"- moved model.shop.sales\_by\_country: shop\_team\_\_sales -> shop\_team\_\_marketing",
        r"- DAG changed: shop\_team\_\_finance",
        r"- DAG changed: shop\_team\_\_marketing",
        r"- DAG changed: shop\_team\_\_sales",
    ]


def test_preview_against_a_build_folder_reports_the_same_changes(two_builds):
    old, _, new_manifest = two_builds
    args = ["preview", "--manifest", str(new_manifest), "--config", CONFIG, "--against", str(old)]
    text = run(*args)
    assert EXPECTED_TEXT.format(old=old) in text + "\n"
    data = json.loads(run(*args, "--format", "json"))
    assert [m["kind"] for m in data["changes"]["models"]] == ["removed", "re-routed", "moved"]
    markdown = run(*args, "--format", "markdown")
    assert r"- moved model.shop.sales\_by\_country" in markdown


def test_a_rerun_prints_the_same_bytes(two_builds):
    old, _, new_manifest = two_builds
    args = ["preview", "--manifest", str(new_manifest), "--config", CONFIG, "--against", str(old)]
    for fmt in ("text", "markdown", "json"):
        assert run(*args, "--format", fmt) == run(*args, "--format", fmt)


def test_a_build_compared_with_itself_has_no_changes(two_builds):
    old, _, _ = two_builds
    assert run("diff", str(old), str(old)) == f"no changes against {old}\n"


def test_a_folder_without_a_build_summary_is_a_one_line_error(tmp_path, two_builds):
    old, _, _ = two_builds
    result = CliRunner().invoke(cli, ["diff", str(tmp_path / "nothing"), str(old)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "no such build folder" in result.stderr


def test_preview_against_a_file_url_reads_what_the_push_left(two_builds, tmp_path):
    old, _, new_manifest = two_builds
    url = (tmp_path / "bucket").as_uri() + "/dags/"
    run("push", str(old), url)
    pushed = tmp_path / "bucket" / "dags" / "shop_team" / "shop" / "shop.dagfactory.json"
    assert pushed.read_bytes() == (old / "shop.dagfactory.json").read_bytes()
    args = ["preview", "--manifest", str(new_manifest), "--config", CONFIG, "--against", url]
    assert run(*args).endswith(EXPECTED_TEXT.format(old=url))
