"""The facade: run the stages in order.

    load manifest -> graph -> group -> route -> assemble specs -> plan -> render -> write

``generate`` does everything but writing (for previews and tests); ``build`` also swaps the
files into the output folder. The CLI calls these and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagfactory import airflow_rules
from dagfactory.buildfolder import replace_folder
from dagfactory.config import Config
from dagfactory.costs import BuildWarning, build_warnings, estimate_parse_seconds
from dagfactory.graph import build_graph
from dagfactory.grouping import group_units
from dagfactory.manifest import Manifest, load_manifest, load_run_results
from dagfactory.plan import plan_dags
from dagfactory.render import RenderedFile, render_dags
from dagfactory.routing import route_units
from dagfactory.specs import DagSpec, assemble

__all__ = ["BuildResult", "build", "generate", "write"]


@dataclass(frozen=True)
class BuildResult:
    manifest: Manifest
    config: Config
    dags: tuple[DagSpec, ...]
    files: tuple[RenderedFile, ...]
    group_by: str
    out_dir: Path | None = None
    warnings: tuple[BuildWarning, ...] = ()

    @property
    def team(self) -> str:
        return self.dags[0].team if self.dags else (self.config.team or self.project)

    @property
    def project(self) -> str:
        return self.config.project or self.manifest.project_name

    @property
    def task_count(self) -> int:
        return sum(len(dag.tasks) for dag in self.dags)

    @property
    def cross_dag_edges(self) -> int:
        return sum(len(task.inlets) for dag in self.dags for task in dag.tasks)

    @property
    def estimated_parse_loop_seconds(self) -> float:
        """What the DAG processor pays per loop for these files (rough, from benchmarks)."""
        version = self.config.airflow_version
        return round(sum(estimate_parse_seconds(dag, version) for dag in self.dags), 3)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "team": self.team,
            "manifest": str(self.manifest.path),
            "dbt_version": self.manifest.dbt_version,
            "schema_version": self.manifest.schema_version,
            "group_by": self.group_by,
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "dag_count": len(self.dags),
            "task_count": self.task_count,
            "cross_dag_edges": self.cross_dag_edges,
            "forced_runner": self.config.routing.force,
            "estimated_parse_loop_seconds": self.estimated_parse_loop_seconds,
            "merged_groups": {
                d.dag_id: list(d.merged_groups) for d in self.dags if d.merged_groups
            },
            "warnings": [
                {"message": w.message, "dag_id": w.dag_id, "key": w.key} for w in self.warnings
            ],
            "dags": [dag.to_dict() for dag in self.dags],
        }


def generate(
    manifest_path: str | Path,
    config: Config | None = None,
    *,
    run_results: Sequence[str | Path] = (),
    template_dir: str | None = None,
) -> BuildResult:
    """Everything ``dagfactory build`` does except writing files."""
    config = config or Config()
    manifest = load_manifest(manifest_path)
    run_times = load_run_results(run_results) if run_results else None
    graph = build_graph(manifest)
    grouping = group_units(graph, manifest, config)
    routes = route_units(graph, manifest, config, run_times)
    dags = assemble(graph, grouping, routes, manifest, config)
    airflow_rules.check_dags(dags, config)  # ids, asset URIs: what Airflow would reject
    plans = plan_dags(dags, config)  # every operator keyword decided here
    files = render_dags(plans, config.airflow_version, template_dir)  # laid out, no Config
    warnings = build_warnings(dags, config, grouping.strategy)
    return BuildResult(manifest, config, dags, tuple(files), grouping.strategy, warnings=warnings)


def build(
    manifest_path: str | Path,
    out_dir: str | Path,
    config: Config | None = None,
    *,
    run_results: Sequence[str | Path] = (),
    template_dir: str | None = None,
) -> BuildResult:
    """Generate the DAG files and swap them into ``out_dir`` as a whole."""
    result = generate(manifest_path, config, run_results=run_results, template_dir=template_dir)
    return write(result, out_dir)


def write(result: BuildResult, out_dir: str | Path) -> BuildResult:
    """Swap a generated build into ``out_dir`` as a whole: its DAG files and its summary."""
    files = {file.name: file.text.encode("utf-8") for file in result.files}
    from dagfactory.preview import sidecar_file  # the build's summary, for preview --against

    summary = sidecar_file(result)
    files[summary.name] = summary.text.encode("utf-8")
    out = replace_folder(out_dir, files, team=result.team, project=result.project)
    return dataclasses.replace(result, out_dir=out)
