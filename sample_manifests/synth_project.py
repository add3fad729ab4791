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
* ``--shape like:<manifest.json>``: the *graph* of a real project (whose SQL and
  warehouse we cannot run), copied. From the manifest (enabled nodes only): every model
  of every package and every snapshot (as a ``table`` model, so paths through it stay),
  with the same refs among models, snapshots and seeds; ``ephemeral`` where the original
  is, ``table`` for table/incremental/snapshot, else ``view`` (in each model's
  ``config()``); every seed (five invented rows); every source a model reads becomes a
  seed ``src_<source>_<table>``; a model with any single-parent test gets ``unique`` +
  ``not_null`` on ``id``; a test on exactly two models becomes a ``relationships`` test
  from its attached model to the other. Invented: SQL and data (as above), a seed chosen
  by CRC32 of the uid for a model that reads no model or seed (``raw_root`` when the
  project has neither seeds nor sources), the layer (first folder named like staging or
  intermediate, else marts), one dbt group per copied top folder (``platform`` for
  staging-like ones), no tests on ephemerals, and the run-date model (the first
  non-ephemeral). Names are sanitised to ``[a-z0-9_]`` and made unique. ``--models N``
  repeats the graph in disjoint copies ``c0_``, ``c1_``, ... (``models/<layer>/
  c<k>_<first folder>/``) until there are N; the last copy is a parents-first prefix
  (topological order, ties by uid) with only the seeds it reads, so no ref dangles. Each
  full copy has exactly the real per-model ancestor counts.
  Measured (``bench/dbt_task.py --sizes 2000 --repeats 3``, dbt-core 1.11.16, medians,
  2 shared cores): tuva-health/tuva copied (2,000 models, 283 ephemeral, 513 seeds, 285
  tests) naive/generated CPU 11.7/7.7 s = 1.52x, peak RSS 256/224 MB = 1.14x,
  generated/ls 0.93 (1.05 against ls --no-write-json); abagdi-allvuesystems (shallow,
  424 tests) 8.5/6.0 s = 1.43x, 233/205 MB = 1.14x, generated/ls 0.77 (0.88);
  FlipsideCrypto/solana-models (shallow, 2,924 tests) 15.9/10.2 s = 1.56x, 313/254 MB =
  1.23x, generated/ls 0.92 (1.11). The fast test-edge flag saves -4%, 2% and 12% of the
  naive CPU here: tuva is deep with few tests (0.14 per model), abagdi and solana shallow
  (mean 9 and 7 model ancestors). The invented shapes in the same bench: layered 1.77x CPU
  / 1.27x RSS, deep (many tests on a ~120-deep graph, where that flag saves most) 2.52x /
  1.96x (BENCHMARKS.md).

``plan()`` returns the project as data (with ``counts()``) without writing anything;
tests use it to know how many models, tests and ephemerals dbt should report.
"""

from __future__ import annotations

import argparse
import heapq
import re
import shutil
import sys
import time
import zlib
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
    materialized: str | None = None  # written as config() in the SQL (like shape only)
    also_related_to: tuple[str, ...] = ()  # more relationships tests (like shape only)

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
        relationships = sum(
            (m.relationship_to is not None) + len(m.also_related_to) for m in self.models
        )
        return {
            "models": len(self.models),
            "ephemeral": sum(m.ephemeral for m in self.models),
            "seeds": len(self.seeds),
            "tests": 2 * tested + relationships,
            "relationships_tests": relationships,
            "groups": len(self.group_names()),
        }

    def group_names(self) -> tuple[str, ...]:
        """The dbt groups ``_groups.yml`` declares, in file order."""
        if not self.shape.startswith(LIKE):
            return (*AREAS, STAGING_GROUP)
        return tuple(sorted({m.group for m in self.models}))


SHAPES = ("layered", "deep")
LIKE = "like:"  # shape "like:<manifest.json>": copies of a real project's graph


def plan(models: int, seed: int = 0, project: str = "synth", shape: str = "layered") -> Project:
    """Choose every model, edge and test of an N-model project (deterministic per seed)."""
    if shape.startswith(LIKE):
        return plan_like(models, Path(shape[len(LIKE) :]), project, shape)
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES} or {LIKE}<manifest.json>, not {shape!r}")
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


# --- shape "like:<manifest.json>": a real project's graph, copied until there are N models


@dataclass(frozen=True)
class _Original:
    """One model (or snapshot) of the real manifest, reduced to what a copy keeps."""

    uid: str
    name: str  # sanitised, unique across models and seeds, without the copy prefix
    folder: str  # first folder of its path (package name at the models/ root)
    materialized: str  # table | view | ephemeral
    parents: tuple[str, ...]  # uids of models, snapshots and seeds; sources -> "source:<uid>"
    tested: bool
    related_to: tuple[str, ...]  # uids of the other model of each two-parent test


@dataclass(frozen=True)
class _RealGraph:
    models: tuple[_Original, ...]  # parents first (topological order, ties by uid)
    seeds: dict[str, str]  # seed uid (or "source:<uid>") -> sanitised name


def _sanitise(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "x"


def _layer_of(folder: str) -> str:
    """dbt-style layer of a real top folder: staging-, intermediate- or (default) marts-like."""
    f = folder.lower()
    if "stag" in f or f.startswith(("stg", "src", "source", "base", "raw")):
        return "staging"
    if f.startswith("int"):
        return "intermediate"
    return "marts"


def read_real_graph(manifest_path: Path) -> _RealGraph:
    """Models, snapshots (as models), seeds, sources and tests of a real manifest.json."""
    import orjson

    raw = orjson.loads(Path(manifest_path).read_bytes())
    nodes = {
        uid: n
        for uid, n in raw["nodes"].items()
        if (n.get("config") or {}).get("enabled", True)
        and n["resource_type"] in ("model", "snapshot", "seed", "test")
    }
    kept = {u for u, n in nodes.items() if n["resource_type"] in ("model", "snapshot")}
    seed_uids = sorted(u for u, n in nodes.items() if n["resource_type"] == "seed")

    def parents_of(n: dict) -> list[str]:
        out: list[str] = []
        for p in (n.get("depends_on") or {}).get("nodes") or ():
            ref = p if p in nodes else f"source:{p}" if p.startswith("source.") else None
            if ref and ref not in out and nodes.get(ref, {}).get("resource_type") != "test":
                out.append(ref)
        return out

    parents = {u: parents_of(nodes[u]) for u in kept}
    tested: set[str] = set()
    related: dict[str, set[str]] = {}
    for n in nodes.values():
        if n["resource_type"] != "test":
            continue
        on = [p for p in parents_of(n) if p in kept]
        if len(on) == 1 and len(parents_of(n)) == 1:
            tested.add(on[0])
        elif len(on) == 2:
            child = n.get("attached_node") if n.get("attached_node") in on else on[0]
            related.setdefault(child, set()).add(on[1] if child == on[0] else on[0])

    # Names: models, snapshots, seeds and source-seeds share dbt's ref namespace.
    taken: set[str] = set()
    names: dict[str, str] = {}
    sources = sorted({p for ps in parents.values() for p in ps if p.startswith("source:")})
    for u in sorted(kept) + seed_uids + sources:
        if u.startswith("source:"):
            base = "src_" + _sanitise("_".join(u.split(".")[2:]))
        else:
            version = nodes[u].get("version")
            base = _sanitise(nodes[u]["name"] + (f"_v{version}" if version else ""))
        name, k = base, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        names[u] = name

    # Kahn's algorithm over models only, smallest uid first: deterministic, no recursion.
    children: dict[str, list[str]] = {u: [] for u in kept}
    waiting = {u: 0 for u in kept}
    for u in kept:
        for p in parents[u]:
            if p in kept:
                children[p].append(u)
                waiting[u] += 1
    ready = [u for u in kept if not waiting[u]]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        u = heapq.heappop(ready)
        order.append(u)
        for c in children[u]:
            waiting[c] -= 1
            if not waiting[c]:
                heapq.heappush(ready, c)
    if len(order) != len(kept):
        raise ValueError(f"{manifest_path}: the models' refs form a cycle")

    models = []
    for u in order:
        n = nodes[u]
        path = n.get("path") or ""
        folder = path.split("/")[0] if "/" in path else n["package_name"]
        mat = (n.get("config") or {}).get("materialized")
        mat = (
            "ephemeral"
            if mat == "ephemeral"
            else "table"
            if mat in ("table", "incremental", "snapshot")
            else "view"
        )
        models.append(
            _Original(
                u,
                names[u],
                _sanitise(folder),
                mat,
                tuple(parents[u]),
                u in tested,
                tuple(sorted(related.get(u, ()))),
            )
        )
    seeds = {u: names[u] for u in seed_uids + sources}
    if not seeds:  # parentless models still need something to select from
        seeds["root"] = next(n for n in ("raw_root", "raw_root_seed") if n not in taken)
    return _RealGraph(tuple(models), seeds)


def plan_like(models: int, manifest_path: Path, project: str, shape: str) -> Project:
    """Disjoint copies ``c0_``, ``c1_``, ... of the real graph until there are N models."""
    real = read_real_graph(manifest_path)
    if models < 1:
        raise ValueError("need at least one model")
    by_uid = {o.uid: o for o in real.models}
    all_seeds = sorted(real.seeds)
    seeds: list[str] = []
    out: list[Model] = []
    copy = 0
    while len(out) < models:
        pre = f"c{copy}_"
        take = real.models[: models - len(out)]  # parents-first prefix: no ref dangles
        kept = {o.uid for o in take}
        testable = {u for u in kept if by_uid[u].materialized != "ephemeral"}
        used: set[str] = set()
        for o in take:
            parents = [p for p in o.parents if p in kept or p in real.seeds]
            if not parents:  # reads no model or seed: one seed, chosen by its uid
                parents = [all_seeds[zlib.crc32(o.uid.encode()) % len(all_seeds)]]
            used.update(p for p in parents if p in real.seeds)
            eph = o.materialized == "ephemeral"
            related = [pre + by_uid[r].name for r in o.related_to if not eph and r in testable]
            out.append(
                Model(
                    pre + o.name,
                    _layer_of(o.folder),
                    pre + o.folder,
                    tuple(pre + (real.seeds.get(p) or by_uid[p].name) for p in parents),
                    ephemeral=eph,
                    tested=o.tested and not eph,
                    relationship_to=related[0] if related else None,
                    materialized=o.materialized,
                    also_related_to=tuple(related[1:]),
                )
            )
        full = len(take) == len(real.models)
        seeds += [pre + real.seeds[s] for s in all_seeds if full or s in used]
        copy += 1
    first = next(i for i, m in enumerate(out) if not m.ephemeral)
    out[first] = replace(out[first], reads_run_date=True)
    return Project(project, tuple(seeds), tuple(out), shape)


def _dbt_project_like(project: Project) -> str:
    """Layers with their default materialization; one group per non-staging folder."""
    p = project.name
    folders: dict[str, set[str]] = {"staging": set(), "intermediate": set(), "marts": set()}
    for m in project.models:
        folders[m.layer].add(m.folder)
    layers = ""
    for layer, mat in (("staging", "view"), ("intermediate", "view"), ("marts", "table")):
        if not folders[layer]:  # dbt warns about config paths that match no model
            continue
        layers += f"    {layer}:\n      +materialized: {mat}\n"
        if layer == "staging":
            layers += f"      +group: {STAGING_GROUP}\n"
        else:
            layers += "".join(f"      {f}:\n        +group: {f}\n" for f in sorted(folders[layer]))
    head = _dbt_project(p).split("    staging:\n", 1)[0]  # the layered file up to its layers
    note = (
        "# Graph copied from a real project's manifest (shape like:...); every model's\n"
        "# materialization is set in its own config().\n"
    )
    return head.replace("do not edit.\n", "do not edit.\n" + note, 1) + layers


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
    like = project.shape.startswith(LIKE)
    files: dict[str, str] = {
        "dbt_project.yml": _dbt_project_like(project) if like else _dbt_project(p, project.shape),
        "profiles.yml": _profiles(p),
        "models/_groups.yml": _groups(project.group_names()),
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


def _groups(names: tuple[str, ...] = (*AREAS, STAGING_GROUP)) -> str:
    lines = ["version: 2", "", "groups:"]
    for g in names:
        lines += [
            f"  - name: {g}",
            "    owner:",
            f"      name: {g.capitalize()} Analytics",
            f"      email: {g}-analytics@example.com",
        ]
    return "\n".join(lines) + "\n"


def _model_sql(m: Model) -> str:
    head = "{{ config(materialized='ephemeral') }}\n\n" if m.ephemeral else ""
    if m.materialized and not m.ephemeral:
        head = f"{{{{ config(materialized='{m.materialized}') }}}}\n\n"
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
        if not (m.tested or m.relationship_to or m.also_related_to):
            continue
        lines += [f"  - name: {m.name}", "    columns:", "      - name: id", "        data_tests:"]
        if m.tested:
            lines += ["          - unique", "          - not_null"]
        for to in (m.relationship_to, *m.also_related_to):
            if to:
                lines += [
                    "          - relationships:",
                    "              arguments:",
                    f"                to: ref('{to}')",
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


def _shape_arg(text: str) -> str:
    if text in SHAPES or (text.startswith(LIKE) and Path(text[len(LIKE) :]).is_file()):
        return text
    raise argparse.ArgumentTypeError(f"{SHAPES} or {LIKE}<path to an existing manifest.json>")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, required=True, help="number of models (>= 20)")
    ap.add_argument("--out", type=Path, required=True, help="project directory to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--project", default="synth", help="dbt project and profile name")
    ap.add_argument("--force", action="store_true", help="replace models/ and seeds/ in --out")
    ap.add_argument(
        "--shape",
        type=_shape_arg,
        default="layered",
        help="deep: each area a chain of steps; like:<manifest.json>: copies of a real graph",
    )
    args = ap.parse_args(argv)
    start = time.perf_counter()
    proj = generate(args.models, args.out, args.seed, args.project, args.force, args.shape)
    counts = " ".join(f"{k}={v}" for k, v in proj.counts().items())
    print(f"wrote {args.out} ({counts}) in {time.perf_counter() - start:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
