"""``dagfactory --help`` pays only for the command line: importing the CLI (and the package's
public names) loads no pipeline stage and none of networkx, jinja2 or YAML. Each check runs
in a fresh interpreter, so the modules it sees are only those the import itself loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: modules a pipeline command loads, and ``--help`` must not
PIPELINE = (
    "dagfactory.manifest",
    "dagfactory.graph",
    "dagfactory.grouping",
    "dagfactory.routing",
    "dagfactory.specs",
    "dagfactory.plan",
    "dagfactory.render",
    "dagfactory.pipeline",
    "dagfactory.publish",
)
HEAVY = ("networkx", "jinja2", "yaml", "orjson", "boto3")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_cli_loads_no_pipeline_module_and_no_heavy_library():
    loaded = _loaded_after("import dagfactory.cli")
    assert loaded & {*PIPELINE, *HEAVY} == set()


def test_help_runs_without_loading_the_pipeline():
    code = (
        "import sys\n"
        "from dagfactory.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], prog_name='dagfactory')\n"
        "except SystemExit:\n"
        "    pass"
    )
    loaded = _loaded_after(code)
    assert loaded & {*PIPELINE, *HEAVY} == set()


def test_the_public_api_loads_the_pipeline_on_first_use():
    assert "dagfactory.pipeline" not in _loaded_after("import dagfactory")
    assert "dagfactory.pipeline" in _loaded_after("import dagfactory; dagfactory.build")


def test_a_build_of_an_acyclic_project_never_imports_networkx(tmp_path):
    """networkx costs ~0.15 s to import: only a graph with a cycle, to name it, loads it."""
    shop = str(Path(__file__).resolve().parents[2] / "sample_manifests/shop/manifest.json")
    argv = ["build", "--manifest", shop, "--out", str(tmp_path / "dags")]
    code = (
        "from dagfactory.cli import cli\n"
        "try:\n"
        f"    cli.main({argv!r}, prog_name='dagfactory')\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code"
    )
    loaded = _loaded_after(code)
    assert "dagfactory.graph" in loaded and "jinja2" in loaded
    assert "networkx" not in loaded
