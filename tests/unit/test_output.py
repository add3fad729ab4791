"""The output folder is swapped in whole; nothing is left half written."""

from __future__ import annotations

import orjson
import pytest

from dagfactory import OutputError, RenderError, build, load_config
from dagfactory.buildfolder import BUILD_MARKER, replace_folder


def _config():
    return load_config(None, {"team": "shop_team", "routing.force": "celery"})


def test_a_build_replaces_the_previous_one_whole(shop_manifest, edited_manifest, tmp_path):
    out = tmp_path / "dags"
    build(shop_manifest, out, _config())
    older = {p.name: p.read_bytes() for p in out.glob("*.py")}
    older["shop_team__gone.py"] = b"# a DAG only an older build had\n"
    replace_folder(out, older, team="shop_team", project="shop")
    build(shop_manifest, out, _config())
    assert not (out / "shop_team__gone.py").exists()
    marker = orjson.loads((out / BUILD_MARKER).read_bytes())
    assert marker["team"] == "shop_team" and marker["project"] == "shop"
    listed = sorted(p.name for p in out.iterdir() if p.name != BUILD_MARKER)
    assert sorted(marker["files"]) == listed  # the DAG files and the build summary
    assert [p.name for p in tmp_path.iterdir()] == ["dags"]  # no temp folders left behind


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{ no_such_variable }}", "template failed"),
        # a user template is compiled: one that lays out something not Python stops the build
        ("with DAG(dag_id={{ dag_kwargs[0][1] }}\n", "the template made invalid Python"),
    ],
    ids=["template-error", "invalid-python"],
)
def test_a_failed_build_leaves_the_previous_output_untouched(
    shop_manifest, tmp_path, template, error
):
    out = tmp_path / "dags"
    build(shop_manifest, out, _config())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "dag.py.j2").write_text(template)
    with pytest.raises(RenderError, match=error):
        build(shop_manifest, out, _config(), template_dir=str(broken))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dags", "templates"]


def test_a_folder_dagfactory_did_not_write_is_never_replaced(shop_manifest, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="refusing to replace a non-empty folder"):
        build(shop_manifest, out, _config())
    assert (out / "notes.txt").read_text() == "mine"


def test_user_templates_override_the_builtin_ones(shop_manifest, tmp_path):
    custom = tmp_path / "templates"
    custom.mkdir()
    (custom / "dag.py.j2").write_text("# custom layout for {{ dag_id_comment }}\n")
    result = build(shop_manifest, tmp_path / "dags", _config(), template_dir=str(custom))
    assert result.files[0].text.startswith("# custom layout for shop_team__")
