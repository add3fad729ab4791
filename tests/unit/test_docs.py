"""The documentation holds: links resolve, the reference pages match the code, examples load.

- every relative link in ``README.md`` and ``docs/*.md`` points to a file (and, with a
  ``#fragment``, to a heading of that file);
- ``README.md`` stays short;
- ``docs/configuration.md`` lists exactly the keys of the config dataclasses, each with its
  default, plus the ``meta.dagfactory`` keys and the pod settings the code reads;
- ``docs/cli.md`` lists exactly the keys of the ``--format json`` summary;
- every ``docs/examples/*.yml`` loads with ``load_config`` and builds the sample project, and a
  page that shows one under ``<!-- include: examples/NAME -->`` shows it verbatim.

No test reads an example out of the README: examples that tests use live in ``docs/examples/``.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests_paths import REPO, SHOP

from dagfactory import _k8s, generate, load_config
from dagfactory.config import Config
from dagfactory.node_settings import KEYS as META_KEYS

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
EXAMPLES = sorted((DOCS / "examples").glob("*.yml"))
CONFIG_PAGE = DOCS / "configuration.md"
README_MAX_LINES = 250

_FENCED = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
_INCLUDE = re.compile(r"<!-- include: (\S+) -->\n```[a-z]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:")
_KEY_ROW = re.compile(r"^\| `([^`]+)` \|")
_DEFAULT_ROW = re.compile(r"^\| `([^`]+)` \| `([^`]*)` \|")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _prose(text: str) -> str:
    """The page without code blocks and code spans, where brackets are not links."""
    return _CODE_SPAN.sub("", _FENCED.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in _HEADING.findall(_FENCED.sub("", page.read_text()))}


def _relative_links() -> list[Any]:
    links = []
    for page in PAGES:
        targets = set(_LINK.findall(_prose(page.read_text())))
        for target in sorted(t for t in targets if not _SCHEME.match(t)):  # http:, mailto:, ...
            links.append(pytest.param(page, target, id=f"{_rel(page)} -> {target}"))
    return links


@pytest.mark.parametrize(("page", "target"), _relative_links())
def test_a_relative_link_points_to_an_existing_file_and_heading(page, target):
    path, _, fragment = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.exists(), f"{_rel(page)} links to {target}, which does not exist"
    if fragment and resolved.suffix == ".md":
        assert fragment in _anchors(resolved), f"{_rel(page)}: no heading #{fragment}"


def test_the_pages_link_to_each_other():
    assert len(_relative_links()) > 20  # the link test above is not vacuous


def test_the_readme_stays_short():
    lines = README.read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


# --- the configuration reference --------------------------------------------------------------


def _section(page: Path, heading: str) -> str:
    """The text under a ``## `` heading, up to the next one."""
    text = page.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _rows(section: str, pattern: re.Pattern[str]) -> list[tuple[str, ...]]:
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            match = pattern.match(line)
            assert match, f"a reference row not in the expected shape: {line}"
            rows.append(match.groups())
    return rows


def _plain(value: Any) -> Any:
    """A default as YAML would write it: lists for tuples, dicts for mappings."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _config_keys(cls: type, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every key a user can set, dotted, with its default; nested dataclasses walked."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.metadata.get("internal"):
            continue
        key, tp = f"{prefix}{field.name}", hints[field.name]
        if dataclasses.is_dataclass(tp):
            yield from _config_keys(tp, f"{key}.")
            continue
        yield key, _plain(_default(field))
        if typing.get_origin(tp) is Mapping:
            value_tp = typing.get_args(tp)[1]
            if dataclasses.is_dataclass(value_tp):  # groups: {<name>: GroupConfig}
                yield from _config_keys(value_tp, f"{key}.<name>.")


def _documented_defaults() -> dict[str, str]:
    section = _section(CONFIG_PAGE, "Keys of `dagfactory.yml`")
    rows = _rows(section, _DEFAULT_ROW)
    assert len(rows) == len(dict(rows)), "a key is documented twice"
    return dict(rows)


def test_the_config_reference_lists_every_key_and_no_other():
    documented, in_code = set(_documented_defaults()), {key for key, _ in _config_keys(Config)}
    assert sorted(in_code - documented) == [], "keys missing from docs/configuration.md"
    assert sorted(documented - in_code) == [], "documented keys that dagfactory/config.py lacks"


@pytest.mark.parametrize(("key", "default"), list(_config_keys(Config)), ids=str)
def test_the_config_reference_gives_each_keys_default(key, default):
    documented = _documented_defaults()
    if key not in documented:
        pytest.skip("missing from the page, which the test above reports")
    assert yaml.safe_load(documented[key]) == default


def test_the_meta_reference_lists_the_keys_dagfactory_reads():
    section = _section(CONFIG_PAGE, "`meta.dagfactory` on a dbt node")
    documented = {key for (key,) in _rows(section, _KEY_ROW)}
    assert documented == set(META_KEYS)  # the keys node_settings accepts, no more


def test_the_pod_reference_lists_every_pod_setting():
    documented = [key for (key,) in _rows(_section(CONFIG_PAGE, "Pod settings"), _KEY_ROW)]
    assert documented == list(_k8s.POD_KEYS)


# --- the JSON summary -------------------------------------------------------------------------


def _summary_keys(summary: Mapping[str, Any]) -> set[str]:
    keys = set(summary)
    dag = summary["dags"][0]
    keys |= {f"dags[].{k}" for k in dag}
    keys |= {f"dags[].tasks[].{k}" for k in dag["tasks"][0]}
    return keys


def test_the_json_summary_table_lists_every_key_a_build_writes():
    documented = {key for (key,) in _rows(_section(DOCS / "cli.md", "The JSON summary"), _KEY_ROW)}
    summary = generate(SHOP / "manifest.json", load_config(DOCS / "examples" / "minimal.yml"))
    assert documented == _summary_keys(summary.to_dict()) | {"push"}  # push: only with --push


# --- examples ---------------------------------------------------------------------------------


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"minimal.yml", "routing.yml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_an_example_loads_and_builds_the_sample_project(example):
    config = load_config(example)
    overrides = {} if config.routing.kubernetes.image else {"routing.force": "celery"}
    result = generate(SHOP / "manifest.json", load_config(example, overrides))
    assert result.dags


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_an_example_is_shown_or_linked_by_a_page(example):
    name = f"examples/{example.name}"
    assert any(name in page.read_text() for page in PAGES), f"no page shows {name}"


def _includes() -> list[Any]:
    includes = []
    for page in PAGES[1:]:  # docs pages only: no test reads the README's text as an example
        for target, block in _INCLUDE.findall(page.read_text()):
            includes.append(pytest.param(page, target, block, id=f"{_rel(page)} <- {target}"))
    return includes


@pytest.mark.parametrize(("page", "target", "block"), _includes())
def test_an_included_example_is_shown_verbatim(page, target, block):
    assert block == (page.parent / target).read_text(), f"{_rel(page)} shows an old {target}"


def test_the_pages_include_examples():
    assert {param.values[1] for param in _includes()} >= {"examples/routing.yml"}
