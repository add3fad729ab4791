"""dbt slices: one small manifest per task, and run.py's checks before it uses one.

What dbt does with a slice is tested with real dbt in tests/integration/dbt/test_dbt_slices.py
and end to end in tests/e2e; here: what goes into a slice, and when a task must not use it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests_paths import SHOP

from dagfactory import dbt_slice_runner as runner
from dagfactory.dbt_slices import write_dbt_slices
from dagfactory.errors import OutputError
from dagfactory.graph import build_graph
from dagfactory.manifest import load_manifest


def _project(tmp_path: Path, edit=None) -> Path:
    """A copy of the shop sample project with its manifest in target/ (optionally edited)."""
    project = tmp_path / "shop"
    shutil.copytree(SHOP, project, ignore=shutil.ignore_patterns("target", "*.duckdb"))
    raw = json.loads((SHOP / "manifest.json").read_text())
    if edit:
        edit(raw)
    (project / "target").mkdir()
    (project / "target" / "manifest.json").write_text(json.dumps(raw))
    return project


def _write(project: Path, **options: Any):
    out = project / "target" / "dagfactory_slices"
    report = write_dbt_slices(project / "target" / "manifest.json", out, **options)
    return out, report


def _slice(out: Path, selector: str) -> dict[str, Any]:
    return json.loads((out / runner.slice_name(selector)).read_text())


def _selectors(project: Path) -> dict[str, str]:
    graph = build_graph(load_manifest(project / "target" / "manifest.json"))
    return {uid: unit.selector for uid, unit in graph.units.items()}


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[Path, Path, Any]:
    project = _project(tmp_path_factory.mktemp("slices"))
    out, report = _write(project)
    return project, out, report


def test_every_task_gets_a_slice_named_after_its_selector(shop):
    project, out, report = shop
    selectors = _selectors(project)
    assert report.refused is None and report.plain_dbt == {}
    assert report.slices == len(selectors)
    for selector in selectors.values():
        assert _slice(out, selector)["selector"] == selector


def test_a_slice_holds_the_task_nodes_and_the_nodes_they_read_through_ephemerals(shop):
    project, out, _ = shop
    piece = _slice(out, _selectors(project)["model.shop.fct_orders"])
    # fct_orders reads ephemeral B, which reads ephemeral A, which reads two staging models:
    # dbt inlines the ephemerals, so their own refs must resolve too.
    assert {
        "model.shop.fct_orders",
        "model.shop.int_order_amounts",
        "model.shop.int_orders_enriched",
        "model.shop.stg_orders",
        "model.shop.stg_customers",
        "test.shop.unique_fct_orders_order_id.523ddb6ce5",
    } <= set(piece["nodes"])
    assert "model.shop.fct_revenue" not in piece["nodes"]  # a child: not read, not run
    # A context node keeps only the parents that are in the slice (dbt links them all).
    assert piece["nodes"]["model.shop.stg_orders"]["depends_on"]["nodes"] == []


def test_a_test_of_two_models_gets_both_parents(shop):
    project, out, _ = shop
    uid = "test.shop.relationships_fct_revenue_order_id__order_id__ref_fct_orders_.1a56c77a77"
    piece = _slice(out, _selectors(project)[uid])
    assert {uid, "model.shop.fct_orders", "model.shop.fct_revenue"} <= set(piece["nodes"])


def test_a_model_with_a_unit_test_carries_it(shop):
    project, out, _ = shop
    piece = _slice(out, _selectors(project)["model.shop.mkt_channel_spend"])
    assert list(piece["unit_tests"]) == [
        "unit_test.shop.mkt_channel_spend.test_mkt_channel_spend_sums_per_day"
    ]
    assert "source.shop.web.ad_spend" not in piece["sources"]  # read by stg_ad_spend only


def test_sources_read_by_the_task_come_with_their_yaml_and_parse_time_env_vars(shop):
    project, out, _ = shop
    piece = _slice(out, _selectors(project)["model.shop.stg_ad_spend"])
    assert list(piece["sources"]) == ["source.shop.web.ad_spend"]
    # _sources.yml renders env_var('SHOP_DATA_DIR', ...) at parse time.
    assert "models/staging/_sources.yml" in piece["files"]
    assert piece["env"] == {"SHOP_DATA_DIR": None}


def test_dbt_json_keeps_dbt_order_so_a_contract_keeps_its_column_order(shop):
    # dbt creates a contracted table with its columns in the order of `columns`: sorted
    # keys would build customer_id after country_code.
    project, out, _ = shop
    uid = "model.shop.dim_customers.v1"
    piece = _slice(out, _selectors(project)[uid])
    raw = json.loads((project / "target" / "manifest.json").read_text())
    assert list(piece["nodes"][uid]["columns"]) == list(raw["nodes"][uid]["columns"])
    assert list(piece["nodes"][uid]["columns"])[:2] == ["customer_id", "full_name"]


def test_a_manifest_written_by_dbt_run_gives_the_same_slices_as_dbt_parse(tmp_path):
    # `dbt run` writes nodes marked compiled, with their old SQL: dbt would not give such a
    # node its ephemeral parents' CTEs again. A slice holds nodes as `dbt parse` writes them.
    def compiled(raw: dict[str, Any]) -> None:
        for node in raw["nodes"].values():
            node.update(compiled=True, compiled_code="select 1", extra_ctes_injected=True)
            node.update(extra_ctes=[{"id": "model.shop.x", "sql": "x"}])
            if "compiled_path" in node:  # seeds have none
                node["compiled_path"] = "target/compiled/x.sql"

    parsed, _ = _write(_project(tmp_path / "parsed"))
    run, _ = _write(_project(tmp_path / "run", compiled))
    for name in sorted(p.name for p in parsed.iterdir()):
        assert (run / name).read_bytes() == (parsed / name).read_bytes(), name


def test_base_holds_every_macro_and_no_volatile_metadata(shop):
    project, out, _ = shop
    base = json.loads((out / "base.json").read_text())
    raw = json.loads((project / "target" / "manifest.json").read_text())
    assert set(base["macros"]) == set(raw["macros"])
    assert not {"generated_at", "invocation_id"} & set(base["metadata"])
    assert base["dbt_version"] == raw["metadata"]["dbt_version"]


def test_run_py_is_executable_and_its_interpreter_is_named(shop, tmp_path):
    _, out, _ = shop
    first = (out / "run.py").read_text().splitlines()[0]
    assert first.startswith("#!") and "python" in first
    assert (out / "run.py").stat().st_mode & 0o111
    other, _ = _write(_project(tmp_path), python="/opt/dbt/bin/python")
    assert (other / "run.py").read_text().startswith("#!/opt/dbt/bin/python\n")


def test_same_manifest_gives_byte_identical_slices_whatever_the_parse_run(tmp_path):
    def reparsed(raw: dict[str, Any]) -> None:
        raw["metadata"]["generated_at"] = "2030-01-01T00:00:00Z"
        raw["metadata"]["invocation_id"] = "another-run"

    first, _ = _write(_project(tmp_path / "a"))
    second, _ = _write(_project(tmp_path / "b", reparsed))
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_a_previous_slices_folder_is_replaced_whole(tmp_path):
    project = _project(tmp_path)
    out, _ = _write(project)
    (out / "stale.json").write_text("{}")
    _write(project)
    assert not (out / "stale.json").exists()
    assert (out / "base.json").is_file()


def test_a_folder_that_holds_no_slices_is_refused_and_left_alone(tmp_path):
    project = _project(tmp_path)
    out = project / "target" / "dagfactory_slices"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(OutputError, match="holds no dagfactory slices"):
        _write(project)
    assert (out / "precious.txt").read_text() == "keep me"


def test_a_model_that_reads_graph_runs_plain_dbt(tmp_path):
    def reads_graph(raw: dict[str, Any]) -> None:
        node = raw["nodes"]["model.shop.fct_revenue"]
        node["raw_code"] += "\n{% for n in graph.nodes.values() %}{% endfor %}"

    _, report = _write(_project(tmp_path, reads_graph))
    assert report.plain_dbt == {
        "model.shop.fct_revenue": "its SQL reads `graph`, the whole project"
    }


def test_a_project_macro_that_reads_graph_refuses_every_slice(tmp_path):
    def macro_reads_graph(raw: dict[str, Any]) -> None:
        macro = raw["macros"]["macro.shop.cents_to_dollars"]
        macro["macro_sql"] += "{{ graph['nodes'] }}"

    out, report = _write(_project(tmp_path, macro_reads_graph))
    assert report.refused and "macro.shop.cents_to_dollars" in report.refused
    assert sorted(p.name for p in out.iterdir()) == ["base.json", "run.py"]


def _package_macro_reading_graph(raw: dict[str, Any]) -> None:
    macro = dict(raw["macros"]["macro.shop.cents_to_dollars"])
    macro.update(
        unique_id="macro.codegen.list_models",
        name="list_models",
        package_name="codegen",
        macro_sql="{% macro list_models() %}{{ graph.nodes | list }}{% endmacro %}",
    )
    raw["macros"][macro["unique_id"]] = macro


def test_a_package_macro_that_reads_graph_but_no_task_calls_changes_nothing(tmp_path):
    _, report = _write(_project(tmp_path, _package_macro_reading_graph))
    assert report.refused is None and report.plain_dbt == {}


def test_a_task_that_calls_a_package_macro_reading_graph_runs_plain_dbt(tmp_path):
    def called(raw: dict[str, Any]) -> None:
        _package_macro_reading_graph(raw)
        depends = raw["nodes"]["model.shop.fct_revenue"]["depends_on"]
        depends["macros"] = [*depends["macros"], "macro.codegen.list_models"]

    _, report = _write(_project(tmp_path, called))
    assert report.plain_dbt == {
        "model.shop.fct_revenue": (
            "it calls macro macro.codegen.list_models, which reads `graph`, the whole project"
        )
    }


def test_with_a_dispatch_config_any_package_macro_reading_graph_refuses_every_slice(tmp_path):
    project = _project(tmp_path, _package_macro_reading_graph)
    yml = project / "dbt_project.yml"
    yml.write_text(yml.read_text() + "\ndispatch:\n  - macro_namespace: dbt\n")
    _, report = _write(project)
    assert report.refused and "macro.codegen.list_models" in report.refused


def test_a_manifest_older_than_dbt_1_8_gets_no_slices(tmp_path):
    def old(raw: dict[str, Any]) -> None:
        raw["metadata"]["dbt_version"] = "1.7.4"

    out, report = _write(_project(tmp_path, old))
    assert report.refused == "slices need a manifest of dbt 1.8 or later"
    base = json.loads((out / "base.json").read_text())
    args = ["build", "--select", "fqn:shop.x"]
    assert runner.why_not(base, None, args) == f"no slices for this project: {report.refused}"


def test_an_env_var_with_a_computed_name_leaves_the_task_to_plain_dbt(tmp_path):
    project = _project(tmp_path)
    sql = project / "models" / "marts" / "finance" / "fct_revenue.sql"
    sql.write_text(sql.read_text() + "\n-- {{ env_var('REGION_' ~ var('r', 'eu'), '') }}\n")
    _, report = _write(project)
    # Its own task and every task that reads it (its config decides the relation they read).
    assert "model.shop.fct_revenue" in report.plain_dbt
    assert "model.shop.finance_customer_ltv" in report.plain_dbt
    assert "model.shop.stg_orders" not in report.plain_dbt
    assert {why for why in report.plain_dbt.values()} == {
        "models/marts/finance/fct_revenue.sql calls env_var with a computed name"
    }


# --- run.py: when a task must not use its slice -------------------------------------------


def _args(selector: str, project: Path) -> list[str]:
    """A generated task's dbt arguments (the folders are always given)."""
    folders = ["--project-dir", str(project), "--profiles-dir", str(project)]
    return ["build", "--select", selector, *folders]


@pytest.fixture
def checked(shop):
    project, out, _ = shop
    base = orjson.loads((out / "base.json").read_bytes())
    selector = _selectors(project)["model.shop.fct_orders"]
    piece = _slice(out, selector)
    return project, base, piece, _args(selector, project)


def test_an_unchanged_project_uses_its_slice(checked, monkeypatch):
    _, base, piece, args = checked
    monkeypatch.delenv("SHOP_DATA_DIR", raising=False)
    assert runner.why_not(base, piece, args) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda p, a: a.extend(["--vars", '{"run_date": "2024-01-02"}']), "--vars differ"),
        (lambda p, a: a.extend(["--vars", "run_date: 2024-01-02"]), "--vars differ"),
        (lambda p, a: (p / "dbt_project.yml").write_text("name: shop\n"), "dbt_project.yml"),
        (
            lambda p, a: (p / "models/marts/sales/fct_orders.sql").write_text("select 1"),
            "models/marts/sales/fct_orders.sql changed",
        ),
        (
            lambda p, a: (p / "models/intermediate/int_orders_enriched.sql").unlink(),
            "models/intermediate/int_orders_enriched.sql changed",
        ),
        (lambda p, a: (p / "macros/cents_to_dollars.sql").write_text(""), "macros/"),
        (lambda p, a: a.extend(["--target", "prod"]), "target prod is not the one"),
        (lambda p, a: (p / "profiles.yml").write_text("shop: {}\n"), "profiles.yml differs"),
    ],
    ids=[
        "vars",
        "yaml-vars",
        "dbt_project",
        "own-sql",
        "ephemeral-parent",
        "macro",
        "target",
        "profiles",
    ],
)
def test_a_change_since_the_slices_were_made_means_plain_dbt(checked, tmp_path, change, reason):
    project, base, piece, args = checked
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    args = _args(args[2], copy)
    change(copy, args)
    assert reason in (runner.why_not(base, piece, args) or "")


def test_an_env_var_read_at_parse_time_with_another_value_means_plain_dbt(shop, monkeypatch):
    project, out, _ = shop
    selector = _selectors(project)["model.shop.stg_ad_spend"]
    base = orjson.loads((out / "base.json").read_bytes())
    args = _args(selector, project)
    monkeypatch.setenv("SHOP_DATA_DIR", "/elsewhere")
    assert "SHOP_DATA_DIR" in runner.why_not(base, _slice(out, selector), args)


def test_the_vars_the_parse_ran_with_are_accepted(tmp_path, monkeypatch):
    monkeypatch.delenv("SHOP_DATA_DIR", raising=False)
    project = _project(tmp_path)
    out, _ = _write(project, vars={"run_date": "2024-01-01"})
    selector = _selectors(project)["model.shop.fct_orders"]
    base = orjson.loads((out / "base.json").read_bytes())
    args = _args(selector, project)
    without = runner.why_not(base, _slice(out, selector), args)
    assert without == "--vars differ from the ones the slices were parsed with"
    args += ["--vars", '{"run_date": "2024-01-01"}']
    assert runner.why_not(base, _slice(out, selector), args) is None


def test_a_slice_for_another_selector_is_not_used(checked):
    _, base, piece, args = checked
    args = ["build", "--select", "fqn:shop.marts.sales.other", *args[3:]]  # same folders
    assert runner.why_not(base, piece, args) == "the slice is for another selector"


# --- the generated command ----------------------------------------------------------------


def test_no_slices_for_a_manifest_older_than_dbt_1_8():
    from dagfactory import load_config
    from dagfactory.specs import dbt_run

    manifest = load_manifest(SHOP / "manifest.json")
    config = load_config(None, {})
    assert dbt_run(manifest, config).slices == "/opt/airflow/dbt/shop/target/dagfactory_slices"
    old = dataclasses.replace(manifest, dbt_version="1.7.4")
    assert dbt_run(old, config).slices is None
    assert dbt_run(manifest, load_config(None, {"dbt.slices": ""})).slices is None


# --- the command line ---------------------------------------------------------------------


def test_the_cli_writes_the_slices_beside_the_manifest(tmp_path, capsys):
    from helpers import run_cli

    project = _project(tmp_path)
    code, _ = run_cli(["dbt-slices", str(project / "target" / "manifest.json")], capsys)
    assert code == 0
    out = project / "target" / "dagfactory_slices"
    assert len(list(out.glob("*.json"))) == 25  # 24 tasks and base.json
    assert (out / "run.py").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vars", "{not json"], "--vars"),
        (["--vars", "[1, 2]"], "must be a JSON object"),
    ],
)
def test_the_cli_refuses_bad_vars_naming_the_option(tmp_path, capsys, args, message):
    from helpers import run_cli

    project = _project(tmp_path)
    code, err = run_cli(["dbt-slices", str(project / "target" / "manifest.json"), *args], capsys)
    assert code == 2 and message in err


def test_the_cli_names_the_folder_it_will_not_replace(tmp_path, capsys):
    from helpers import run_cli

    project = _project(tmp_path)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    argv = ["dbt-slices", str(project / "target" / "manifest.json"), "--out", str(foreign)]
    code, err = run_cli(argv, capsys)
    assert code != 0 and "holds no dagfactory slices" in err and str(foreign) in err
    assert (foreign / "todo.txt").read_text() == "mine"


def test_the_build_summary_says_where_tasks_look_for_slices(tmp_path):
    from click.testing import CliRunner

    from dagfactory.cli import cli

    argv = ["build", "--manifest", str(SHOP / "manifest.json"), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    folder = SHOP.resolve() / "target" / "dagfactory_slices"  # the sample's project_dir: "."
    assert f"dbt slices: tasks start {folder}/run.py when it exists" in result.output


def test_the_project_is_found_beside_the_manifest_or_above_it(tmp_path):
    project = _project(tmp_path)
    beside = project / "manifest.json"
    shutil.copyfile(project / "target" / "manifest.json", beside)
    report = write_dbt_slices(beside, tmp_path / "beside")
    above = write_dbt_slices(project / "target" / "manifest.json", tmp_path / "above")
    assert report.slices == above.slices == 24


def test_without_a_dbt_project_the_error_says_to_pass_the_project_dir(tmp_path):
    lone = tmp_path / "a" / "b" / "manifest.json"
    lone.parent.mkdir(parents=True)
    shutil.copyfile(SHOP / "manifest.json", lone)
    with pytest.raises(OutputError, match="pass --project-dir"):
        write_dbt_slices(lone, tmp_path / "out")


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd"])
def test_a_node_file_outside_the_project_leaves_its_task_to_plain_dbt(tmp_path, path):
    def hostile(raw: dict[str, Any]) -> None:
        raw["nodes"]["model.shop.stg_orders"]["original_file_path"] = path

    _, report = _write(_project(tmp_path, hostile))
    assert report.plain_dbt["model.shop.stg_orders"] == (
        "a node's file path leaves the project folder"
    )


def test_an_ephemeral_parent_that_reads_graph_leaves_its_readers_to_plain_dbt(tmp_path):
    def reads_graph(raw: dict[str, Any]) -> None:
        raw["nodes"]["model.shop.int_orders_enriched"]["raw_code"] += "{{ graph.nodes }}"

    _, report = _write(_project(tmp_path, reads_graph))
    assert "model.shop.fct_orders" in report.plain_dbt  # int_orders_enriched is inlined there


def test_a_folder_without_base_json_says_so():
    assert runner.why_not({}, None, ["build"]) == "no readable base.json in the slices folder"


def _corpus_manifests() -> list:
    from tests_paths import CORPUS

    found = sorted(CORPUS.glob("*/manifest.json")) if CORPUS.is_dir() else []
    return [pytest.param(path, id=path.parent.name) for path in found] or [
        pytest.param(None, id="no-corpus", marks=pytest.mark.skip(reason="no ../shared/corpus"))
    ]


@pytest.mark.parametrize("manifest", _corpus_manifests())
def test_every_corpus_manifest_gets_a_slice_per_task_or_a_reason(manifest, tmp_path):
    from dagfactory.errors import GraphError, ManifestError
    from dagfactory.specs import dbt_version_tuple

    project = tmp_path / "project"  # the corpus holds manifests, not projects
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: corpus\n")
    try:
        graph = build_graph(load_manifest(manifest))
    except (ManifestError, GraphError):
        pytest.skip("dagfactory itself refuses this manifest (test_conformance.py)")
    report = write_dbt_slices(manifest, tmp_path / "slices", project_dir=project)
    version = dbt_version_tuple(load_manifest(manifest).dbt_version)
    if version is None or version < (1, 8):
        assert report.refused == "slices need a manifest of dbt 1.8 or later"
    else:
        assert report.refused is None
        assert report.slices + len(report.plain_dbt) == len(graph.units)


def test_an_env_var_the_profile_reads_with_another_value_means_plain_dbt(checked, monkeypatch):
    # The shop profile reads DBT_DUCKDB_PATH; dbt-duckdb names the database after the file.
    _, base, piece, args = checked
    monkeypatch.delenv("SHOP_DATA_DIR", raising=False)
    assert "DBT_DUCKDB_PATH" in base["env"]  # with its value when the slices were written
    monkeypatch.setenv("DBT_DUCKDB_PATH", f"{base['env']['DBT_DUCKDB_PATH']}/other.duckdb")
    assert "DBT_DUCKDB_PATH" in runner.why_not(base, piece, args)


def test_the_target_can_come_from_dbt_target_like_dbt_reads_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SHOP_DATA_DIR", raising=False)
    project = _project(tmp_path)
    out, _ = _write(project, target="prod")
    selector = _selectors(project)["model.shop.fct_orders"]
    base = orjson.loads((out / "base.json").read_bytes())
    args = _args(selector, project)
    assert "target (default) is not" in runner.why_not(base, _slice(out, selector), args)
    monkeypatch.setenv("DBT_TARGET", "prod")
    assert runner.why_not(base, _slice(out, selector), args) is None
