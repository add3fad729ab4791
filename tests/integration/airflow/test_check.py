"""`dagfactory check` on a folder with a problem of each kind, with real Airflow 3.3 and without.

The folder is a real build of the shop sample plus four files written the way mistakes
happen: one cut short (a syntax error), one copied (a duplicate DAG id), one written by hand
(an executor Airflow does not run, a DAG id outside the team's prefix) and one whose tasks
depend on each other in a circle (a cycle, found by Airflow). A policy file then
asks for more than the build gives, so each policy rule finds something. Every finding must
name its file and the line holding the value at fault, in all three output formats.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from tests_paths import REPO

from dagfactory import airflow_rules
from dagfactory.cli import cli

pytestmark = pytest.mark.airflow

CONFIG = {
    "team": "shop_team",
    "routing": {
        "executors": ["CeleryExecutor", "KubernetesExecutor"],
        "celery": {"queue": "dbt"},
        "kubernetes": {"image": "ghcr.io/example/shop-dbt:1.0", "namespace": "dbt"},
    },
}
POLICY = {
    "require_owner": True,
    "required_tags": ["tier1"],
    "team_prefix": True,
    "queues": "etl",
    "executors": "CeleryExecutor|KubernetesExecutor",
    "namespaces": "prod-.*",
    "images": r"registry\.corp/.*",
    "max_tasks": 3,
    "max_schedule_assets": 2,
    "min_retries": 1,
    "parse_budget_seconds": 0.000001,
}
BROKEN = '"""A DAG file cut short by a partial sync."""\n\ndef build_dag(:\n'
ROGUE = """\
import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="rogue", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
    EmptyOperator(task_id="t", executor="LocalExecutor")
"""
CYCLIC = """\
import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="shop_team__cyclic", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
    a = EmptyOperator(task_id="a", executor="CeleryExecutor")
    b = EmptyOperator(task_id="b", executor="CeleryExecutor")
    a >> b >> a
"""
#: rule -> text the reported line holds, or one of several (None: any line of the file); a
#: DAG with no ``default_args=`` or ``tags=`` is reported at its ``DAG(`` line
LINE_HOLDS = {
    "syntax-error": "def build_dag(:",
    "duplicate-dag-id": "dag_id=",
    "import-error": "with DAG(",
    "parse-time": None,
    "policy.owner": ("default_args=", "DAG("),
    "policy.tags": ("tags=", "DAG("),
    "policy.team-prefix": "dag_id=",
    "policy.queues": "queue=",
    "policy.executors": "executor=",
    "policy.namespaces": "namespace=",
    "policy.images": "image=",
    "policy.max-tasks": "DAG(",
    "policy.max-schedule-assets": "schedule=",
    "policy.retries": "task_id=",
}
STATIC_RULES = set(LINE_HOLDS) - {"import-error", "parse-time"}


def _build(manifest: Path, out: Path, *args: str, code: int = 0):
    """``dagfactory build --manifest MANIFEST --out OUT ARGS...``, expecting exit ``code``."""
    result = CliRunner().invoke(
        cli, ["build", "--manifest", str(manifest), "--out", str(out), *args]
    )
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def checked(tmp_path_factory, shop_manifest) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("check")
    (root / "dagfactory.yml").write_text(yaml.safe_dump(CONFIG))
    (root / "policy.yml").write_text(yaml.safe_dump(POLICY))
    out = root / "dags"
    _build(shop_manifest, out, "--config", str(root / "dagfactory.yml"))
    (out / "broken.py").write_text(BROKEN)
    shutil.copy(out / "shop_team__sales.py", out / "shop_team__sales_copy.py")
    (out / "rogue.py").write_text(ROGUE)
    (out / "cyclic.py").write_text(CYCLIC)
    return {"out": out, "config": root / "dagfactory.yml", "policy": root / "policy.yml"}


def _args(checked, fmt: str) -> list[str]:
    return [
        "check",
        str(checked["out"]),
        "--config",
        str(checked["config"]),
        "--policy",
        str(checked["policy"]),
        "--format",
        fmt,
    ]


_TEXT = re.compile(r"^(?P<path>[^\n]+?):(?P<line>\d+): (?P<rule>\S+): (?P<message>.+)$")
_GITHUB = re.compile(r"^::error file=(?P<path>[^,]+),line=(?P<line>\d+),title=(?P<rule>[^:]+)::")


def _parse(fmt: str, stdout: str) -> list[tuple[str, int, str]]:
    if fmt == "json":
        report = json.loads(stdout)
        return [
            (str(Path(report["folder"], f["path"])), f["line"], f["rule"])
            for f in report["findings"]
        ]
    pattern = _TEXT if fmt == "text" else _GITHUB
    found = [pattern.match(line) for line in stdout.splitlines()]
    return [(m["path"], int(m["line"]), m["rule"]) for m in found if m]


def _assert_each_finding_points_at_its_line(findings):
    for path, line, rule in findings:
        holds = LINE_HOLDS[rule]
        text = Path(path).read_text().splitlines()
        assert 1 <= line <= len(text), (path, line, rule)
        if holds is not None:
            options = (holds,) if isinstance(holds, str) else holds
            assert any(o in text[line - 1] for o in options), (rule, path, line, text[line - 1])


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_check_with_airflow_reports_each_problem_with_file_and_line(checked, fmt):
    result = CliRunner().invoke(cli, _args(checked, fmt))
    assert result.exit_code == 1, result.output
    findings = _parse(fmt, result.stdout)
    assert {rule for _, _, rule in findings} == set(LINE_HOLDS)
    _assert_each_finding_points_at_its_line(findings)
    by_rule = {rule: Path(path).name for path, _, rule in findings}
    assert by_rule["syntax-error"] == "broken.py"
    assert by_rule["duplicate-dag-id"] == "shop_team__sales_copy.py"
    rogue = [f for f in findings if Path(f[0]).name == "rogue.py"]
    assert {rule for _, _, rule in rogue} >= {
        "import-error",
        "policy.team-prefix",
        "policy.executors",
    }
    assert "static checks only" not in result.stderr


def test_a_loaded_file_reports_what_airflow_said(checked):
    result = CliRunner().invoke(cli, _args(checked, "text"))
    line = next(x for x in result.stdout.splitlines() if "rogue.py" in x and "import-error" in x)
    assert "executor 'LocalExecutor'" in line and "not available" in line
    cycle = next(x for x in result.stdout.splitlines() if "cyclic.py" in x and "import-error" in x)
    assert "Cycle detected in Dag: shop_team__cyclic" in cycle
    assert "loaded 9 files with Airflow 3.3" in result.stdout


def test_a_clean_build_passes_and_says_it_was_loaded(tmp_path, shop_manifest):
    out = tmp_path / "dags"
    _build(shop_manifest, out, "--runner", "celery")
    result = CliRunner().invoke(cli, ["check", str(out)])
    assert result.exit_code == 0, result.output
    assert "loaded 5 files with Airflow 3.3.2" in result.stdout
    assert result.stdout.rstrip().endswith(f"ok: 5 files checked in {out}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing"], r"missing: not a folder"),
        (["{tmp}"], r"no DAG files \(\*\.py\) to check"),
        (["{tmp}", "--policy", "{tmp}/nope.yml"], r"nope\.yml: cannot read config file"),
        (["{tmp}", "--format", "xml"], r"Invalid value for '--format'"),
        (["{tmp}/x.py", "--airflow-python", "{tmp}/no-python"], r"not a folder"),
    ],
    ids=["no folder", "no files", "no policy file", "unknown format", "file, not folder"],
)
def test_bad_input_exits_2(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["check", *[a.replace("{tmp}", str(tmp_path)) for a in args]])
    assert result.exit_code == 2
    assert re.search(message, result.stderr), result.stderr


def test_a_policy_with_an_unknown_key_exits_2_and_suggests_the_key(checked, tmp_path):
    policy = tmp_path / "policy.yml"
    policy.write_text("max_task: 3\n")
    result = CliRunner().invoke(cli, ["check", str(checked["out"]), "--policy", str(policy)])
    assert result.exit_code == 2
    assert "key 'check.max_task': unknown key; did you mean 'max_tasks'?" in result.stderr


def test_build_check_writes_and_pushes_nothing_when_a_check_fails(tmp_path, shop_manifest):
    config = tmp_path / "dagfactory.yml"
    config.write_text(
        yaml.safe_dump({"routing": {"force": "celery"}, "check": {"required_tags": ["tier1"]}})
    )
    bucket = tmp_path / "bucket"
    args = ["--config", str(config), "--check", "--push", bucket.as_uri()]
    result = _build(shop_manifest, tmp_path / "out", *args, code=1)
    assert "policy.tags: the DAG lacks the required tag 'tier1'" in result.stderr
    assert "nothing was written or pushed" in result.stderr
    assert not (tmp_path / "out").exists() and not bucket.exists()


def test_build_check_builds_and_pushes_when_the_check_passes(tmp_path, shop_manifest):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    _build(
        shop_manifest, tmp_path / "out", "--runner", "celery", "--check", "--push", bucket.as_uri()
    )
    assert len(list((tmp_path / "out").glob("*.py"))) == 5
    assert len(list(bucket.rglob("*.py"))) == 5


# --------------------------------------------------------------------------- Airflow absent


@pytest.fixture(scope="session")
def python_without_airflow(tmp_path_factory) -> Path:
    """A small venv with dagfactory (editable, no extras) and no Airflow, made with uv as
    scripts/bootstrap.sh does."""
    venv = tmp_path_factory.mktemp("no-airflow") / "venv"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "-q", str(venv)], check=True)
    subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(venv / "bin/python"), "-e", str(REPO)],
        check=True,
    )
    probe = subprocess.run([str(venv / "bin/python"), "-c", "import airflow"], capture_output=True)
    assert probe.returncode != 0
    return venv / "bin/python"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_check_without_airflow_says_so_and_runs_the_static_checks(
    checked, python_without_airflow, fmt
):
    dagfactory = python_without_airflow.parent / "dagfactory"
    result = subprocess.run([str(dagfactory), *_args(checked, fmt)], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert "warning: static checks only: Airflow is not importable by" in result.stderr
    findings = _parse(fmt, result.stdout)
    assert {rule for _, _, rule in findings} == STATIC_RULES
    _assert_each_finding_points_at_its_line(findings)
    if fmt == "json":
        report = json.loads(result.stdout)
        assert report["airflow"] is None and "not importable" in report["not_loaded"]
    elif fmt == "github":
        assert "::warning::static checks only" in result.stdout
    else:
        assert "static checks only: Airflow is not importable" in result.stdout


@pytest.mark.slow
def test_a_clean_folder_without_airflow_passes_but_never_silently(
    tmp_path, shop_manifest, python_without_airflow
):
    out = tmp_path / "dags"
    _build(shop_manifest, out, "--runner", "celery")
    result = CliRunner().invoke(
        cli, ["check", str(out), "--airflow-python", str(python_without_airflow)]
    )
    assert result.exit_code == 0
    assert f"static checks only: Airflow is not importable by {python_without_airflow}" in (
        result.stderr
    )


# --------------------------------------------------------------------------- Airflow's limits


def test_the_limits_are_airflows_own():
    from airflow.models.base import ID_LEN
    from airflow.sdk import Asset
    from airflow.sdk.definitions._internal.node import KEY_REGEX
    from airflow.sdk.definitions.dag import TAG_MAX_LEN
    from airflow.sdk.definitions.timetables.simple import ContinuousTimetable

    assert airflow_rules.MAX_TAG_LENGTH == TAG_MAX_LEN
    assert airflow_rules.MAX_KEY_LENGTH == ID_LEN
    assert airflow_rules.KEY_RE.pattern == KEY_REGEX.pattern
    assert ContinuousTimetable.active_runs_limit == 1
    Asset("x-dbt://t/p/" + "m" * (airflow_rules.MAX_ASSET_LENGTH - 12))
    with pytest.raises(ValueError, match="cannot exceed 1500"):
        Asset("x-dbt://t/p/" + "m" * (airflow_rules.MAX_ASSET_LENGTH - 11))


# --------------------------------------------------------------------------- identity


def test_two_teams_sharing_a_project_name_trigger_only_their_own_dags(tmp_path, shop_manifest):
    """Both teams' files in one DAG folder, read back as Airflow serializes them: every asset
    that triggers a DAG is produced by a DAG of the same team."""
    from helpers import serialized_dags

    for team in ("core", "growth"):
        _build(shop_manifest, tmp_path / team, "--team", team, "--runner", "celery")
    producers: dict[str, set[str]] = {}
    consumers: dict[str, set[str]] = {}
    for data in serialized_dags(tmp_path).values():
        for dep in data["dag"]["dag_dependencies"]:
            if dep["dependency_type"] != "asset":
                continue
            if dep["target"] == "asset":
                producers.setdefault(dep["label"], set()).add(dep["source"])
            else:
                consumers.setdefault(dep["label"], set()).add(dep["target"])
    triggers = {
        (up, down)
        for uri, downs in consumers.items()
        for up in producers.get(uri, ())
        for down in downs
    }
    assert len(triggers) >= 10
    assert all(up.split("__")[0] == down.split("__")[0] for up, down in triggers)


def test_against_a_file_bucket_finds_a_dag_id_another_project_pushed(tmp_path, shop_manifest):
    """The same checks against ``file://`` as against S3: team core's ``shop`` is pushed, and
    the same team's ``shop_v2`` would make the same five DAG ids."""
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    _build(
        shop_manifest,
        tmp_path / "shop",
        "--team",
        "core",
        "--runner",
        "celery",
        "--push",
        bucket.as_uri(),
    )
    before = sorted((p, p.read_bytes()) for p in bucket.rglob("*") if p.is_file())
    out = tmp_path / "shop_v2"
    _build(shop_manifest, out, "--team", "core", "--project", "shop_v2", "--runner", "celery")
    result = CliRunner().invoke(
        cli, ["check", str(out), "--against", bucket.as_uri(), "--no-load", "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["findings"]
    assert sorted(f["path"] for f in findings if f["rule"] == "bucket.collision") == [
        f"core__{group}.py" for group in ("finance", "marketing", "sales", "seeds", "staging")
    ]
    assert sorted((p, p.read_bytes()) for p in bucket.rglob("*") if p.is_file()) == before


def test_an_airflow_python_that_cannot_run_exits_2(checked, tmp_path):
    missing = tmp_path / "no-python"
    result = CliRunner().invoke(
        cli, ["check", str(checked["out"]), "--airflow-python", str(missing)]
    )
    assert result.exit_code == 2
    assert f"key 'airflow_python': cannot run {missing}" in result.stderr


def test_the_image_policy_reads_an_executor_pod_override_too(tmp_path, shop_manifest):
    config = tmp_path / "dagfactory.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "routing": {
                    "force": "kubernetes",
                    "kubernetes": {"mode": "executor", "image": "ghcr.io/x/dbt:1"},
                },
                "check": {"images": r"registry\.corp/.*"},
            }
        )
    )
    out = tmp_path / "dags"
    _build(shop_manifest, out, "--config", str(config))
    result = CliRunner().invoke(
        cli, ["check", str(out), "--config", str(config), "--no-load", "--format", "json"]
    )
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert {f["rule"] for f in findings} == {"policy.images"}
    assert len(findings) == 24  # every task's pod_override names the image
    _assert_each_finding_points_at_its_line(
        [(str(out / f["path"]), f["line"], f["rule"]) for f in findings]
    )
