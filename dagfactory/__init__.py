"""dagfactory: a dbt manifest becomes small, static Airflow DAG files, one per model group.

The public API is what this module exports; everything else is an implementation detail.
"""

from dagfactory._version import __version__
from dagfactory.config import Config, load_config
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
