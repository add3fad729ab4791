"""`dagfactory preview` and the build summary it reads: what a build contains, for people.

The summary (`<project>.dagfactory.json`) is written by every build beside the DAG files and
pushed with them, so a later preview compares with it instead of executing generated code.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests_paths import HOSTILE, SHOP

from dagfactory import preview as pv
from dagfactory.buildfolder import BUILD_MARKER
from dagfactory.cli import cli
from dagfactory.errors import ConfigError

CONFIG = str(SHOP / "dagfactory.yml")


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def build(manifest: Path, out: Path, config: str = CONFIG) -> Path:
    run("build", "--manifest", str(manifest), "--config", config, "--out", str(out))
    return out


def summary(out: Path) -> bytes:
    return (out / "shop.dagfactory.json").read_bytes()


def test_every_build_writes_the_summary_and_lists_it_in_the_marker(shop_manifest, tmp_path):
    out = build(shop_manifest, tmp_path / "dags")
    marker = json.loads((out / BUILD_MARKER).read_bytes())
    assert "shop.dagfactory.json" in marker["files"]
    data = json.loads(summary(out))
    assert sorted(data["dags"]) == sorted(p.stem for p in out.glob("*.py"))
    assert data["dags"]["shop_team__finance"]["tasks"]["fct_revenue"]["runner"] == "kubernetes"


def test_the_summary_is_byte_identical_for_the_same_inputs(shop_manifest, tmp_path):
    assert summary(build(shop_manifest, tmp_path / "a")) == summary(
        build(shop_manifest, tmp_path / "b")
    )


def test_rerouting_one_model_changes_only_the_lines_of_its_route(
    shop_manifest, edited_manifest, tmp_path
):
    def reroute(raw):
        node = raw["nodes"]["model.shop.mkt_customer_segments"]
        node["meta"] = {**node["meta"], "dagfactory": {"runner": "kubernetes"}}

    before = summary(build(shop_manifest, tmp_path / "a")).decode().splitlines()
    after = summary(build(edited_manifest(reroute), tmp_path / "b")).decode().splitlines()
    changed = [
        line
        for line in difflib.unified_diff(before, after, n=0, lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == [
        '-          "reason": "default",',
        '-          "resource_type": "model",',
        '-          "runner": "celery",',
        '+          "reason": "meta",',
        '+          "resource_type": "model",',
        '+          "runner": "kubernetes",',
        '-          "size": null,',
        '+          "size": "small",',
    ]


def test_the_summary_never_ends_in_py_and_its_name_is_a_safe_file_name():
    assert pv.sidecar_name("shop") == "shop.dagfactory.json"
    assert pv.sidecar_name("../../etc/x y") == "etc_x_y.dagfactory.json"
    assert not pv.sidecar_name("a.py").endswith(".py")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"not json", "cannot read the build summary", id="not-json"),
        pytest.param(b'{"generator": "x"}', "not a dagfactory summary", id="foreign"),
        pytest.param(
            b'{"generator": "dagfactory", "format": 1, "dbt": {"executable": ["dbt"], '
            b'"flags": []}, "dags": {"d": {"tasks": 5}}}',
            "dags.d.tasks is not an object",
            id="bad-field",
        ),
    ],
)
def test_a_bad_summary_is_a_one_line_error_naming_the_field(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        pv.from_sidecar(data, path="old/shop.dagfactory.json")
    assert "\n" not in caught.value.format_message()


def test_text_shows_each_dag_its_feeds_and_each_task_with_runner_and_command(shop_manifest):
    text = run("preview", "--manifest", str(shop_manifest), "--config", CONFIG)
    assert text.startswith("shop (team shop_team): 5 DAGs, 24 tasks, 7 links between DAGs")
    assert "shop_team__finance: 8 tasks; starts assets; owner Finance Engineering" in text
    assert "  <- shop_team__sales: dim_customers_v1, fct_orders" in text
    assert "fct_revenue: kubernetes pod (meta, size small)" in text
    assert "build --select fqn:shop.marts.finance.fct_revenue" in text
    assert "every dbt command: dbt <build|test> --select <selector> --project-dir " in text


def test_markdown_has_a_table_row_per_dag_and_a_mermaid_graph(shop_manifest):
    text = run(
        "preview", "--manifest", str(shop_manifest), "--config", CONFIG, "--format", "markdown"
    )
    assert "| `shop_team__finance` | 8 | 3 | assets | Finance Engineering |" in text
    assert "```mermaid\nflowchart LR\n" in text
    assert '  d2 -->|"dim_customers_v1#44; fct_orders"| d0' in text


def _many_dags(n: int) -> pv.Preview:
    task = pv.TaskView(
        "t",
        ("model.p.t",),
        "model",
        "celery",
        "default",
        None,
        "build",
        "t",
        (),
        (),
        ("x-dbt://p/model.p.t",),
    )
    reader = pv.TaskView(
        "r",
        ("model.p.r",),
        "model",
        "celery",
        "default",
        None,
        "build",
        "r",
        (),
        ("x-dbt://p/model.p.t",),
        (),
    )
    dags = [pv.DagView("d000", "d000.py", "g", "o", "@daily", "schedule", 0, (), (), (task,))]
    for i in range(1, n):
        dags.append(
            pv.DagView(
                f"d{i:03}", f"d{i:03}.py", "g", "o", None, "assets", 0, (), ("d000",), (reader,)
            )
        )
    return pv.Preview("p", "team", "pod_operator", ("dbt",), (), tuple(dags))


def test_markdown_for_a_pull_request_is_capped_with_and_n_more():
    text = pv.format_markdown(_many_dags(200))
    assert text.count('["d') == pv.MERMAID_MAX_DAGS
    assert 'more["and 170 DAGs and 170 edges more"]' in text
    assert "| and 150 more |" in text
    assert len(text) < 20_000


HOSTILE_TEXT = "</script><script>alert(1)</script> @everyone | `x` <!--"


def test_user_text_stays_text_in_markdown_and_html():
    dag = pv.DagView("d", "d.py", "g", HOSTILE_TEXT, None, "schedule", 0, (HOSTILE_TEXT,), (), ())
    preview = pv.Preview("p", "t", "pod_operator", ("dbt",), (), (dag,))
    markdown = pv.format_markdown(preview)
    assert "@everyone" not in markdown
    assert not re.search(r"(?<!\\)<(?!/?(details|summary)>)", markdown)  # every < escaped
    assert r"\<script>alert(1)\</script> &#64;everyone \| \`x\` \<\!--" in markdown
    html = pv.render_html(preview)
    assert html.count("</script>") == 2  # the data block's and the page script's own
    assert "<!--" not in html
    data = html.split('<script type="application/json" id="preview-data">')[1].split("</script>")[0]
    assert json.loads(data)["dags"][0]["owner"] == HOSTILE_TEXT


def test_the_hostile_sample_previews_in_every_format(tmp_path):
    manifest = str(HOSTILE / "manifest.json")
    for fmt in ("text", "markdown", "json", "html"):
        assert run("preview", "--manifest", manifest, "--format", fmt)
    run("preview", "--manifest", manifest, "--out", str(tmp_path / "p.html"))
    assert (tmp_path / "p.html").read_text().startswith("<!DOCTYPE html>")


def test_preview_writes_nothing_but_the_page(shop_manifest, tmp_path):
    page = tmp_path / "page" / "preview.html"
    assert run("preview", "--manifest", str(shop_manifest), "--out", str(page)) == (
        f"wrote {page}\n"
    )
    assert [p.name for p in tmp_path.rglob("*")] == ["page", "preview.html"]


def test_the_layout_of_the_dag_of_dags_is_layered_and_deterministic():
    nodes = ["c", "a", "b", "d"]
    edges = [("a", "b"), ("b", "c"), ("a", "c")]
    first = pv.layout(nodes, edges)
    assert first == pv.layout(list(reversed(nodes)), list(reversed(edges)))
    assert first["a"][0] < first["b"][0] < first["c"][0]
    assert first["d"][0] == first["a"][0]


def test_a_summary_reads_back_as_the_same_facts(shop_manifest):
    from dagfactory import generate, load_config

    facts = pv.from_build(generate(shop_manifest, load_config(SHOP / "dagfactory.yml")))
    assert pv.from_sidecar(pv.sidecar_bytes(facts), path="shop.dagfactory.json") == facts


@pytest.mark.parametrize("project", [SHOP, HOSTILE])
def test_the_summary_a_build_writes_holds_the_previews_facts_byte_for_byte(project):
    """The build makes its summary straight from the specs; it must say what the preview says."""
    from dagfactory import generate, load_config

    config = project / "dagfactory.yml"
    result = generate(project / "manifest.json", load_config(config if config.exists() else None))
    written = pv.sidecar_file(result).text.encode()
    assert written == pv.sidecar_bytes(pv.from_build(result))
