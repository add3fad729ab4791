"""dagfactory: a dbt manifest becomes small, static Airflow DAG files, one per model group.

The public API is what this module exports; everything else is an implementation detail.
The errors are imported here; the pipeline (``build``, ``generate``, ``BuildResult``) and the
config (``Config``, ``load_config``) are imported the first time they are used, so
``dagfactory --help`` and ``import dagfactory.errors`` never load the graph library, jinja2
or YAML.
"""

import typing as _typing

from dagfactory._version import __version__
from dagfactory.errors import (
    ConfigError,
    DagFactoryError,
    GraphError,
    GroupCycleError,
    ManifestError,
    OutputError,
    PublishError,
    RenderError,
    RoutingError,
    UnsupportedSchemaError,
)

if _typing.TYPE_CHECKING:
    from dagfactory.config import Config, load_config
    from dagfactory.pipeline import BuildResult, build, generate

__all__ = [
    "BuildResult",
    "Config",
    "ConfigError",
    "DagFactoryError",
    "GraphError",
    "GroupCycleError",
    "ManifestError",
    "OutputError",
    "PublishError",
    "RenderError",
    "RoutingError",
    "UnsupportedSchemaError",
    "__version__",
    "build",
    "generate",
    "load_config",
]

#: public names imported on first use, and the module each comes from
_LAZY = {
    "BuildResult": "dagfactory.pipeline",
    "build": "dagfactory.pipeline",
    "generate": "dagfactory.pipeline",
    "Config": "dagfactory.config",
    "load_config": "dagfactory.config",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dagfactory' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
