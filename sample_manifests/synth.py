#!/usr/bin/env python3
"""Write a synthetic dbt manifest.json (schema v12, dbt 1.11 shape) of any size.

Why: dagfactory has to stay fast and correct on projects with thousands of models,
but a real 5,000-model project cannot be shipped in the repo or built in CI. This
script makes a manifest that looks like one to every reader of the file: the node
dictionaries are copies of the nodes real dbt-core 1.11 wrote for the sample
project in ``sample_manifests/shop/manifest.json`` (same keys, same nesting, same
defaults, dbt's macros and docs included), with names, paths, SQL, columns, tests
and edges filled in. So parse time, memory and output size on a synthetic N-model
manifest are close to those on a real one (about 8 KB per model with its tests).

Usage::

    python sample_manifests/synth.py --models 5000 --out /tmp/m5k.json \\
        [--seed 0] [--groups G] [--run-results /tmp/rr5k.json] [--project NAME] \\
        [--layout groups|layered]

What is in it (all chosen by a ``random.Random(seed)``, so the same arguments give
a byte-identical file). The default layout, ``--layout groups``:

* ``--models`` N enabled model nodes: ~10% staging models (``models/staging/<src>/``,
  no dbt group, each reading one source table), then intermediate and mart models
  in group folders ``models/<group>/{intermediate,marts}/`` with ``config.group``.
  ~3% are ephemeral (some ephemeral-on-ephemeral chains), marts are tables or
  incremental, a few marts have two live versions (``model.p.x.v1``/``.v2``, the
  second the latest) and downstream refs that pin a version or not.
* Each model refs 1-5 upstream nodes from earlier layers. Groups are ordered and
  split into up to 5 tiers; a model only refs models of its own group, of groups
  in lower tiers (so always lower-numbered groups), staging, seeds and snapshots,
  so the group graph is acyclic and the model graph some tens of levels deep.
* Seeds, a few snapshots over seeds or staging models, a few exposures.
* Tests: about two single-parent generic tests per non-ephemeral model
  (unique / not_null, some accepted_values), relationships tests with two parents
  on ~5% of models, a not_null test on every source table (its only parent is a
  source), a unique test per seed, a not_null test per snapshot and a few singular
  tests that ref two models of different groups.
* ~1% extra disabled models in ``manifest["disabled"]`` (refs kept, depends_on
  empty, as dbt writes them).
* ``parent_map``/``child_map``/``group_map`` consistent with ``depends_on``;
  ``groups`` with owners; ``metadata`` with the v12 schema URL, dbt_version,
  project_name, ``project_id`` = md5 hex of the project name (as dbt computes it),
  and a fixed generated_at / seeded invocation_id.

``--layout layered`` is the layout dbt's style guide recommends, with no dbt groups
(``config.group`` null, ``groups`` empty), so dagfactory's default grouping is by folder
and gives a handful of big DAGs (staging, intermediate, marts, seeds): the worst case for
Airflow's per-DAG parse costs. ~30% ``models/staging/<source>/stg_<source>__*.sql``
(views, fqn ``[project, "staging", <source>, name]``, each reading one source table,
some a seed), ~30% ``models/intermediate/<area>/int_<area>__*.sql`` (refs staging and
earlier intermediate models, mostly of the same area; ~3% of all models ephemeral; the
snapshots are read here) and ~40% ``models/marts/<area>/{fct,dim}_<area>__*.sql`` (refs
intermediate, earlier marts, staging and seeds; a few versioned). ``--groups`` sets the
number of areas (default ``max(3, N // 250)``). Seeds, snapshots, tests, exposures,
disabled models and run_results as in the default layout.

``--run-results PATH`` also writes a run_results.json (v6, as dbt 1.11 writes it for
``dbt build``) with an ``execution_time`` for every executed node: models mostly
take seconds to a minute, about 1% take 15-60 minutes; tests are short.

Output goes through orjson when it is installed, else the json module with the
same compact separators (both give the same bytes for this content). The dict from
``build_manifest`` shares unchanged sub-objects between nodes (that is what keeps
20k models fast); serialise it, do not mutate it in place.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

try:  # orjson is a dagfactory dependency; the json fallback gives the same bytes.
    import orjson
except ImportError:  # pragma: no cover - exercised only without orjson
    orjson = None  # type: ignore[assignment]

HERE = Path(__file__).resolve().parent
DEFAULT_TEMPLATE = HERE / "shop" / "manifest.json"
TEMPLATE_PROJECT = "shop"

# Node ids in the template manifest whose shapes are copied.
T_MODEL = "model.shop.mkt_channel_spend"
T_SEED = "seed.shop.raw_orders"
T_SNAPSHOT = "snapshot.shop.customers_snapshot"
T_SOURCE = "source.shop.web.ad_spend"
T_SINGULAR = "test.shop.assert_revenue_matches_orders"
T_EXPOSURE = "exposure.shop.revenue_dashboard"
T_DISABLED = "model.shop.mkt_legacy_campaigns"

# Fixed clock so output is byte-identical for a seed: 2026-01-01T00:00:00Z.
BASE_EPOCH = 1767225600.0
GENERATED_AT = "2026-01-01T00:00:00.000000Z"
STARTED_AT = "2026-01-01T00:00:00.000000Z"
RUN_STARTED_AT = "2026-01-01T00:00:00.000000+00:00"

GROUP_WORDS = [
    "sales",
    "finance",
    "marketing",
    "product",
    "growth",
    "risk",
    "supply",
    "logistics",
    "support",
    "billing",
    "payments",
    "identity",
    "search",
    "ads",
    "inventory",
    "pricing",
    "fraud",
    "people",
    "legal",
    "security",
    "partners",
    "content",
    "catalog",
    "loyalty",
    "checkout",
    "shipping",
    "returns",
    "tax",
    "procurement",
    "forecasting",
]
NOUNS = [
    "orders",
    "customers",
    "accounts",
    "sessions",
    "events",
    "invoices",
    "payments",
    "refunds",
    "products",
    "shipments",
    "tickets",
    "campaigns",
    "clicks",
    "leads",
    "contracts",
    "subscriptions",
    "devices",
    "visits",
    "carts",
    "reviews",
    "suppliers",
    "stores",
    "employees",
    "budgets",
    "forecasts",
    "claims",
]
SOURCE_SYSTEMS = [
    "erp",
    "crm",
    "web",
    "app",
    "billing",
    "ads",
    "support",
    "warehouse",
    "hr",
    "payments",
    "inventory",
    "marketing_api",
]
COLUMN_WORDS = [
    ("created_at", "timestamp", "When the row was first created in the source system."),
    ("updated_at", "timestamp", "When the row was last changed in the source system."),
    ("status", "varchar", "Lifecycle status, lower-cased; see the accepted values test."),
    ("amount_usd", "decimal(18, 2)", "Amount converted to US dollars at the daily rate."),
    ("quantity", "integer", "Number of units involved."),
    ("region", "varchar", "Sales region derived from the country code."),
    ("country_code", "varchar", "ISO 3166 alpha-2 country code, upper-cased."),
    ("is_active", "boolean", "True while the record is live and not soft-deleted."),
    ("channel", "varchar", "Acquisition or sales channel the record came through."),
    ("customer_id", "integer", "Foreign key to the customer dimension."),
    ("account_id", "integer", "Foreign key to the account dimension."),
    ("event_date", "date", "Calendar day of the event in UTC."),
    ("currency", "varchar", "ISO 4217 currency of the original amount."),
    ("score", "double", "Model score between 0 and 1; higher means more likely."),
    ("source_system", "varchar", "Name of the upstream system the row was loaded from."),
    ("loaded_at", "timestamp", "When the loader last wrote this row."),
]
TAG_CHOICES = ["nightly", "hourly", "heavy", "pii", "critical", "weekly"]
STATUS_VALUES = ["active", "pending", "closed", "cancelled"]
LAYOUTS = ("groups", "layered")

# A trimmed copy of the "args" dbt 1.11 writes into run_results.json for `dbt build`.
RUN_ARGS: dict[str, Any] = {
    "require_unique_project_resource_names": False,
    "partial_parse_file_diff": True,
    "vars": {},
    "printer_width": 80,
    "indirect_selection": "eager",
    "populate_cache": True,
    "write_json": True,
    "partial_parse": True,
    "which": "build",
    "favor_state": False,
    "warn_error_options": {"error": [], "warn": [], "silence": []},
    "show": False,
    "log_level": "info",
    "use_colors": True,
    "require_resource_names_without_spaces": True,
    "target_path": "target",
    "defer": False,
    "exclude_resource_types": [],
    "project_dir": ".",
    "quiet": False,
    "profiles_dir": ".",
    "exclude": [],
    "empty": False,
    "static_parser": True,
    "invocation_command": "dbt build",
    "cache_selected_only": False,
    "log_format": "default",
    "select": [],
    "version_check": True,
    "resource_types": [],
    "print": True,
    "introspect": True,
    "log_path": "logs",
}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _clone(obj: Any) -> Any:
    """Deep copy of plain JSON data (much faster than copy.deepcopy)."""
    if type(obj) is dict:
        return {k: _clone(v) for k, v in obj.items()}
    if type(obj) is list:
        return [_clone(v) for v in obj]
    return obj


def _ref(name: str, version: int | None = None) -> dict[str, Any]:
    return {"name": name, "package": None, "version": version}


class _Model:
    """Bookkeeping for one generated model before it becomes a node dict."""

    __slots__ = (
        "area",
        "columns",
        "ephemeral",
        "group",
        "latest_version",
        "layer",
        "materialized",
        "name",
        "parents",
        "pk",
        "refs",
        "sources",
        "uid",
        "version",
    )

    def __init__(self, uid: str, name: str, layer: str, group: str | None) -> None:
        self.uid = uid
        self.name = name
        self.layer = layer
        self.group = group
        self.area: str | None = None  # layered layout: the folder under models/<layer>/
        self.materialized = "table"
        self.ephemeral = False
        self.version: int | None = None
        self.latest_version: int | None = None
        self.parents: list[str] = []  # resolved unique_ids, in ref order
        self.refs: list[dict[str, Any]] = []
        self.sources: list[list[str]] = []
        self.columns: list[tuple[str, str, str]] = []
        self.pk = ""


class Synth:
    def __init__(
        self,
        models: int,
        seed: int = 0,
        groups: int | None = None,
        project: str = "synth",
        template: Path = DEFAULT_TEMPLATE,
        layout: str = "groups",
    ) -> None:
        if models < 10:
            raise ValueError("--models must be at least 10")
        if layout not in LAYOUTS:
            raise ValueError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.n = models
        self.layout = layout
        self.rng = random.Random(seed)
        self.seed = seed
        default_groups = max(5, models // 100) if layout == "groups" else max(3, models // 250)
        self.g = groups if groups is not None else default_groups
        if self.g < 1:
            raise ValueError("--groups must be at least 1")
        self.project = project
        self.tpl = json.loads(Path(template).read_text())
        self.db = project
        self.created = BASE_EPOCH
        self.nodes: dict[str, dict[str, Any]] = {}
        self.sources: dict[str, dict[str, Any]] = {}
        self.exposures: dict[str, dict[str, Any]] = {}
        self.disabled: dict[str, list[dict[str, Any]]] = {}
        self.models: list[_Model] = []
        self.by_uid: dict[str, _Model] = {}
        self.test_ids: list[str] = []
        self._node_templates()

    # ----------------------------------------------------------------- templates
    def _node_templates(self) -> None:
        t = self.tpl
        self.t_model = t["nodes"][T_MODEL]
        self.t_seed = t["nodes"][T_SEED]
        self.t_snapshot = t["nodes"][T_SNAPSHOT]
        self.t_source = t["sources"][T_SOURCE]
        self.t_singular = t["nodes"][T_SINGULAR]
        self.t_exposure = t["exposures"][T_EXPOSURE]
        self.t_group = next(iter(t["groups"].values()))
        tests = {
            n["test_metadata"]["name"]: n
            for n in t["nodes"].values()
            if n["resource_type"] == "test" and n.get("test_metadata")
        }
        self.t_tests = {
            k: tests[k] for k in ("unique", "not_null", "relationships", "accepted_values")
        }
        self.t_column = next(iter(self.t_model["columns"].values()))

    def _tick(self) -> float:
        self.created += 0.000731
        return round(self.created, 6)

    def _relation(self, schema: str, alias: str) -> str:
        return f'"{self.db}"."{schema}"."{alias}"'

    def _columns(self, cols: list[tuple[str, str, str]]) -> dict[str, Any]:
        out = {}
        for name, _dtype, desc in cols:
            c = dict(self.t_column)
            c["name"] = name
            c["description"] = desc
            out[name] = c
        return out

    # ------------------------------------------------------------------- layout
    def _group_names(self) -> list[str]:
        names = []
        for i in range(self.g):
            word = GROUP_WORDS[i % len(GROUP_WORDS)]
            names.append(word if i < len(GROUP_WORDS) else f"{word}_{i // len(GROUP_WORDS) + 1}")
        return names

    def build(self) -> dict[str, Any]:
        if self.layout == "layered":
            return self._build_layered()
        rng = self.rng
        group_names = self._group_names()
        self.group_names = group_names
        n_staging = max(1, round(self.n * 0.10))
        n_rest = self.n - n_staging
        n_seeds = max(2, self.n // 250)
        n_snapshots = max(1, self.n // 1000)

        # Seeds first: staging and snapshots may read them.
        seeds = [self._seed(i) for i in range(n_seeds)]

        # Source tables, a handful per source system.
        source_ids = self._source_ids(n_staging, 8)

        staging, snapshots = self._staging_and_snapshots(source_ids, seeds, n_snapshots)

        # Split the remaining models over groups with uneven sizes.
        weights = [rng.uniform(0.5, 1.5) for _ in group_names]
        sizes = _split(n_rest, weights)

        n_versioned = max(1, self.n // 500)
        versioned_left = n_versioned
        groups_models: list[list[_Model]] = []
        # Groups sit in a few ordered tiers (think core -> domain -> reporting). A
        # model may ref models of groups in lower tiers; this keeps the group graph
        # acyclic and the model graph about as deep as real projects (tens of
        # levels, not one chain through every group).
        tiers = min(self.g, 5)
        lower: list[_Model] = []  # non-staging models of groups in lower tiers
        this_tier: list[_Model] = []
        cur_tier = 0
        counter = 0
        p_ephemeral = 0.03 * self.n / max(1, n_rest * 0.35)
        for gi, gname in enumerate(group_names):
            tier = gi * tiers // self.g
            if tier != cur_tier:
                lower.extend(this_tier)
                this_tier, cur_tier = [], tier
            own: list[_Model] = []
            size = sizes[gi]
            n_int = max(0, round(size * 0.35)) if size > 2 else 0
            slot = 0
            while slot < size:
                layer = "intermediate" if slot < n_int else "marts"
                counter += 1
                noun = NOUNS[counter % len(NOUNS)]
                make_versions = (
                    layer == "marts"
                    and versioned_left > 0
                    and size - slot >= 2
                    and rng.random() < 0.05
                )
                if layer == "intermediate":
                    name = f"int_{gname}__{noun}_{counter:05d}"
                else:
                    prefix = "dim" if counter % 3 == 0 else "fct"
                    name = f"{prefix}_{gname}__{noun}_{counter:05d}"
                parents = self._pick_parents(own, lower, staging, snapshots, seeds, layer)
                if make_versions:
                    versioned_left -= 1
                    for v in (1, 2):
                        m = _Model(f"model.{self.project}.{name}.v{v}", name, layer, gname)
                        m.version, m.latest_version = v, 2
                        self._wire(m, parents)
                        m.materialized = "table"
                        own.append(self._register(m))
                    slot += 2
                    continue
                m = _Model(f"model.{self.project}.{name}", name, layer, gname)
                self._wire(m, parents)
                if layer == "intermediate":
                    if rng.random() < p_ephemeral:
                        m.ephemeral = True
                        m.materialized = "ephemeral"
                        eph = [x for x in own[-20:] if x.ephemeral]
                        if (
                            eph and len(m.parents) < 5 and rng.random() < 0.5
                        ):  # ephemeral on ephemeral
                            self._add_parent(m, eph[-1])
                    else:
                        m.materialized = "table" if rng.random() < 0.5 else "view"
                else:
                    m.materialized = "incremental" if rng.random() < 0.2 else "table"
                own.append(self._register(m))
                slot += 1
            groups_models.append(own)
            this_tier.extend(own)

        self._nodes_and_tests(source_ids, seeds, snapshots, group_names)
        return self._assemble(group_names)

    def _nodes_and_tests(
        self, source_ids: list[str], seeds: list[str], snapshots: list[str], areas: list[str]
    ) -> None:
        """Every model's node, then the tests of models, sources, seeds and snapshots, then
        singular tests, exposures and disabled models: both layouts, in this order."""
        for m in self.models:
            self.nodes[m.uid] = self._model_node(m)
        for m in self.models:
            if not m.ephemeral:
                self._model_tests(m)
        for sid in source_ids:
            self._source_test(sid)
        for seed_id in seeds:
            name = self.nodes[seed_id]["name"]
            self._simple_test(
                "unique", seed_id, "id", f"seeds.{name}", "seeds/_seeds.yml", [self.project]
            )
        for snap_id in snapshots:
            name = self.nodes[snap_id]["name"]
            yml = "snapshots/_snapshots.yml"
            self._simple_test("not_null", snap_id, "id", f"snapshots.{name}", yml, [self.project])
        for i in range(max(1, self.n // 500)):
            self._singular_test(i)
        for i in range(max(1, self.n // 1000)):
            self._exposure(i)
        for i in range(max(1, self.n // 100)):
            self._disabled_model(i, areas)

    # ------------------------------------------------------------ layered layout
    def _source_ids(self, count: int, per_system: int) -> list[str]:
        """``count`` source tables, ``per_system`` per source system (``erp``, ``erp_2``...)."""
        ids = []
        for i in range(count):
            system = SOURCE_SYSTEMS[(i // per_system) % len(SOURCE_SYSTEMS)]
            if i // per_system >= len(SOURCE_SYSTEMS):
                system = f"{system}_{i // per_system // len(SOURCE_SYSTEMS) + 1}"
            table = f"{NOUNS[i % len(NOUNS)]}_{i:05d}"
            ids.append(self._source(system, table))
        return ids

    def _build_layered(self) -> dict[str, Any]:
        """dbt's recommended layout, no dbt groups (see the module docstring).

        Why: with folder grouping this gives a few DAGs of thousands of tasks, the marts
        DAG scheduled on the assets of about a thousand upstream models: the shape whose
        Airflow parse cost issue #10 is about, which the default layout's many small
        group DAGs never reach.
        """
        rng = self.rng
        areas = self._group_names()
        self.group_names = areas
        n_staging = max(1, round(self.n * 0.30))
        n_int = max(1, round(self.n * 0.30))
        n_marts = self.n - n_staging - n_int
        n_seeds = max(2, self.n // 250)
        n_snapshots = max(1, self.n // 1000)

        seeds = [self._seed(i) for i in range(n_seeds)]
        source_ids = self._source_ids(n_staging, max(4, n_staging // 40))
        staging, snapshots = self._staging_and_snapshots(
            source_ids, seeds, n_snapshots, area_folders=True
        )

        weights = [rng.uniform(0.5, 1.5) for _ in areas]
        int_sizes = _split(n_int, weights)
        mart_sizes = _split(n_marts, weights) if n_marts > 0 else [0] * len(areas)
        counter = 0

        # Intermediate: staging and earlier intermediate models, mostly of the same area.
        ints: list[_Model] = []
        int_of: dict[str, list[_Model]] = {}
        p_ephemeral = min(0.5, 0.03 * self.n / n_int)
        for area, size in zip(areas, int_sizes, strict=True):
            own = int_of.setdefault(area, [])
            for _ in range(size):
                counter += 1
                name = f"int_{area}__{NOUNS[counter % len(NOUNS)]}_{counter:05d}"
                m = _Model(f"model.{self.project}.{name}", name, "intermediate", None)
                m.area = area
                pools = [(0.55, staging, "popular"), (0.33, own, "recent"), (0.12, ints, "any")]
                self._wire(m, self._draw_parents(pools, staging))
                # Every snapshot is read, by a table (its group is then intermediate's).
                reads_snapshot = len(ints) < len(snapshots)
                if reads_snapshot:
                    m.parents.append(snapshots[len(ints)])
                    m.refs.append(_ref(self.nodes[snapshots[len(ints)]]["name"]))
                if not reads_snapshot and rng.random() < p_ephemeral:
                    m.ephemeral = True
                    m.materialized = "ephemeral"
                    eph = [x for x in own[-20:] if x.ephemeral]
                    if eph and len(m.parents) < 5 and rng.random() < 0.5:
                        self._add_parent(m, eph[-1])
                else:
                    m.materialized = "table" if rng.random() < 0.5 else "view"
                own.append(self._register(m))
                ints.append(m)

        # Marts: intermediate models (mostly of their area), earlier marts, staging, seeds.
        marts: list[_Model] = []
        n_versioned = max(1, self.n // 500)
        for area, size in zip(areas, mart_sizes, strict=True):
            own = []
            slot = 0
            while slot < size:
                counter += 1
                prefix = "dim" if counter % 3 == 0 else "fct"
                name = f"{prefix}_{area}__{NOUNS[counter % len(NOUNS)]}_{counter:05d}"
                pools = [
                    (0.45, int_of[area], "popular"),
                    (0.04, ints, "popular"),
                    (0.33, own, "recent"),
                    (0.08, marts, "any"),
                    (0.07, staging, "popular"),
                    (0.03, seeds, "any"),
                ]
                parents = self._draw_parents(pools, staging)
                versions: tuple[int | None, ...] = (None,)
                if n_versioned > 0 and size - slot >= 2 and rng.random() < 0.05:
                    n_versioned -= 1
                    versions = (1, 2)
                for v in versions:
                    uid = f"model.{self.project}.{name}" + (f".v{v}" if v else "")
                    m = _Model(uid, name, "marts", None)
                    m.area = area
                    if v:
                        m.version, m.latest_version = v, 2
                    self._wire(m, parents)
                    m.materialized = "incremental" if not v and rng.random() < 0.2 else "table"
                    own.append(self._register(m))
                    marts.append(m)
                slot += len(versions)

        self._nodes_and_tests(source_ids, seeds, snapshots, areas)
        return self._assemble([])

    def _draw_parents(
        self, pools: list[tuple[float, list[Any], str]], fallback: list[_Model]
    ) -> list[tuple[_Model | str, int | None]]:
        """1-5 distinct parents, each from a pool chosen by weight (empty pools skipped).

        ``how`` per pool: ``popular`` favours the front of the pool (a few upstream models
        are read by many, as in real projects), ``recent`` half the time the last 30 (the
        models written just before), ``any`` uniform.
        """
        rng = self.rng
        live = [(w, pool, how) for w, pool, how in pools if pool]
        k = rng.choices((1, 2, 3, 4, 5), weights=(30, 30, 20, 12, 8))[0]
        picked: dict[str, tuple[_Model | str, int | None]] = {}
        for _ in range(k * 2):
            if len(picked) >= k:
                break
            _, pool, how = rng.choices(live, weights=[w for w, _, _ in live])[0]
            if how == "popular":
                cand = pool[int(len(pool) * rng.random() ** 2.5)]
            elif how == "recent" and rng.random() < 0.5:
                cand = pool[-30:][rng.randrange(min(30, len(pool)))]
            else:
                cand = pool[rng.randrange(len(pool))]
            pinned = None
            if isinstance(cand, _Model) and cand.version is not None:
                pinned = rng.choice((None, 1, 2))
                cand = self.by_uid[f"model.{self.project}.{cand.name}.v{pinned or 2}"]
            picked.setdefault(cand.uid if isinstance(cand, _Model) else cand, (cand, pinned))
        if not picked:
            cand = fallback[rng.randrange(len(fallback))]
            picked[cand.uid] = (cand, None)
        return list(picked.values())

    def _staging_and_snapshots(
        self, source_ids: list[str], seeds: list[str], n_snapshots: int, *, area_folders=False
    ) -> tuple[list[_Model], list[str]]:
        """Staging views, one per source table (every ninth also reads a seed), then
        snapshots over seeds or staging models: both layouts, in the same random order."""
        rng = self.rng
        staging = []
        for i, sid in enumerate(source_ids):
            src = self.sources[sid]
            name = f"stg_{src['source_name']}__{src['name']}"
            m = _Model(f"model.{self.project}.{name}", name, "staging", None)
            if area_folders:  # layered: models/staging/<source>/
                m.area = src["source_name"]
            m.materialized = "view"
            m.sources.append([src["source_name"], src["name"]])
            m.parents.append(sid)
            if i % 9 == 0 and seeds:
                seed_id = seeds[rng.randrange(len(seeds))]
                m.refs.append(_ref(self.nodes[seed_id]["name"]))
                m.parents.append(seed_id)
            staging.append(self._register(m))
        snapshots = []
        for i in range(n_snapshots):
            base = seeds[i % len(seeds)] if i % 2 == 0 else staging[rng.randrange(len(staging))].uid
            snapshots.append(self._snapshot(i, base))
        return staging, snapshots

    def _register(self, m: _Model) -> _Model:
        self.models.append(m)
        self.by_uid[m.uid] = m
        return m

    def _pick_parents(
        self, own, lower, staging, snapshots, seeds, layer
    ) -> list[tuple[_Model | str, int | None]]:
        rng = self.rng
        k = rng.choices((1, 2, 3, 4, 5), weights=(30, 30, 20, 12, 8))[0]
        picked: dict[str, tuple[_Model | str, int | None]] = {}
        for _ in range(k * 2):
            if len(picked) >= k:
                break
            r = rng.random()
            cand: _Model | str | None = None
            if r < 0.6 and own:
                pool = own[-30:] if rng.random() < 0.5 else own
                cand = pool[rng.randrange(len(pool))]
            elif r < 0.8 and lower:
                cand = lower[rng.randrange(len(lower))]
            elif r < 0.97 or not (snapshots or seeds):
                cand = staging[rng.randrange(len(staging))]
            elif snapshots and rng.random() < 0.6:
                cand = snapshots[rng.randrange(len(snapshots))]
            else:
                cand = seeds[rng.randrange(len(seeds))]
            pinned = None
            if isinstance(cand, _Model) and cand.version is not None:
                # Versioned parent: pin v1 or v2, or leave unpinned (resolves to latest).
                choice = rng.choice((None, 1, 2))
                pinned = choice
                target = f"model.{self.project}.{cand.name}.v{choice or cand.latest_version}"
                cand = self.by_uid[target]
            key = cand.uid if isinstance(cand, _Model) else cand
            picked.setdefault(key, (cand, pinned))
        if not picked:
            cand = staging[rng.randrange(len(staging))]
            picked[cand.uid] = (cand, None)
        return list(picked.values())

    def _wire(self, m: _Model, parents) -> None:
        for cand, pinned in parents:
            if isinstance(cand, _Model):
                m.parents.append(cand.uid)
                m.refs.append(_ref(cand.name, pinned))
            else:  # seed or snapshot unique_id
                m.parents.append(cand)
                m.refs.append(_ref(self.nodes[cand]["name"]))

    def _add_parent(self, m: _Model, p: _Model) -> None:
        if p.uid not in m.parents:
            m.parents.append(p.uid)
            m.refs.append(_ref(p.name))

    # -------------------------------------------------------------------- nodes
    def _pick_columns(self, entity: str) -> list[tuple[str, str, str]]:
        rng = self.rng
        pk = f"{entity}_id"
        cols = [
            (pk, "integer", f"Primary key of {entity.replace('_', ' ')}; unique and never null.")
        ]
        extra = rng.sample(COLUMN_WORDS, rng.randint(2, 7))
        cols.extend(extra)
        return cols

    def _sql(self, m: _Model) -> str:
        cols = ",\n    ".join(f"p0.{c[0]}" for c in m.columns)
        head = ""
        if m.materialized == "incremental":
            head = f"{{{{ config(materialized='incremental', unique_key='{m.pk}') }}}}\n\n"
        elif m.ephemeral:
            head = "{{ config(materialized='ephemeral') }}\n\n"
        ctes = []
        if m.layer == "staging":
            src = m.sources[0]
            body = f"select * from {{{{ source('{src[0]}', '{src[1]}') }}}}"
            ctes.append(f"p0 as (\n    {body}\n)")
            for j, r in enumerate(m.refs, start=1):
                ctes.append(f"p{j} as (\n    select * from {{{{ ref('{r['name']}') }}}}\n)")
        else:
            for j, r in enumerate(m.refs):
                v = f", v={r['version']}" if r["version"] is not None else ""
                ctes.append(f"p{j} as (\n    select * from {{{{ ref('{r['name']}'{v}) }}}}\n)")
        joins = "".join(f"\nleft join p{j} on p0.{m.pk} = p{j}.{m.pk}" for j in range(1, len(ctes)))
        where = (
            "\n{% if is_incremental() %}\nwhere p0.updated_at > (select max(updated_at) from {{ this }})\n{% endif %}"
            if m.materialized == "incremental"
            else ""
        )
        return (
            f"-- {m.name}: {m.layer} model generated by sample_manifests/synth.py\n"
            f"{head}with {', '.join(ctes)}\n\nselect\n    {cols}\nfrom p0{joins}{where}\n"
        )

    def _model_node(self, m: _Model) -> dict[str, Any]:
        rng = self.rng
        entity = m.name.split("__")[-1].rsplit("_", 1)[0] if "__" in m.name else m.name
        entity = entity.rstrip("s") or entity
        m.pk = f"{entity}_id"
        m.columns = self._pick_columns(entity)
        raw = self._sql(m)
        if m.area is not None:  # layered layout: models/<layer>/<area>/
            folder = [m.layer, m.area]
        else:
            folder = ["staging", m.sources[0][0]] if m.layer == "staging" else [m.group, m.layer]
        file_name = m.name if m.version is None else f"{m.name}_v{m.version}"
        path = "/".join([*folder, f"{file_name}.sql"])
        yml = "/".join(["models", *folder, f"_{folder[0]}__{folder[1]}.yml"])

        tags: list[str] = []
        if rng.random() < 0.2:
            tags = sorted(rng.sample(TAG_CHOICES, rng.choice((1, 1, 2))))
        meta: dict[str, Any] = {}
        if m.layer == "staging":
            meta["layer"] = "staging"
        else:
            meta["domain"] = m.group or m.area
            if rng.random() < 0.5:
                meta["team"] = f"{m.group or m.area}-analytics"
        if rng.random() < 0.02:
            meta["dagfactory"] = {"runner": "kubernetes"}

        cfg = dict(self.t_model["config"])
        cfg["tags"] = tags
        cfg["meta"] = meta
        cfg["group"] = m.group
        cfg["materialized"] = m.materialized
        cfg["unique_key"] = m.pk if m.materialized == "incremental" else None
        unrendered: dict[str, Any] = {"materialized": m.materialized}
        if m.group:
            unrendered["group"] = m.group
        if meta:
            unrendered["meta"] = meta
        if tags:
            unrendered["tags"] = tags
        if m.materialized == "incremental":
            unrendered["unique_key"] = m.pk
        macros = ["macro.dbt.is_incremental"] if m.materialized == "incremental" else []

        node = dict(self.t_model)
        alias = file_name
        node.update(
            database=self.db,
            schema="main",
            name=m.name,
            package_name=self.project,
            path=path,
            original_file_path=f"models/{path}",
            unique_id=m.uid,
            fqn=[self.project, *folder, m.name] + ([f"v{m.version}"] if m.version else []),
            alias=alias,
            checksum={"name": "sha256", "checksum": _sha256(raw)},
            config=cfg,
            tags=tags,
            description=(
                f"{m.layer.capitalize()} model for {entity.replace('_', ' ')} "
                f"({m.group or m.area or 'staging'}). Built from {len(m.parents)} upstream node(s)."
            ),
            columns=self._columns(m.columns),
            meta=meta,
            group=m.group,
            patch_path=f"{self.project}://{yml}",
            unrendered_config=unrendered,
            created_at=self._tick(),
            relation_name=None if m.ephemeral else self._relation("main", alias),
            raw_code=raw,
            refs=m.refs,
            sources=m.sources,
            depends_on={"macros": macros, "nodes": list(m.parents)},
            version=m.version,
            latest_version=m.latest_version,
        )
        return node

    def _seed(self, i: int) -> str:
        name = f"seed_{NOUNS[i % len(NOUNS)]}_{i:03d}"
        uid = f"seed.{self.project}.{name}"
        node = dict(self.t_seed)
        cfg = dict(self.t_seed["config"])
        types = {"id": "integer", "code": "varchar", "label": "varchar"}
        cfg.update(schema="raw", column_types=types)
        node.update(
            database=self.db,
            schema="main_raw",
            name=name,
            package_name=self.project,
            path=f"{name}.csv",
            original_file_path=f"seeds/{name}.csv",
            unique_id=uid,
            fqn=[self.project, name],
            alias=name,
            checksum={"name": "sha256", "checksum": _sha256(name)},
            config=cfg,
            description=f"Reference data: {name}.",
            patch_path=f"{self.project}://seeds/_seeds.yml",
            unrendered_config={"schema": "raw", "column_types": types},
            created_at=self._tick(),
            relation_name=self._relation("main_raw", name),
        )
        self.nodes[uid] = node
        return uid

    def _source(self, system: str, table: str) -> str:
        uid = f"source.{self.project}.{system}.{table}"
        node = dict(self.t_source)
        cfg = dict(self.t_source["config"])
        cfg["meta"] = {}
        cols = [
            (
                f"{table.rsplit('_', 1)[0].rstrip('s')}_id",
                "integer",
                "Natural key in the source system.",
            ),
            ("loaded_at", "timestamp", "When the loader wrote the row."),
        ]
        node.update(
            database=self.db,
            schema=f"raw_{system}",
            name=table,
            package_name=self.project,
            path=f"models/staging/{system}/_{system}__sources.yml",
            original_file_path=f"models/staging/{system}/_{system}__sources.yml",
            unique_id=uid,
            fqn=[self.project, "staging", system, system, table],
            source_name=system,
            source_description=f"Tables loaded from the {system} system.",
            identifier=table,
            description=f"Raw {table} rows as loaded from {system}.",
            columns=self._columns(cols),
            meta={},
            config=cfg,
            unrendered_config={"loaded_at_field": None, "loaded_at_query": None, "tags": []},
            relation_name=self._relation(f"raw_{system}", table),
            created_at=self._tick(),
            unrendered_schema=f"raw_{system}",
        )
        self.sources[uid] = node
        return uid

    def _snapshot(self, i: int, base: str) -> str:
        base_name = self.nodes[base]["name"] if base in self.nodes else self.by_uid[base].name
        name = f"snap_{i:03d}_{base_name}"[:60]
        uid = f"snapshot.{self.project}.{name}"
        raw = (
            "\n{{\n    config(\n        unique_key='id',\n        strategy='check',\n"
            f"        check_cols='all',\n    )\n}}}}\n\nselect * from {{{{ ref('{base_name}') }}}}\n\n"
        )
        node = dict(self.t_snapshot)
        node.update(
            database=self.db,
            schema="main_snapshots",
            name=name,
            package_name=self.project,
            path=f"{name}.sql",
            original_file_path=f"snapshots/{name}.sql",
            unique_id=uid,
            fqn=[self.project, name, name],
            alias=name,
            checksum={"name": "sha256", "checksum": _sha256(raw)},
            description=f"Type-2 history of {base_name}.",
            columns=self._columns([("id", "integer", "Key the snapshot tracks.")]),
            patch_path=f"{self.project}://snapshots/_snapshots.yml",
            created_at=self._tick(),
            relation_name=self._relation("main_snapshots", name),
            raw_code=raw,
            refs=[_ref(base_name)],
            depends_on={"macros": [], "nodes": [base]},
        )
        self.nodes[uid] = node
        return uid

    # -------------------------------------------------------------------- tests
    def _test_node(
        self,
        test: str,
        full_name: str,
        identifier: str,
        attached: str | None,
        parents: list[str],
        refs: list[dict[str, Any]],
        sources: list[list[str]],
        kwargs: dict[str, Any],
        column: str,
        file_key: str,
        yml: str,
        fqn_prefix: list[str],
        group: str | None,
    ) -> str:
        tpl = self.t_tests[test]
        uid = f"test.{self.project}.{full_name}.{_md5(full_name + (attached or ''))[-10:]}"
        alias = full_name if len(full_name) < 64 else f"{identifier[:30]}_{_md5(full_name)}"
        node = dict(tpl)
        node.update(
            database=self.db,
            name=full_name,
            package_name=self.project,
            path=f"{alias}.sql",
            original_file_path=yml,
            unique_id=uid,
            fqn=[*fqn_prefix, full_name],
            alias=alias,
            group=group,
            created_at=self._tick(),
            refs=refs,
            sources=sources,
            depends_on={"macros": tpl["depends_on"]["macros"], "nodes": parents},
            column_name=column,
            file_key_name=file_key,
            attached_node=attached,
            test_metadata={"name": test, "kwargs": kwargs, "namespace": None},
        )
        self.nodes[uid] = node
        self.test_ids.append(uid)
        return uid

    def _simple_test(
        self, test, target, column, file_key, yml, fqn_prefix, group=None, values=None
    ):
        name = self.nodes[target]["name"] if target in self.nodes else target.split(".")[-1]
        kwargs: dict[str, Any] = {"column_name": column}
        full = f"{test}_{name}_{column}"
        if values:
            kwargs["values"] = values
            full += "__" + "__".join(values)
        kwargs["model"] = f"{{{{ get_where_subquery(ref('{name}')) }}}}"
        self._test_node(
            test,
            full,
            f"{test}_{name}",
            target,
            [target],
            [_ref(name)],
            [],
            kwargs,
            column,
            file_key,
            yml,
            fqn_prefix,
            group,
        )

    def _model_tests(self, m: _Model) -> None:
        rng = self.rng
        node = self.nodes[m.uid]
        yml = node["patch_path"].split("://", 1)[1]
        folder = node["fqn"][1:3]
        prefix = [self.project, *folder]
        tname = m.name if m.version is None else f"{m.name}_v{m.version}"
        ref = _ref(m.name, m.version)
        where = f"{{{{ get_where_subquery(ref('{m.name}'{f', v={m.version}' if m.version else ''})) }}}}"
        file_key = f"models.{m.name}"

        def add(test, column, extra=None, parents=None, refs=None, suffix=""):
            kwargs: dict[str, Any] = {"column_name": column}
            if extra:
                kwargs.update(extra)
            kwargs["model"] = where
            full = f"{test}_{tname}_{column}{suffix}"
            self._test_node(
                test,
                full,
                f"{test}_{tname}",
                m.uid,
                parents or [m.uid],
                refs or [ref],
                [],
                kwargs,
                column,
                file_key,
                yml,
                prefix,
                m.group,
            )

        r = rng.random()
        add("not_null", m.pk)
        if r >= 0.1:
            add("unique", m.pk)
        if r < 0.12:
            col = next((c[0] for c in m.columns if c[0] == "status"), None)
            if col:
                add(
                    "accepted_values",
                    col,
                    {"values": STATUS_VALUES},
                    suffix="__" + "__".join(STATUS_VALUES),
                )
        if rng.random() < 0.05:
            cands = [
                self.by_uid[p]
                for p in m.parents
                if p in self.by_uid and not self.by_uid[p].ephemeral
            ]
            if cands:
                p = cands[rng.randrange(len(cands))]
                pv = f", v={p.version}" if p.version else ""
                to = f"ref('{p.name}'{pv})"
                suffix_to = f"ref_{p.name}_v_{p.version}_" if p.version else f"ref_{p.name}_"
                add(
                    "relationships",
                    p.pk,
                    {"to": to, "field": p.pk},
                    parents=[p.uid, m.uid],
                    refs=[_ref(p.name, p.version), ref],
                    suffix=f"__{p.pk}__{suffix_to}",
                )

    def _source_test(self, sid: str) -> None:
        src = self.sources[sid]
        col = next(iter(src["columns"]))
        system, table = src["source_name"], src["name"]
        full = f"source_not_null_{system}_{table}_{col}"
        kwargs = {
            "column_name": col,
            "model": f"{{{{ get_where_subquery(source('{system}', '{table}')) }}}}",
        }
        self._test_node(
            "not_null",
            full,
            f"source_not_null_{system}_{table}",
            None,
            [sid],
            [],
            [[system, table]],
            kwargs,
            col,
            f"sources.{system}",
            src["original_file_path"],
            [self.project, "staging", system],
            None,
        )

    def _singular_test(self, i: int) -> None:
        rng = self.rng
        if self.layout == "layered":  # two models of different folders
            grouped = [m for m in self.models if m.layer != "staging" and not m.ephemeral]
            a = grouped[rng.randrange(len(grouped))]
            others = [m for m in grouped if (m.layer, m.area) != (a.layer, a.area)] or grouped
        else:
            grouped = [m for m in self.models if m.group and not m.ephemeral]
            a = grouped[rng.randrange(len(grouped))]
            others = [m for m in grouped if m.group != a.group] or grouped
        b = others[rng.randrange(len(others))]
        name = f"assert_{a.name}_matches_{b.name}"[:80].rstrip("_")
        raw = (
            f"-- Singular test {i}: row counts of two models from different groups agree.\n"
            f"select 1 from (select count(*) as n from {{{{ ref('{a.name}') }}}}) as a\n"
            f"cross join (select count(*) as n from {{{{ ref('{b.name}') }}}}) as b\n"
            "where a.n < 0 and b.n < 0\n"
        )
        uid = f"test.{self.project}.{name}"
        node = dict(self.t_singular)
        node.update(
            database=self.db,
            name=name,
            package_name=self.project,
            path=f"{name}.sql",
            original_file_path=f"tests/{name}.sql",
            unique_id=uid,
            fqn=[self.project, name],
            alias=name,
            checksum={"name": "sha256", "checksum": _sha256(raw)},
            created_at=self._tick(),
            raw_code=raw,
            refs=[_ref(a.name, a.version), _ref(b.name, b.version)],
            depends_on={"macros": [], "nodes": list(dict.fromkeys([a.uid, b.uid]))},
        )
        self.nodes[uid] = node
        self.test_ids.append(uid)

    def _exposure(self, i: int) -> None:
        rng = self.rng
        marts = [m for m in self.models if m.layer == "marts"]
        picks = list(dict.fromkeys(marts[rng.randrange(len(marts))].uid for _ in range(3)))
        name = f"dashboard_{i:03d}"
        uid = f"exposure.{self.project}.{name}"
        node = dict(self.t_exposure)
        group = self.by_uid[picks[0]].group or self.by_uid[picks[0]].area
        folder = ["marts", group] if self.layout == "layered" else [group, "marts"]
        yml = f"{'/'.join(folder)}/_{folder[0]}__{folder[1]}.yml"
        node.update(
            name=name,
            package_name=self.project,
            path=yml,
            original_file_path=f"models/{yml}",
            unique_id=uid,
            fqn=[self.project, *folder, name],
            owner={"email": f"{group}@example.com", "name": f"{group.title()} team"},
            description=f"Dashboard {i} fed by {len(picks)} marts.",
            label=f"Dashboard {i}",
            depends_on={"macros": [], "nodes": picks},
            refs=[_ref(self.by_uid[p].name, self.by_uid[p].version) for p in picks],
            created_at=self._tick(),
        )
        self.exposures[uid] = node

    def _disabled_model(self, i: int, group_names: list[str]) -> None:
        rng = self.rng
        gname = group_names[rng.randrange(len(group_names))]
        name = f"legacy_{gname}__{NOUNS[i % len(NOUNS)]}_{i:04d}"
        uid = f"model.{self.project}.{name}"
        parent = self.models[rng.randrange(len(self.models))]
        m = _Model(uid, name, "marts", None if self.layout == "layered" else gname)
        if self.layout == "layered":
            m.area = gname
        m.refs = [_ref(parent.name)]
        m.parents = []
        node = self._model_node(m)
        node["config"] = dict(node["config"], enabled=False)
        node["unrendered_config"] = dict(node["unrendered_config"], enabled=False)
        node["depends_on"] = {
            "macros": [],
            "nodes": [],
        }  # dbt does not resolve refs of disabled nodes
        self.disabled[uid] = [node]

    # ----------------------------------------------------------------- assemble
    def _assemble(self, group_names: list[str]) -> dict[str, Any]:
        tpl = self.tpl
        proj = self.project
        rng = self.rng
        meta = dict(tpl["metadata"])
        meta.update(
            generated_at=GENERATED_AT,
            invocation_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            invocation_started_at=STARTED_AT,
            env={},
            project_name=proj,
            project_id=_md5(proj),
            user_id=None,
            send_anonymous_usage_stats=False,
            run_started_at=RUN_STARTED_AT,
        )
        self.invocation_id = meta["invocation_id"]

        # Order nodes like dbt: models, snapshots, seeds, then tests.
        order = {"model": 0, "snapshot": 1, "seed": 2, "test": 3}
        nodes = dict(
            sorted(self.nodes.items(), key=lambda kv: order.get(kv[1]["resource_type"], 9))
        )

        macros = {}
        for uid, mac in tpl["macros"].items():
            if mac["package_name"] == TEMPLATE_PROJECT:
                new_uid = uid.replace(f"macro.{TEMPLATE_PROJECT}.", f"macro.{proj}.", 1)
                mac = dict(mac, package_name=proj, unique_id=new_uid)
                uid = new_uid
            macros[uid] = mac

        groups = {}
        for gname in group_names:
            gid = f"group.{proj}.{gname}"
            grp = dict(self.t_group)
            grp.update(
                name=gname,
                package_name=proj,
                path="_groups.yml",
                original_file_path="models/_groups.yml",
                unique_id=gid,
                owner={
                    "email": f"{gname}@example.com",
                    "name": f"{gname.replace('_', ' ').title()} team",
                },
            )
            groups[gid] = grp

        parent_map: dict[str, list[str]] = {}
        child_map: dict[str, list[str]] = {}
        for coll in (nodes, self.sources, self.exposures):
            for uid in coll:
                child_map[uid] = []
        for coll in (nodes, self.sources, self.exposures):
            for uid, node in coll.items():
                deps = node.get("depends_on", {}).get("nodes", [])
                parent_map[uid] = sorted(deps)
                for p in deps:
                    child_map[p].append(uid)
        for uid in child_map:
            child_map[uid].sort()

        group_map: dict[str, list[str]] = {}
        for uid, node in nodes.items():
            if node.get("group"):
                group_map.setdefault(node["group"], []).append(uid)

        return {
            "metadata": meta,
            "nodes": nodes,
            "sources": self.sources,
            "macros": macros,
            "docs": tpl["docs"],
            "exposures": self.exposures,
            "metrics": {},
            "groups": groups,
            "selectors": {},
            "disabled": self.disabled,
            "parent_map": parent_map,
            "child_map": child_map,
            "group_map": group_map,
            "saved_queries": {},
            "semantic_models": {},
            "unit_tests": {},
            "functions": {},
        }

    # -------------------------------------------------------------- run results
    def run_results(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """A run_results.json (v6) for `dbt build` of every executable node."""
        rng = random.Random(f"{self.seed}-run-results")
        nodes = manifest["nodes"]
        # Topological order (Kahn, ties by unique_id) over executable nodes.
        runnable = [
            uid
            for uid, n in nodes.items()
            if n["resource_type"] in ("model", "seed", "snapshot", "test")
            and n["config"].get("materialized") != "ephemeral"
        ]
        indeg = {uid: 0 for uid in runnable}
        children: dict[str, list[str]] = {uid: [] for uid in runnable}
        for uid in runnable:
            for p in _runnable_parents(uid, nodes):
                if p in indeg:
                    indeg[uid] += 1
                    children[p].append(uid)
        ready = sorted(uid for uid, d in indeg.items() if d == 0)
        ordered: list[str] = []
        while ready:
            nxt: list[str] = []
            for uid in ready:
                ordered.append(uid)
                for c in children[uid]:
                    indeg[c] -= 1
                    if indeg[c] == 0:
                        nxt.append(c)
            ready = sorted(nxt)

        lookup = {**manifest["sources"], **nodes}
        clock = BASE_EPOCH + 5.0
        threads = 4
        results = []
        for i, uid in enumerate(ordered):
            n = nodes[uid]
            rtype = n["resource_type"]
            if rtype == "test":
                exe = round(rng.lognormvariate(math.log(0.8), 0.8), 6)
            elif rtype == "model" and rng.random() < 0.01:
                exe = round(rng.uniform(900.0, 3600.0), 6)
            elif rtype == "seed":
                exe = round(rng.uniform(0.05, 2.0), 6)
            else:
                exe = round(min(rng.lognormvariate(math.log(12.0), 1.1), 890.0), 6)
            compile_s = round(rng.uniform(0.002, 0.02), 6)
            t0 = clock
            t1 = t0 + compile_s
            t2 = t1 + exe
            clock += (compile_s + exe) / threads
            is_test = rtype == "test"
            results.append(
                {
                    "status": "pass" if is_test else "success",
                    "timing": [
                        {"name": "compile", "started_at": _iso(t0), "completed_at": _iso(t1)},
                        {"name": "execute", "started_at": _iso(t1), "completed_at": _iso(t2)},
                    ],
                    "thread_id": f"Thread-{i % threads + 1} (worker)",
                    "execution_time": round(compile_s + exe, 6),
                    "adapter_response": {"_message": "OK"},
                    "message": None if is_test else "OK",
                    "failures": 0 if is_test else None,
                    "unique_id": uid,
                    "compiled": True,
                    "compiled_code": _compile(n, lookup, self.db),
                    "relation_name": n.get("relation_name") if not is_test else None,
                    "batch_results": None,
                }
            )
        return {
            "metadata": {
                "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
                "dbt_version": manifest["metadata"]["dbt_version"],
                "generated_at": _iso(clock),
                "invocation_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "invocation_started_at": STARTED_AT,
                "env": {},
            },
            "results": results,
            "elapsed_time": round(clock - BASE_EPOCH, 6),
            "args": dict(RUN_ARGS, threads=threads),
        }


def _split(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights``, each part at least 1."""
    whole = sum(weights)
    sizes = [max(1, int(total * w / whole)) for w in weights]
    while sum(sizes) > total:
        sizes[sizes.index(max(sizes))] -= 1
    i = 0
    while sum(sizes) < total:
        sizes[i % len(sizes)] += 1
        i += 1
    return sizes


def _runnable_parents(uid: str, nodes: dict[str, Any]) -> list[str]:
    """Parents, looking through ephemeral models the way dbt's job queue does."""
    out: list[str] = []
    stack = list(nodes[uid]["depends_on"].get("nodes", []))
    seen: set[str] = set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        n = nodes.get(p)
        if n is not None and n["config"].get("materialized") == "ephemeral":
            stack.extend(n["depends_on"].get("nodes", []))
        else:
            out.append(p)
    return out


def _iso(epoch: float) -> str:
    secs = int(epoch)
    micros = round((epoch - secs) * 1_000_000)
    if micros >= 1_000_000:
        secs, micros = secs + 1, micros - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{micros:06d}Z"


def _compile(node: dict[str, Any], lookup: dict[str, Any], db: str) -> str:
    """Cheap stand-in for compiled SQL: refs and sources replaced by relation names."""
    code = node.get("raw_code") or ""
    # Drop config() calls and the incremental filter (as a full-refresh build would).
    code = "\n".join(line for line in code.split("\n") if not line.startswith("{{ config("))
    start = code.find("{% if is_incremental() %}")
    if start >= 0:
        end = code.find("{% endif %}", start)
        code = code[:start] + code[end + len("{% endif %}") :]
    if node["resource_type"] == "test" and node.get("test_metadata"):
        col = node.get("column_name")
        parent = lookup.get(node["depends_on"]["nodes"][-1], {})
        rel = parent.get("relation_name") or "__dbt__cte__"
        return f"\n\n\n\nselect {col}\nfrom {rel}\nwhere {col} is null\n\n\n"
    for ref in node.get("refs", []):
        name = ref["name"]
        target = f'"{db}"."main"."{name}"'
        code = code.replace(f"{{{{ ref('{name}') }}}}", target)
        if ref.get("version") is not None:
            code = code.replace(
                f"{{{{ ref('{name}', v={ref['version']}) }}}}",
                f'"{db}"."main"."{name}_v{ref["version"]}"',
            )
    return code


def dumps(obj: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(obj)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def build_manifest(
    models: int,
    seed: int = 0,
    groups: int | None = None,
    project: str = "synth",
    template: Path = DEFAULT_TEMPLATE,
    layout: str = "groups",
) -> dict[str, Any]:
    """Return the synthetic manifest as a dict (see the module docstring)."""
    return Synth(models, seed, groups, project, template, layout).build()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, required=True, help="number of enabled model nodes")
    ap.add_argument("--out", type=Path, required=True, help="manifest.json to write")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument(
        "--groups",
        type=int,
        default=None,
        help="dbt groups (default max(5, N // 100)); with --layout layered: areas (max(3, N // 250))",
    )
    ap.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="groups",
        help="groups: dbt groups, group folders (default); layered: staging/intermediate/marts "
        "folders, no dbt groups",
    )
    ap.add_argument(
        "--run-results", type=Path, default=None, help="also write a run_results.json here"
    )
    ap.add_argument("--project", default="synth", help="dbt project name (default synth)")
    ap.add_argument(
        "--template",
        type=Path,
        default=DEFAULT_TEMPLATE,
        help="real dbt manifest whose node shapes are copied (default shop/manifest.json)",
    )
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    gc.disable()  # millions of small dicts, no cycles: the collector only costs time
    synth = Synth(args.models, args.seed, args.groups, args.project, args.template, args.layout)
    manifest = synth.build()
    data = dumps(manifest)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    msg = f"wrote {args.out}: {args.models} models, {len(manifest['nodes'])} nodes, {len(data):,} bytes"
    if args.run_results:
        rr = dumps(synth.run_results(manifest))
        args.run_results.parent.mkdir(parents=True, exist_ok=True)
        args.run_results.write_bytes(rr)
        msg += f"; {args.run_results}: {len(rr):,} bytes"
    print(f"{msg} in {time.perf_counter() - t0:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
