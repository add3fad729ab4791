"""The package's public API is what ``dagfactory.__all__`` says, no more, no less."""

from __future__ import annotations

import dagfactory


def test_all_names_exist():
    missing = [name for name in dagfactory.__all__ if not hasattr(dagfactory, name)]
    assert missing == []


def test_every_public_name_is_listed():
    public = {name for name in dir(dagfactory) if not name.startswith("_")}  # lazy ones too
    modules = {name for name in public if type(getattr(dagfactory, name)).__name__ == "module"}
    assert public - modules == set(dagfactory.__all__) - {"__version__"}


def test_every_error_is_a_dagfactory_error():
    errors = [getattr(dagfactory, n) for n in dagfactory.__all__ if n.endswith("Error")]
    assert all(issubclass(e, dagfactory.DagFactoryError) for e in errors)
