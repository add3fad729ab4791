"""The output folder: its marker proves what a build wrote; nothing else in it is ever lost.

A build replaces ``--out`` only when the marker's content (every file with its sha256) accounts
for everything in the folder; the swap leaves either the old or the new build; a push reads
exactly the listed files and never follows a symlink.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import run_cli

from dagfactory import buildfolder
from dagfactory.buildfolder import BUILD_MARKER, read_build_folder, replace_folder
from dagfactory.errors import ConfigError, ForeignOutputError

FILES = {"shop__a.py": b"# dag a\n", "shop__b.py": b"# dag b\n", "shop__c.py": b"# dag c\n"}


def _build(out: Path, files: dict[str, bytes] = FILES) -> Path:
    return replace_folder(out, files, team="team-a", project="shop")


def _content(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_the_marker_lists_every_file_with_its_sha256(tmp_path):
    out = _build(tmp_path / "dags")
    marker = json.loads((out / BUILD_MARKER).read_bytes())
    assert marker["generator"] == "dagfactory"
    assert (marker["team"], marker["project"]) == ("team-a", "shop")
    assert marker["files"] == {
        name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()
    }


def test_the_marker_is_byte_identical_for_the_same_files(tmp_path):
    first = (_build(tmp_path / "one") / BUILD_MARKER).read_bytes()
    second = (_build(tmp_path / "two", dict(reversed(FILES.items()))) / BUILD_MARKER).read_bytes()
    assert first == second


def test_a_build_replaces_its_previous_build_whole(tmp_path):
    out = _build(tmp_path / "dags")
    _build(out, {"shop__a.py": b"# dag a, new\n"})
    assert sorted(_content(out)) == [BUILD_MARKER, "shop__a.py"]
    assert (out / "shop__a.py").read_bytes() == b"# dag a, new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["dags"]  # no staging folder left


def test_a_previous_build_whose_dag_files_were_deleted_is_still_replaced(tmp_path):
    out = _build(tmp_path / "dags")
    (out / "shop__b.py").unlink()
    _build(out)
    assert sorted(_content(out)) == [BUILD_MARKER, *sorted(FILES)]


@pytest.mark.parametrize(
    ("add", "named"),
    [
        (lambda out: (out / "hand_written.py").write_text("# mine\n"), "'hand_written.py'"),
        (lambda out: (out / ".airflowignore").write_text("x\n"), "'.airflowignore'"),
        (lambda out: (out / "manifest.json").write_text("{}"), "'manifest.json'"),
        (lambda out: (out / "sub").mkdir(), "'sub'"),
        (lambda out: (out / "shop__a.py").write_text("# edited\n"), "changed since the build"),
        (lambda out: (out / "link.py").symlink_to(out / "shop__a.py"), "'link.py'"),
    ],
    ids=["hand-written-dag", "airflowignore", "manifest", "subfolder", "edited-dag", "symlink"],
)
def test_a_previous_build_holding_anything_it_did_not_write_is_refused(tmp_path, add, named):
    out = _build(tmp_path / "dags")
    add(out)
    before = _content(out) if not (out / "sub").exists() else None
    with pytest.raises(ForeignOutputError, match="did not write") as info:
        _build(out, {"shop__z.py": b"# z\n"})
    assert named in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == 2
    if before is not None:
        assert _content(out) == before  # nothing deleted, nothing changed


@pytest.mark.parametrize(
    "marker",
    [None, b"", b"{not json", b'{"generator": "other", "files": {}}', b"[]"],
    ids=["missing", "empty", "unparseable", "other-generator", "not-an-object"],
)
def test_a_folder_without_a_marker_that_proves_a_build_is_refused(tmp_path, marker):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    (out / "dagfactory.yml").write_text("team: shop\n")
    if marker is not None:
        (out / BUILD_MARKER).write_bytes(marker)
    with pytest.raises(ForeignOutputError, match="dagfactory did not write") as info:
        _build(out)
    message = str(info.value)
    assert "'dagfactory.yml'" in message and "'manifest.json'" in message
    assert "\n" not in message
    assert (out / "manifest.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_refusal_names_the_first_few_entries_and_counts_the_rest(tmp_path):
    out = _build(tmp_path / "dags")
    for index in range(8):
        (out / f"mine_{index}.py").write_text("# mine\n")
    with pytest.raises(ForeignOutputError, match=r"holds 8 entries .*'mine_4.py' and 3 more"):
        _build(out)


def test_names_in_a_refusal_stay_on_one_line(tmp_path):
    out = _build(tmp_path / "dags")
    (out / "evil\nerror: forged.py").write_text("")
    with pytest.raises(ForeignOutputError) as info:
        _build(out)
    assert "\n" not in str(info.value) and "evil\\nerror: forged.py" in str(info.value)


def test_an_empty_or_missing_folder_is_written(tmp_path):
    (tmp_path / "empty").mkdir()
    assert sorted(_content(_build(tmp_path / "empty"))) == [BUILD_MARKER, *sorted(FILES)]
    assert sorted(_content(_build(tmp_path / "a" / "b"))) == [BUILD_MARKER, *sorted(FILES)]


def test_a_marker_of_an_older_dagfactory_still_proves_its_listed_files(tmp_path):
    out = tmp_path / "dags"
    out.mkdir()
    (out / "shop__old.py").write_text("# old\n")
    marker = {"generator": "dagfactory", "files": ["shop__old.py"], "team": "t", "project": "p"}
    (out / BUILD_MARKER).write_text(json.dumps(marker))
    _build(out)
    assert sorted(_content(out)) == [BUILD_MARKER, *sorted(FILES)]


def test_staging_folders_of_a_killed_build_are_removed_by_the_next_build(tmp_path):
    out = _build(tmp_path / "dags")
    for suffix in ("abc123", "zzz999"):  # as a SIGKILL mid-build leaves them
        debris = tmp_path / f".dags.dagfactory-{suffix}" / "build"
        debris.mkdir(parents=True)
        (debris / "shop__a.py").write_text("# half\n")
    (tmp_path / ".other.dagfactory-abc").mkdir()  # another --out's: not ours to remove
    _build(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.dagfactory-abc", "dags"]


def test_without_an_atomic_exchange_two_renames_still_replace_the_build(tmp_path, monkeypatch):
    monkeypatch.setattr(buildfolder, "_EXCHANGE", None)
    out = _build(tmp_path / "dags")
    _build(out, {"shop__n.py": b"# n\n"})
    assert sorted(_content(out)) == [BUILD_MARKER, "shop__n.py"]
    assert [p.name for p in tmp_path.iterdir()] == ["dags"]


def test_the_exchange_swaps_two_folders_in_one_step(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("a")
    (tmp_path / "b").mkdir()
    assert buildfolder.exchange(tmp_path / "a", tmp_path / "b")  # Linux: renameat2 exists
    assert (tmp_path / "b" / "x").read_text() == "a" and not any((tmp_path / "a").iterdir())


# --------------------------------------------------------------------------- reading for a push


def test_a_push_reads_exactly_the_listed_files(tmp_path):
    out = _build(tmp_path / "dags")
    (out / "stray.py").write_text("# not listed\n")
    marker, files = read_build_folder(out)
    assert files == FILES and (marker.team, marker.project) == ("team-a", "shop")


def test_a_dag_file_that_is_a_symlink_is_never_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    out = _build(tmp_path / "dags")
    (out / "shop__b.py").unlink()
    (out / "shop__b.py").symlink_to(secret)
    with pytest.raises(ConfigError, match=r"shop__b\.py is a symbolic link") as info:
        read_build_folder(out)
    assert "\n" not in str(info.value)


def test_a_marker_that_is_a_symlink_is_never_followed(tmp_path):
    out = _build(tmp_path / "dags")
    real = tmp_path / "elsewhere.json"
    os.replace(out / BUILD_MARKER, real)
    (out / BUILD_MARKER).symlink_to(real)
    with pytest.raises(ConfigError, match="cannot read the build marker: it is a symbolic link"):
        read_build_folder(out)


def test_a_listed_file_edited_after_the_build_is_not_pushed(tmp_path):
    out = _build(tmp_path / "dags")
    (out / "shop__c.py").write_bytes(b"import os; os.system('x')\n")
    with pytest.raises(ConfigError, match=r"shop__c\.py was changed after the build"):
        read_build_folder(out)


# --------------------------------------------------------------------------- through the CLI


def _cli(capsys, *argv: str) -> tuple[int, str]:
    return run_cli(list(argv), capsys)


def test_a_build_never_deletes_the_manifest_and_config_it_reads_from_out(
    capsys, tmp_path, shop_manifest, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(shop_manifest, out / "manifest.json")
    shutil.copy(shop_manifest.parent / "dagfactory.yml", out / "dagfactory.yml")
    (out / BUILD_MARKER).write_bytes(b"")  # an empty marker proves nothing
    before = _content(out)
    code, err = _cli(
        capsys, "build", "--manifest", "out/manifest.json", "--config", "out/dagfactory.yml",
        "--out", "out", "--runner", "celery",
    )  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "'dagfactory.yml'" in err and "'manifest.json'" in err
    assert _content(out) == before


def test_a_hand_written_dag_added_to_the_output_is_refused_not_deleted(
    capsys, tmp_path, shop_manifest
):
    argv = ["build", "--manifest", str(shop_manifest), "--out", str(tmp_path / "dags")]
    assert _cli(capsys, *argv, "--runner", "celery")[0] == 0
    (tmp_path / "dags" / "my_own_dag.py").write_text("# hand-written\n")
    (tmp_path / "dags" / ".airflowignore").write_text("scratch/\n")
    code, err = _cli(capsys, *argv, "--runner", "celery")
    assert code == 2 and err.count("\n") == 1
    assert "2 entries the previous build did not write: '.airflowignore', 'my_own_dag.py'" in err
    assert (tmp_path / "dags" / "my_own_dag.py").read_text() == "# hand-written\n"
    assert (tmp_path / "dags" / ".airflowignore").exists()


def test_a_symlinked_out_replaces_the_folder_it_points_to(tmp_path):
    real = _build(tmp_path / "real")
    (tmp_path / "link").symlink_to(real)
    _build(tmp_path / "link", {"shop__n.py": b"# n\n"})
    assert (tmp_path / "link").is_symlink()
    assert sorted(_content(real)) == [BUILD_MARKER, "shop__n.py"]


def test_builds_into_one_out_at_once_take_turns(tmp_path):
    """The parent's lock: a build never removes the staging folder of one still writing."""
    out = _build(tmp_path / "dags")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: _build(out), range(20)))
    assert [p.name for p in tmp_path.iterdir()] == ["dags"]
    assert read_build_folder(out)[1] == FILES
