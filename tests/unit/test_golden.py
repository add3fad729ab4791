"""Golden files: the exact DAG files the shop sample gives for each shape of output.

Each folder ``tests/golden/<shape>/`` holds the config of that shape (``dagfactory.yml``) and
the files the generator made from ``sample_manifests/shop`` with it (``dags/``). A change to the
generated text shows here as a unified diff. When the change is intended, rewrite them with
``.venv/bin/python -m pytest tests/unit/test_golden.py --update-golden`` (or ``make golden``)
and review the diff in ``git diff tests/golden``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from tests_paths import REPO, SHOP

from dagfactory import generate, load_config

GOLDEN = REPO / "tests" / "golden"
SHAPES = sorted(p.parent.name for p in GOLDEN.glob("*/dagfactory.yml"))
UPDATE_HINT = (
    "if the change is intended: .venv/bin/python -m pytest tests/unit/test_golden.py"
    " --update-golden (or make golden), then review git diff tests/golden"
)


def _generated(shape: str) -> dict[str, str]:
    config = load_config(GOLDEN / shape / "dagfactory.yml")
    result = generate(SHOP / "manifest.json", config)
    return {f.name: f.text for f in result.files}


def _golden(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.py"))}


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(exist_ok=True)
    for stale in set(_golden(folder)) - set(files):
        (folder / stale).unlink()
    for name, text in files.items():
        (folder / name).write_bytes(text.encode("utf-8"))


def _diff(expected: dict[str, str], actual: dict[str, str]) -> str:
    lines: list[str] = []
    for name in sorted(set(expected) | set(actual)):
        lines += difflib.unified_diff(
            expected.get(name, "").splitlines(keepends=True),
            actual.get(name, "").splitlines(keepends=True),
            fromfile=f"golden/{name}" if name in expected else "/dev/null",
            tofile=f"generated/{name}" if name in actual else "/dev/null",
        )
    return "".join(lines)


def test_every_shape_of_output_has_golden_files():
    assert SHAPES == ["airflow2", "asset_or_time", "celery", "executor", "pod_operator", "sensors"]


@pytest.mark.parametrize("shape", SHAPES)
def test_the_generated_files_are_the_golden_files(shape: str, update_golden: bool):
    folder = GOLDEN / shape / "dags"
    actual = _generated(shape)
    if update_golden:
        _write(folder, actual)
    expected = _golden(folder)
    diff = _diff(expected, actual)
    assert not diff, (
        f"{shape}: the generated files differ from tests/golden/{shape}/dags/\n{diff}\n{UPDATE_HINT}"
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_golden_files_hold_no_path_of_this_checkout(shape: str):
    for name, text in _golden(GOLDEN / shape / "dags").items():
        assert str(REPO) not in text, f"{shape}/{name} names the checkout {REPO}: fix the config"
