"""The wheel ships the templates and works without the source checkout."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile

import pytest
from tests_paths import REPO, SHOP

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    uv = REPO / ".venv" / "bin" / "uv"
    command = (
        [str(uv), "build", "--wheel", "--out-dir", str(dist), str(REPO)]
        if uv.exists()
        else [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(REPO)]
    )
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    (path,) = dist.glob("dagfactory_dbt-*.whl")
    return path


def test_the_wheel_holds_the_templates_and_the_console_script(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "dagfactory = dagfactory.cli:main" in archive.read(entry_points).decode()
    assert "dagfactory/templates/dag.py.j2" in names


def test_an_installed_wheel_builds_the_sample(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    uv = REPO / ".venv" / "bin" / "uv"
    if not uv.exists():
        pytest.skip("needs uv from the test virtualenv")
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(uv), "pip", "install", "--quiet", "--python", str(python), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    out = tmp_path / "dags"
    result = subprocess.run(
        [
            str(env_dir / "bin" / "dagfactory"),
            "build",
            "--manifest",
            str(SHOP / "manifest.json"),
            "--out",
            str(out),
            "--runner",
            "celery",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert list(out.glob("*.py"))
