#!/usr/bin/env python3
"""Write a runnable dbt-duckdb project of N models (dbt project files, not a manifest).

Why: every task dagfactory generates runs ``dbt build --select <one node>``, and what
that costs (CPU, memory, parse time) grows with the size of the whole project, not of
the node. ``synth.py`` makes large *manifests*, which is enough for dagfactory itself
but cannot be run by dbt. This script makes a large *project* that real dbt-core parses
and builds, so the per-task dbt cost can be measured (``bench/dbt_task.py``) and the
generated commands exercised against real dbt (``tests/integration/dbt/test_dbt_concurrency.py``).

Usage::

    python sample_manifests/synth_project.py --models 2000 --out /tmp/synth2k \\
        [--seed 0] [--project synth] [--force]
    cd /tmp/synth2k && dbt build --profiles-dir .      # or set DBT_DUCKDB_PATH

What is in it (all chosen by ``random.Random(seed)``; same arguments give byte-identical
files, written in sorted order):

* ``dbt_project.yml`` and ``profiles.yml`` (dbt-duckdb, 1 thread, database file
  ``{{ env_var('DBT_DUCKDB_PATH', '<project>.duckdb') }}``: a relative path is relative
  to dbt's working directory, so set ``DBT_DUCKDB_PATH`` to an absolute path when
  running from elsewhere). Anonymous usage stats are off (no network here).
* Eight seeds ``seeds/raw_<source>_<table>.csv`` of five rows each.
* Models laid out as dbt's style guide recommends: ~15% ``models/staging/<source>/
  stg_<source>__*.sql`` (views, each refs one seed), ~45% ``models/intermediate/<area>/
  int_<area>__*.sql`` (views, ~3% of all models ephemeral) and ~40% ``models/marts/
  <area>/{fct,dim}_<area>__*.sql`` (tables). Each non-staging model refs 1-4 models
  of earlier layers or earlier in its own layer, mostly of its own area, sometimes of
  another area's group. Every model outputs the same columns (``id`` unique and not
  null, ``amount``, ``label``, ``created_at``), joined on ``id``, so each query is a
  cheap view or table over a few rows.
* ``models/_groups.yml``: one dbt group per area (owner name + email) and ``platform``
  for staging; folders are assigned to groups in ``dbt_project.yml``. Access stays
  the default (protected), so refs across groups are allowed.
* Tests in one ``_<layer>_<folder>__models.yml`` per folder: ``unique`` and
  ``not_null`` on ``id`` for ~90% of non-ephemeral models (one parent each), and a
  ``relationships`` test to the model's first parent (two parents) on ~5% of models.
* Exactly one model reads ``{{ env_var('DAGFACTORY_RUN_DATE', '2024-01-01') }}``, so
  a changed run date makes dbt re-parse that one file, not the whole project.
* ``--shape deep``: the same project, but each intermediate model's first parent is the
  previous intermediate model of its area, so every area is a chain of steps and the
  graph is ~120 models deep at 2,000 models instead of ~20; intermediate models are
  tables there (DuckDB would re-bind a 100-deep chain of views for every model).
  dbt's default test-edge algorithm walks each test's ancestors, so its cost grows with
  depth; this shape shows that cost (``bench/dbt_task.py --shape deep``).

``plan()`` returns the project as data (with ``counts()``) without writing anything;
tests use it to know how many models, tests and ephemerals dbt should report.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from random import Random

SOURCES: dict[str, tuple[str, str]] = {
    "billing": ("invoices", "payments"),
    "crm": ("accounts", "contacts"),
    "erp": ("orders", "products"),
    "web": ("events", "sessions"),
}
AREAS = (
    "finance",
    "growth",
    "marketing",
    "operations",
    "product",
    "risk",
    "sales",
    "support",
)
STAGING_GROUP = "platform"
RUN_DATE_ENV = "DAGFACTORY_RUN_DATE"
SEED_ROWS = 5
STAGING_SHARE = 0.15
INTERMEDIATE_SHARE = 0.45
EPHEMERAL_SHARE = 0.03
TESTED_SHARE = 0.9
RELATIONSHIPS_SHARE = 0.05
PARENT_COUNTS = (1, 2, 3, 4)
PARENT_WEIGHTS = (35, 35, 20, 10)


@dataclass(frozen=True)
class Model:
    """One model: where it lives, what it refs and which tests it carries."""

    name: str
    layer: str  # staging | intermediate | marts
    folder: str  # source (staging) or area
    parents: tuple[str, ...]  # ref() targets, first one gives the ids
    ephemeral: bool = False
    tested: bool = False  # unique + not_null on id
    relationship_to: str | None = None  # relationships test: id -> ref(this).id
    reads_run_date: bool = False

    @property
    def group(self) -> str:
        return STAGING_GROUP if self.layer == "staging" else self.folder


@dataclass(frozen=True)
class Project:
    """A whole synthetic project as data; ``render`` turns it into files."""

    name: str
    seeds: tuple[str, ...]
    models: tuple[Model, ...]
    shape: str = "layered"

    def counts(self) -> dict[str, int]:
        """What dbt should report after parsing the project."""
        tested = sum(m.tested for m in self.models)
        relationships = sum(m.relationship_to is not None for m in self.models)
        return {
            "models": len(self.models),
            "ephemeral": sum(m.ephemeral for m in self.models),
            "seeds": len(self.seeds),
            "tests": 2 * tested + relationships,
            "relationships_tests": relationships,
            "groups": len(AREAS) + 1,
        }


SHAPES = ("layered", "deep")


def plan(models: int, seed: int = 0, project: str = "synth", shape: str = "layered") -> Project:
    """Choose every model, edge and test of an N-model project (deterministic per seed)."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, not {shape!r}")
    if models < len(SOURCES) + 2 * len(AREAS):
        raise ValueError(f"need at least {len(SOURCES) + 2 * len(AREAS)} models")
    rng = Random(seed)
    seeds = tuple(f"raw_{src}_{table}" for src in sorted(SOURCES) for table in SOURCES[src])
    n_staging = max(len(SOURCES), round(models * STAGING_SHARE))
    n_inter = max(len(AREAS), round(models * INTERMEDIATE_SHARE))
    n_marts = models - n_staging - n_inter

    staging: list[str] = []
    out: list[Model] = []
    sources = sorted(SOURCES)
    for i in range(n_staging):
        src = sources[i % len(sources)]
        table = SOURCES[src][(i // len(sources)) % 2]
        name = f"stg_{src}__{table}_{i:05d}"
        staging.append(name)
        out.append(Model(name, "staging", src, (f"raw_{src}_{table}",)))

    # Ephemerals are intermediate models (never the first of an area or the env-var one).
    n_ephemeral = round(models * EPHEMERAL_SHARE)
    eligible = range(len(AREAS) + 1, n_inter)
    ephemeral_at = set(rng.sample(eligible, min(n_ephemeral, len(eligible))))
    inter_by_area: dict[str, list[str]] = {a: [] for a in AREAS}
    marts_by_area: dict[str, list[str]] = {a: [] for a in AREAS}
    for j in range(n_inter):
        area = AREAS[j % len(AREAS)]
        i = n_staging + j
        name = f"int_{area}__step_{i:05d}"
        pools = [(inter_by_area[area], 6), (staging, 4)]
        parents = _pick_parents(rng, pools)
        if shape == "deep" and inter_by_area[area]:
            previous = inter_by_area[area][-1]
            parents = (previous, *(p for p in parents if p != previous))[:4]
        out.append(
            Model(
                name,
                "intermediate",
                area,
                parents,
                ephemeral=j in ephemeral_at,
                reads_run_date=j == len(AREAS),
            )
        )
        inter_by_area[area].append(name)

    all_inter = [n for a in AREAS for n in inter_by_area[a]]
    for k in range(n_marts):
        area = AREAS[k % len(AREAS)]
        i = n_staging + n_inter + k
        kind = "dim" if rng.random() < 0.3 else "fct"
        name = f"{kind}_{area}__{i:05d}"
        others = [n for a in AREAS if a != area for n in marts_by_area[a][-20:]]
        pools = [
            (inter_by_area[area], 6),
            (marts_by_area[area], 2),
            (others or all_inter, 1),
            (staging, 1),
        ]
        out.append(Model(name, "marts", area, _pick_parents(rng, pools)))
        marts_by_area[area].append(name)

    ephemeral = {m.name for m in out if m.ephemeral}
    final: list[Model] = []
    for m in out:
        tested = not m.ephemeral and rng.random() < TESTED_SHARE
        rel = None
        if (
            m.layer != "staging"
            and not m.ephemeral
            and m.parents[0] not in ephemeral
            and rng.random() < RELATIONSHIPS_SHARE
        ):
            rel = m.parents[0]
        final.append(replace(m, tested=tested, relationship_to=rel))
    return Project(project, seeds, tuple(final), shape)


def _pick_parents(rng: Random, pools: list[tuple[list[str], int]]) -> tuple[str, ...]:
    """1-4 distinct parents drawn from weighted pools (empty pools are skipped)."""
    live = [(pool, w) for pool, w in pools if pool]
    want = rng.choices(PARENT_COUNTS, PARENT_WEIGHTS)[0]
    want = min(want, sum(len(p) for p, _ in live))
    chosen: list[str] = []
    while len(chosen) < want:
        pool = rng.choices([p for p, _ in live], [w for _, w in live])[0]
        name = pool[rng.randrange(len(pool))]
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def render(project: Project, seed: int = 0) -> dict[str, str]:
    """Every file of the project: relative path -> text."""
    rng = Random(seed ^ 0x5EED)
    p = project.name
    files: dict[str, str] = {
        "dbt_project.yml": _dbt_project(p, project.shape),
        "profiles.yml": _profiles(p),
        "models/_groups.yml": _groups(),
    }
    for name in project.seeds:
        rows = ["id,amount,label,created_at"]
        for r in range(1, SEED_ROWS + 1):
            rows.append(f"{r},{rng.randint(1, 999)},{name}_{r},2024-01-{r:02d}")
        files[f"seeds/{name}.csv"] = "\n".join(rows) + "\n"

    by_folder: dict[str, list[Model]] = {}
    for m in project.models:
        files[f"models/{m.layer}/{m.folder}/{m.name}.sql"] = _model_sql(m)
        by_folder.setdefault(f"{m.layer}/{m.folder}", []).append(m)
    for folder, models in by_folder.items():
        text = _schema_yml(models)
        if text:
            layer, name = folder.split("/")
            files[f"models/{folder}/_{layer}_{name}__models.yml"] = text
    return files


def _dbt_project(p: str, shape: str = "layered") -> str:
    inter = "".join(f"      {a}:\n        +group: {a}\n" for a in AREAS)
    # A view over a 100-deep chain of views makes DuckDB re-bind the whole chain per model.
    inter_materialized = "table" if shape == "deep" else "view"
    return (
        "# Synthetic project written by sample_manifests/synth_project.py: do not edit.\n"
        f"name: {p}\n"
        'version: "1.0.0"\n'
        "config-version: 2\n"
        f"profile: {p}\n"
        "\n"
        'model-paths: ["models"]\n'
        'seed-paths: ["seeds"]\n'
        "target-path: target\n"
        'clean-targets: ["target", "logs"]\n'
        "\n"
        "flags:\n"
        "  send_anonymous_usage_stats: false\n"
        "\n"
        "models:\n"
        f"  {p}:\n"
        "    staging:\n"
        "      +materialized: view\n"
        f"      +group: {STAGING_GROUP}\n"
        "    intermediate:\n"
        f"      +materialized: {inter_materialized}\n"
        f"{inter}"
        "    marts:\n"
        "      +materialized: table\n"
        f"{inter}"
    )


def _profiles(p: str) -> str:
    return (
        "# DBT_DUCKDB_PATH points dbt at another database file; the default is relative\n"
        "# to dbt's working directory (run dbt from the project directory).\n"
        f"{p}:\n"
        "  target: dev\n"
        "  outputs:\n"
        "    dev:\n"
        "      type: duckdb\n"
        f"      path: \"{{{{ env_var('DBT_DUCKDB_PATH', '{p}.duckdb') }}}}\"\n"
        "      threads: 1\n"
    )


def _groups() -> str:
    lines = ["version: 2", "", "groups:"]
    for g in (*AREAS, STAGING_GROUP):
        lines += [
            f"  - name: {g}",
            "    owner:",
            f"      name: {g.capitalize()} Analytics",
            f"      email: {g}-analytics@example.com",
        ]
    return "\n".join(lines) + "\n"


def _model_sql(m: Model) -> str:
    head = "{{ config(materialized='ephemeral') }}\n\n" if m.ephemeral else ""
    if m.reads_run_date:
        created = f"cast('{{{{ env_var('{RUN_DATE_ENV}', '2024-01-01') }}}}' as date)"
    else:
        created = "cast(p1.created_at as date)"
    amount = " + ".join(
        ["p1.amount", *(f"coalesce(p{k}.amount, 0)" for k in range(2, len(m.parents) + 1))]
    )
    joins = "".join(
        f"left join {{{{ ref('{parent}') }}}} as p{k} on p1.id = p{k}.id\n"
        for k, parent in enumerate(m.parents[1:], start=2)
    )
    return (
        f"{head}select\n"
        "    p1.id,\n"
        f"    cast({amount} as double) as amount,\n"
        "    p1.label,\n"
        f"    {created} as created_at\n"
        f"from {{{{ ref('{m.parents[0]}') }}}} as p1\n"
        f"{joins}"
    )


def _schema_yml(models: list[Model]) -> str:
    lines: list[str] = []
    for m in models:
        if not (m.tested or m.relationship_to):
            continue
        lines += [f"  - name: {m.name}", "    columns:", "      - name: id", "        data_tests:"]
        if m.tested:
            lines += ["          - unique", "          - not_null"]
        if m.relationship_to:
            lines += [
                "          - relationships:",
                "              arguments:",
                f"                to: ref('{m.relationship_to}')",
                "                field: id",
            ]
    return "version: 2\n\nmodels:\n" + "\n".join(lines) + "\n" if lines else ""


def write(files: dict[str, str], out: Path, force: bool = False) -> None:
    """Write ``files`` under ``out``; with ``force``, first drop models/ and seeds/ there."""
    for sub in ("models", "seeds"):
        if (out / sub).exists():
            if not force:
                raise FileExistsError(f"{out / sub} exists (use --force to replace it)")
            shutil.rmtree(out / sub)
    made: set[Path] = set()
    for rel in sorted(files):
        path = out / rel
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(files[rel].encode())


def generate(
    models: int,
    out: Path,
    seed: int = 0,
    project: str = "synth",
    force: bool = False,
    shape: str = "layered",
) -> Project:
    """Plan, render and write a project; returns the plan."""
    proj = plan(models, seed, project, shape)
    write(render(proj, seed), Path(out), force)
    return proj


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, required=True, help="number of models (>= 20)")
    ap.add_argument("--out", type=Path, required=True, help="project directory to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--project", default="synth", help="dbt project and profile name")
    ap.add_argument("--force", action="store_true", help="replace models/ and seeds/ in --out")
    ap.add_argument(
        "--shape", choices=SHAPES, default="layered", help="deep: each area a chain of steps"
    )
    args = ap.parse_args(argv)
    start = time.perf_counter()
    proj = generate(args.models, args.out, args.seed, args.project, args.force, args.shape)
    counts = " ".join(f"{k}={v}" for k, v in proj.counts().items())
    print(f"wrote {args.out} ({counts}) in {time.perf_counter() - start:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
