"""dagfactory: dbt manifest to static Airflow DAG files."""

from dagfactory._version import __version__

__all__ = ["__version__"]
