"""The CI recipes in docs/ci/ run as written: every shell step, in order, read from the YAML.

Each recipe runs twice against a copy of the sample project (the repository of a dbt project):
first the main-branch job (build, check, push to a real ``moto_server`` on 127.0.0.1), then the
pull-request job (build, check, preview against what that push left, post the preview). The
"post" goes to a small HTTP server standing in for the GitHub or GitLab API; it records what it
receives. ``dagfactory`` is installed by the recipe's own install step into a fresh virtualenv,
from this checkout instead of the recipe's git URL (the only recipe value replaced, with the
bucket and the CI system's own variables).

Steps that are not shell (GitHub ``uses:`` actions) are not run; the test names each one and
what stands in for it, so a new action in a recipe fails here until someone says what it needs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.s3server]

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "docs" / "ci"
SHOP = REPO / "sample_manifests" / "shop"
STEP_TIMEOUT_S = 900
PR_NUMBER = "7"
#: GitHub actions the recipes use, and what this test does in their place
ACTIONS_STOOD_IN_FOR = {
    "actions/checkout": "the sample project is copied to the job's folder",
    "actions/setup-python": "a fresh virtualenv is first on PATH",
    "aws-actions/configure-aws-credentials": "AWS_* point at the local S3 server",
    "actions/upload-artifact": "nothing: the files stay in the job's folder",
}
#: the GitHub expressions the recipe's shell steps read, as the runner would fill them in
GITHUB_EXPRESSIONS = {
    "${{ secrets.GITHUB_TOKEN }}": "test-github-token",
    "${{ github.event.pull_request.number }}": PR_NUMBER,
}


class _Api(BaseHTTPRequestHandler):
    """Stands in for the GitHub and GitLab APIs: records every POST, answers 201."""

    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        self.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Api", (_Api,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def recipe_bin(tmp_path_factory) -> Path:
    """A fresh virtualenv (pip only) whose bin folder the steps find first on PATH."""
    path = tmp_path_factory.mktemp("ci-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    return path / "bin"


@pytest.fixture
def bucket(moto_server_process) -> tuple[str, str]:
    """A new bucket on the local moto_server: (endpoint, bucket name)."""
    import boto3

    name = f"dags-ci-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server_process.endpoint).create_bucket(Bucket=name)
    return moto_server_process.endpoint, name


def _checkout(tmp_path: Path) -> Path:
    """The dbt project's repository as a CI checkout sees it: sources, no build output."""
    job = tmp_path / "checkout"
    shutil.copytree(
        SHOP, job, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb", "manifest.json")
    )
    return job


def _environment(recipe_bin: Path, endpoint: str, bucket: str, extra: Mapping[str, str]):
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = f"{recipe_bin}{os.pathsep}{env['PATH']}"
    env.update(
        {
            "CI": "true",
            "DAGFACTORY_PACKAGE": f"dagfactory-dbt[s3] @ {REPO.as_uri()}",
            "DAGS_BUCKET": f"s3://{bucket}/dags/",
            "AWS_ENDPOINT_URL": endpoint,
            **extra,
        }
    )
    return env


def _run_shell(script: str, *, cwd: Path, env: Mapping[str, str], what: str) -> None:
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
    )
    assert result.returncode == 0, f"{what} failed:\n{script}\n{result.stdout}\n{result.stderr}"


def _needs_check_and_preview(recipe_bin: Path) -> None:
    """The recipes call `dagfactory check` and `preview`; say so plainly if they are missing."""
    for command in ("check", "preview"):
        probe = subprocess.run(
            [str(recipe_bin / "dagfactory"), command, "--help"], capture_output=True, timeout=60
        )
        if probe.returncode != 0:
            pytest.skip(f"this checkout's dagfactory has no `{command}` command yet")


def _bucket_files(endpoint: str, bucket: str) -> list[str]:
    import boto3

    listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


# --------------------------------------------------------------------------- GitHub Actions


def _github_steps(workflow: Mapping[str, Any], job: str) -> Iterator[tuple[str, str, dict]]:
    """(name, shell text, step env) of each `run:` step of a job, in order."""
    for step in workflow["jobs"][job]["steps"]:
        if "uses" in step:
            action = step["uses"].split("@")[0]
            assert action in ACTIONS_STOOD_IN_FOR, f"{job}: say what stands in for {action}"
            continue
        step_env = {}
        for key, value in (step.get("env") or {}).items():
            value = str(value)
            for expression, filled in GITHUB_EXPRESSIONS.items():
                value = value.replace(expression, filled)
            assert "${{" not in value, f"{job}: no value for {value}"
            step_env[key] = value
        assert "${{" not in step["run"], f"{job}: expressions belong in env:, not in run:"
        yield step.get("name", step["run"]), step["run"], step_env


def _run_github_job(workflow, job: str, *, cwd: Path, env: Mapping[str, str]) -> None:
    env = {**env, **{k: str(v) for k, v in workflow["env"].items() if k not in env}}
    for name, script, step_env in _github_steps(workflow, job):
        _run_shell(script, cwd=cwd, env={**env, **step_env}, what=f"{job}: {name}")


def test_the_github_actions_recipe_pushes_on_main_and_posts_a_preview_on_a_pull_request(
    recipe_bin, bucket, api, tmp_path
):
    workflow = yaml.safe_load((RECIPES / "github-actions.yml").read_text())
    endpoint, name = bucket
    api_url, received = api
    summary = tmp_path / "step-summary.md"
    env = _environment(
        recipe_bin,
        endpoint,
        name,
        {
            "GITHUB_API_URL": api_url,
            "GITHUB_REPOSITORY": "example/shop",
            "GITHUB_STEP_SUMMARY": str(summary),
        },
    )
    main = _checkout(tmp_path / "main")
    first_step = next(_github_steps(workflow, "push"))
    _run_shell(first_step[1], cwd=main, env={**workflow["env"], **env}, what="install")
    _needs_check_and_preview(recipe_bin)

    _run_github_job(workflow, "push", cwd=main, env=env)
    pushed = [key for key in _bucket_files(endpoint, name) if key.endswith(".py")]
    built = sorted(p.name for p in (main / "build" / "dags").glob("*.py"))
    assert sorted(Path(key).name for key in pushed) == built and built

    pull_request = _checkout(tmp_path / "pr")
    before = _bucket_files(endpoint, name)
    _run_github_job(workflow, "preview", cwd=pull_request, env=env)
    preview = (pull_request / "preview.md").read_text()
    (post,) = received
    assert post["path"] == f"/repos/example/shop/issues/{PR_NUMBER}/comments"
    assert post["headers"]["Authorization"] == "Bearer test-github-token"
    assert json.loads(post["body"]) == {"body": preview}
    assert preview in summary.read_text()
    assert (pull_request / "preview.html").stat().st_size > 0
    assert _bucket_files(endpoint, name) == before  # a pull request changes nothing there


# --------------------------------------------------------------------------- GitLab CI


def _gitlab_script(pipeline: Mapping[str, Any], job: str) -> list[str]:
    """before_script + script of a job, after its `extends:` (one level, as the recipe uses)."""
    spec = dict(pipeline[job])
    if "extends" in spec:
        spec = {**pipeline[spec.pop("extends")], **spec}
    return [*spec.get("before_script", []), *spec["script"]]


def _run_gitlab_job(pipeline, job: str, *, cwd: Path, env: Mapping[str, str]) -> None:
    env = {**env, **{k: str(v) for k, v in pipeline["variables"].items() if k not in env}}
    # GitLab runs a job's lines in one shell and stops at the first that fails
    for line in _gitlab_script(pipeline, job):
        _run_shell(line, cwd=cwd, env=env, what=f"{job}: {line}")


def test_the_gitlab_recipe_pushes_on_the_default_branch_and_notes_a_preview_on_a_merge_request(
    recipe_bin, bucket, api, tmp_path
):
    pipeline = yaml.safe_load((RECIPES / "gitlab-ci.yml").read_text())
    endpoint, name = bucket
    api_url, received = api
    env = _environment(
        recipe_bin,
        endpoint,
        name,
        {
            "CI_API_V4_URL": f"{api_url}/api/v4",
            "CI_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_IID": PR_NUMBER,
            "DAGFACTORY_GITLAB_TOKEN": "test-gitlab-token",
        },
    )
    main = _checkout(tmp_path / "main")
    install = _gitlab_script(pipeline, "dagfactory-push")[0]
    _run_shell(install, cwd=main, env={**pipeline["variables"], **env}, what="install")
    _needs_check_and_preview(recipe_bin)

    _run_gitlab_job(pipeline, "dagfactory-push", cwd=main, env=env)
    pushed = [key for key in _bucket_files(endpoint, name) if key.endswith(".py")]
    built = sorted(p.name for p in (main / "build" / "dags").glob("*.py"))
    assert sorted(Path(key).name for key in pushed) == built and built

    merge_request = _checkout(tmp_path / "mr")
    _run_gitlab_job(pipeline, "dagfactory-preview", cwd=merge_request, env=env)
    (post,) = received
    assert post["path"] == f"/api/v4/projects/42/merge_requests/{PR_NUMBER}/notes"
    assert post["headers"]["PRIVATE-TOKEN"] == "test-gitlab-token"
    assert parse_qs(post["body"])["body"] == [(merge_request / "preview.md").read_text()]
