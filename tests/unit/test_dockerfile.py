"""The Dockerfile, read as text: the rules a CI checkout owned by any uid depends on.

There is no Docker daemon where the tests run, so the image is never built here. These are the
checked rules instead; ``tests/integration/test_install.py`` runs hadolint and the wheel stage's
own build command.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
tomllib = pytest.importorskip("tomllib")  # Python 3.11+
#: the AWS settings botocore reads from the environment; the documented run forwards each
AWS_SETTINGS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
)


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, comments dropped and continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for word, rest in _instructions():
        if word == "FROM":
            stages.append([])
        stages[-1].append((word, rest))
    return stages


def _documented_run() -> list[str]:
    """The `docker run` the header comment documents, as shell words."""
    lines = [ln[1:].strip() for ln in DOCKERFILE.read_text().splitlines() if ln.startswith("#")]
    text = " ".join(lines).replace("\\ ", " ")
    start = text.index("docker run")
    end = text.index("s3://bucket/dags/", start) + len("s3://bucket/dags/")
    return shlex.split(text[start:end])


def test_the_final_stage_runs_as_a_numeric_non_root_user():
    users = [rest for word, rest in _stages()[-1] if word == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and uid != "0", users[-1]
    assert gid in ("", "0"), "group 0 lets an arbitrary uid read what the image installed"


def test_home_is_a_folder_every_uid_can_write():
    envs = " ".join(rest for word, rest in _stages()[-1] if word == "ENV")
    assert re.search(r"\bHOME=/tmp\b", envs), envs


@pytest.mark.parametrize("setting", AWS_SETTINGS)
def test_the_documented_run_forwards_each_aws_setting(setting):
    words = _documented_run()
    forwarded = {words[i + 1] for i, w in enumerate(words[:-1]) if w == "-e"}
    assert setting in forwarded


def test_the_documented_run_uses_the_callers_uid_and_gid():
    words = _documented_run()
    assert words[words.index("--user") + 1] == "$(id -u):$(id -g)"


def test_every_pip_install_is_pinned_or_the_local_wheel():
    for word, rest in _instructions():
        if word != "RUN" or "pip install" not in rest:
            continue
        assert "--no-cache-dir" in rest, rest
        for command in rest.split("&&"):
            words = shlex.split(command)
            if words[:2] != ["pip", "install"]:
                continue
            packages = [w for w in words[2:] if not w.startswith("-")]
            for package in packages:
                assert "==" in package or package.startswith("$(ls /tmp/"), package


def test_the_build_stage_copies_everything_the_wheel_is_made_of():
    build_config = tomllib.loads((REPO / "pyproject.toml").read_text())
    wheel = build_config["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {"pyproject.toml", build_config["project"]["readme"], *wheel["packages"]}
    needed |= set(wheel.get("force-include", {}))
    copied: set[str] = set()
    for word, rest in _stages()[0]:
        if word == "COPY":
            copied |= set(rest.split()[:-1])
    assert needed <= copied, needed - copied


def test_the_final_stage_installs_the_s3_extra_and_nothing_of_airflow_or_dbt():
    runs = " ".join(rest for word, rest in _stages()[-1] if word == "RUN")
    assert "[s3]" in runs
    assert "airflow" not in runs and "dbt-core" not in runs
