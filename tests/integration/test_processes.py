"""The generator as a process: ``python -m dagfactory`` works, and building needs no Airflow
and no boto3 (dbt CI images rarely have either). Each test starts a fresh interpreter, so the
modules it sees are only those the code under test imports."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_python_dash_m_works(shop_manifest, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dagfactory", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "dagfactory" in result.stdout


def test_generating_never_imports_airflow(shop_manifest, tmp_path):
    # Any attempt to import airflow fails: dbt CI images rarely have it.
    code = (
        "import sys; sys.modules['airflow'] = None\n"
        "from dagfactory.cli import main\n"
        "main(sys.argv[1:])"
    )
    result = _run(code, "build", "--manifest", str(shop_manifest), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "out").glob("*.py"))


def test_publish_module_does_not_import_boto3():
    code = "import sys, dagfactory.publish; sys.exit('boto3' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
