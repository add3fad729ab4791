"""Every real manifest in ../shared/corpus builds, and real Airflow loads the result.

Manifests older than schema v4 (dbt < 1.0) end with the clear "too old" error, and one
whose models reference each other in a circle ends with the cycle error dbt would give.
Projects whose folders depend on each other both ways are built with
``group_cycles: merge``; with the default they must end with the readable cycle error.
Each build serializes exactly like its plain-list-schedule twin (see test_schedule_shape.py).
"""

from __future__ import annotations

import csv

import pytest
from helpers import load_dagbag, plain_list_twin, serialized_dags
from tests_paths import CORPUS

from dagfactory import GraphError, GroupCycleError, UnsupportedSchemaError, build, load_config

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

#: Corpus entries that must fail, and how: real projects, real reasons.
EXPECTED_ERRORS = {
    "DITP-pilotage__pilote-2": (GraphError, r"the dbt graph has a cycle"),
}


def _corpus() -> list:
    index = CORPUS / "INDEX.tsv"
    if not index.is_file():
        return [
            pytest.param(
                None, id="no-corpus", marks=pytest.mark.skip(reason="../shared/corpus is absent")
            )
        ]
    with index.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [pytest.param(row, id=row["dir"]) for row in rows]


@pytest.mark.parametrize("entry", _corpus())
def test_corpus_manifest_builds_and_loads_in_airflow(entry, tmp_path):
    manifest = CORPUS / entry["dir"] / "manifest.json"
    schema = int(entry["schema_version"].lstrip("v"))
    out = tmp_path / "dags"
    if schema < 4:
        with pytest.raises(UnsupportedSchemaError, match=rf"schema v{schema} .* too old"):
            build(manifest, out)
        assert not out.exists()
        return
    if entry["dir"] in EXPECTED_ERRORS:
        error, message = EXPECTED_ERRORS[entry["dir"]]
        with pytest.raises(error, match=message):
            build(manifest, out)
        return
    try:
        result = build(manifest, out)
    except GroupCycleError as exc:
        assert "groups depend on each other in a cycle" in str(exc)
        result = build(manifest, out, load_config(None, {"group_cycles": "merge"}))
    dagbag = load_dagbag(out)
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dags) == sorted(dag.dag_id for dag in result.dags)
    assert sum(len(dag.tasks) for dag in dagbag.dags.values()) == result.task_count
    assert serialized_dags(out) == serialized_dags(plain_list_twin(out, tmp_path / "twin"))
