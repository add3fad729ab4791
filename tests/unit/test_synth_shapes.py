"""synth_project.py's two shapes: the same project, laid out shallow or deep.

dbt's default test-edge algorithm costs more the deeper the graph, so the per-task dbt
benchmark measures both; these tests pin what "deep" means.
"""

from __future__ import annotations

from functools import cache

from helpers import load_synth_project

sp = load_synth_project()


def _depth(project) -> int:
    parents = {m.name: m.parents for m in project.models}

    @cache
    def depth(name: str) -> int:
        return 1 + max((depth(p) for p in parents.get(name, ())), default=0)

    order = [m.name for m in project.models]  # parents come first: no deep recursion
    return max(depth(name) for name in order)


def test_deep_shape_chains_each_areas_steps() -> None:
    layered, deep = sp.plan(600), sp.plan(600, shape="deep")
    assert _depth(layered) <= 15
    assert _depth(deep) >= 3 * _depth(layered)


def test_deep_shape_keeps_the_models_and_layers() -> None:
    layered, deep = sp.plan(600), sp.plan(600, shape="deep")
    assert [(m.name, m.layer, m.ephemeral) for m in deep.models] == [
        (m.name, m.layer, m.ephemeral) for m in layered.models
    ]


def test_layered_stays_the_default_shape() -> None:
    assert sp.plan(300) == sp.plan(300, shape="layered")
