"""Big builds render their files in forked processes; the files do not depend on it."""

from __future__ import annotations

import os

import pytest

from dagfactory import ConfigError, RenderError, load_config
from dagfactory.graph import build_graph
from dagfactory.grouping import group_units
from dagfactory.manifest import load_manifest
from dagfactory.plan import plan_dags
from dagfactory.render import render_dags, render_jobs
from dagfactory.routing import route_units
from dagfactory.specs import assemble

VERSION = load_config(None, {}).airflow_version
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="forks only where it can")


@pytest.fixture(scope="module")
def plans(shop_manifest):
    config = load_config(None, {"team": "shop_team", "routing.force": "celery"})
    manifest = load_manifest(shop_manifest)
    graph = build_graph(manifest)
    grouping = group_units(graph, manifest, config)
    dags = assemble(graph, grouping, route_units(graph, manifest, config, None), manifest, config)
    return plan_dags(dags, config)


def _no_child_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_forked_rendering_writes_the_same_files_in_the_same_order(plans):
    alone = render_dags(plans, VERSION)
    assert len(plans) >= 3
    assert render_dags(plans, VERSION, jobs=3) == alone
    assert _no_child_left()


def test_a_template_error_in_a_forked_share_is_the_same_render_error(plans, tmp_path):
    last = plans[-1].dag_id  # never in the first share, which the calling process renders
    (tmp_path / "dag.py.j2").write_text(
        "{% if dag_id_comment == '" + last + "' %}{{ no_such_value }}{% endif %}pass\n"
    )
    for jobs in (1, 3):
        with pytest.raises(RenderError, match="template failed") as failed:
            render_dags(plans, VERSION, str(tmp_path), jobs=jobs)
        assert failed.value.group == plans[-1].group
    assert _no_child_left()


def test_small_builds_render_in_one_process(plans, monkeypatch):
    monkeypatch.delenv("DAGFACTORY_JOBS", raising=False)
    assert render_jobs(plans) == 1  # a fork costs more than a few hundred tasks


def test_dagfactory_jobs_sets_the_process_count(plans, monkeypatch):
    monkeypatch.setenv("DAGFACTORY_JOBS", "3")
    assert render_jobs(plans) == 3
    monkeypatch.setenv("DAGFACTORY_JOBS", "0")
    with pytest.raises(ConfigError, match="DAGFACTORY_JOBS must be a whole number >= 1"):
        render_jobs(plans)
