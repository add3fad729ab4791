"""Where each Airflow name lives, per Airflow major version: the one table to edit.

Renderers write generated code against the Airflow 3 names (``Call("Asset", ...)``,
``_Import("airflow.sdk", "DAG")``); :func:`localize` and :func:`locate` turn those into the
names, imports and keyword arguments of the target version (``airflow_version`` in the
config). A name missing from :data:`SYMBOLS` is emitted as written, so helpers that are the
same in every version (``datetime.timedelta``, ``k8s.V1Pod``) need no entry.

This module only knows strings: the generator never imports Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dagfactory._pysrc import Call

__all__ = [
    "HASH_WALKS_SCHEDULE_ASSETS",
    "HELPER_IMPORTS",
    "KWARG_RENAMES",
    "NATIVE",
    "SYMBOLS",
    "VERSIONS",
    "helper_imports",
    "localize",
    "locate",
]

VERSIONS = ("2", "3")
#: the version renderers write for: localizing to it changes nothing
NATIVE = "3"

_STANDARD = "airflow.providers.standard"
_POD = ("airflow.providers.cncf.kubernetes.operators.pod", "KubernetesPodOperator")

#: symbol (the Airflow 3 name used by renderers) -> version -> (module, name)
SYMBOLS: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "DAG": {
        "3": ("airflow.sdk", "DAG"),
        "2": ("airflow.models.dag", "DAG"),
    },
    "Asset": {
        "3": ("airflow.sdk", "Asset"),
        "2": ("airflow.datasets", "Dataset"),
    },
    "AssetOrTimeSchedule": {
        "3": ("airflow.sdk", "AssetOrTimeSchedule"),
        "2": ("airflow.timetables.datasets", "DatasetOrTimeSchedule"),
    },
    "CronTriggerTimetable": {
        "3": ("airflow.sdk", "CronTriggerTimetable"),
        "2": ("airflow.timetables.trigger", "CronTriggerTimetable"),
    },
    "BashOperator": {
        "3": (f"{_STANDARD}.operators.bash", "BashOperator"),
        "2": ("airflow.operators.bash", "BashOperator"),
    },
    "ExternalTaskSensor": {
        "3": (f"{_STANDARD}.sensors.external_task", "ExternalTaskSensor"),
        "2": ("airflow.sensors.external_task", "ExternalTaskSensor"),
    },
    "KubernetesPodOperator": {"3": _POD, "2": _POD},
}

#: constructor names (their first dotted part) that generated code uses beside the table's
#: symbols, and their import: the same in every version (``_k8s`` writes ``k8s.V1Pod(...)``)
HELPER_IMPORTS: Mapping[str, tuple[str, str]] = {
    "k8s": ("kubernetes.client", "models as k8s"),
    "Secret": ("airflow.providers.cncf.kubernetes.secret", "Secret"),
}

#: versions whose DAG hash walks every schedule asset (Airflow 3: ``json.dumps`` per asset) on
#: each dependency call; their asset schedules are written as a tuple that caches its hash.
#: Airflow 2.10 hashes a Dataset by its URI and the schedule as a summary string.
HASH_WALKS_SCHEDULE_ASSETS = frozenset({"3"})

#: (symbol, Airflow 3 keyword) -> version -> keyword in that version
KWARG_RENAMES: Mapping[tuple[str, str], Mapping[str, str]] = {
    ("AssetOrTimeSchedule", "assets"): {"2": "datasets"},
}


def helper_imports(names: Iterable[str]) -> set[tuple[str, str]]:
    """The ``(module, name)`` imports for the :data:`HELPER_IMPORTS` among constructor names."""
    heads = {name.split(".", 1)[0] for name in names}
    return {HELPER_IMPORTS[head] for head in heads if head in HELPER_IMPORTS}


def locate(symbol: str, version: str, default_module: str | None = None) -> tuple[str, str]:
    """``(module, name)`` to import ``symbol`` from in Airflow ``version``.

    Unknown symbols come back unchanged with ``default_module`` (the module the caller
    would import from in Airflow 3), so a renderer can route every import through here.
    """
    places = SYMBOLS.get(symbol)
    if places is None:
        if default_module is None:
            raise KeyError(f"{symbol!r} is not in the Airflow name table")
        return default_module, symbol
    if version not in places:
        raise KeyError(f"{symbol!r} has no location for Airflow {version}")
    return places[version]


def localize(value: Any, version: str, used: set[str]) -> Any:
    """``value`` with every ``Call`` of a table symbol renamed for ``version``.

    Adds the symbols met to ``used`` so the caller can import them. Keyword arguments that
    changed name between versions are renamed too (``assets=`` -> ``datasets=``).
    """
    if isinstance(value, Call):
        args = tuple(localize(arg, version, used) for arg in value.args)
        func = value.func
        kwargs = []
        for name, arg in value.kwargs:
            renamed = KWARG_RENAMES.get((func, name), {}).get(version, name)
            kwargs.append((renamed, localize(arg, version, used)))
        if func in SYMBOLS:
            used.add(func)
            func = locate(func, version)[1]
        return Call(func, args, tuple(kwargs))
    if isinstance(value, Mapping):
        return {key: localize(item, version, used) for key, item in value.items()}
    if isinstance(value, list):
        return [localize(item, version, used) for item in value]
    if isinstance(value, tuple):
        return tuple(localize(item, version, used) for item in value)
    return value
