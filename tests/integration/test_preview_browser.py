"""The preview page in a real browser: headless Chromium (Debian's package) driven by Playwright.

Each page is opened from a file with every request routed through the test: the page must make
none (no CDN, no font, no favicon), log no console error, show every DAG, draw a DAG's tasks
when it is clicked, and find a model by name. A screenshot of each page lands in tmp_path;
with DAGFACTORY_SCREENSHOT=path the shop page's is also copied there (`make screenshot`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import change_three_models
from tests_paths import REPO, SAMPLES, SHOP

from dagfactory.cli import cli

CHROMIUM = "/usr/bin/chromium"
MAX_GRAPH_TASKS, MAX_ROWS = 1500, 500  # the page draws a graph up to, lists rows up to
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _install_chromium() -> str | None:
    """Install Debian's chromium when it is missing; the reason it cannot be, or None."""
    if Path(CHROMIUM).exists():
        return None
    if shutil.which("apt-get") is None:
        return "no /usr/bin/chromium and no apt-get to install Debian's chromium package"
    if os.geteuid() != 0:
        return "no /usr/bin/chromium, and installing Debian's chromium package needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"`{' '.join(argv)}` failed: {done.stderr.strip()[-300:]}"
    return (
        None if Path(CHROMIUM).exists() else "apt-get installed chromium but not /usr/bin/chromium"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    reason = _install_chromium()
    if reason:
        pytest.skip(reason)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page:
    """One page opened from a file, with its console errors and every request it tried."""

    def __init__(self, browser, html: Path) -> None:
        self.url = html.as_uri()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 800})
        self.page.on(
            "console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None
        )
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.route("**/*", self._route)
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']")

    def _route(self, route) -> None:
        if route.request.url == self.url:
            route.continue_()
        else:
            route.abort()  # counted by the request listener; the page must not need it

    def network(self) -> list[str]:
        return [url for url in self.requests if url != self.url]


def preview_page(
    tmp_path: Path, manifest: Path, config: Path, name: str, *extra: str
) -> tuple[Path, dict]:
    """Write the page with the CLI; return it and the build's facts as JSON."""
    page = tmp_path / f"{name}.html"
    base = ["preview", "--manifest", str(manifest), "--config", str(config), *extra]
    result = CliRunner().invoke(cli, [*base, "--out", str(page)])
    assert result.exit_code == 0, result.output
    facts = CliRunner().invoke(cli, [*base, "--format", "json"])
    assert facts.exit_code == 0, facts.output
    return page, json.loads(facts.stdout)


def check_page(browser, html: Path, facts: dict, model: str, shot: Path) -> Page:
    view = Page(browser, html)
    page = view.page
    dag_ids = sorted(facts["dags"])
    shown = page.eval_on_selector_all("g.dag", "els => els.map(e => e.dataset.dag)")
    assert sorted(shown) == dag_ids  # every DAG present

    dag_id = next(d for d in dag_ids if model in facts["dags"][d]["tasks"])
    tasks = facts["dags"][dag_id]["tasks"]
    page.click(f"g.dag[data-dag='{dag_id}']")
    assert page.text_content("#dag-title") == dag_id
    if len(tasks) <= MAX_GRAPH_TASKS:  # a click shows the DAG's tasks: as a graph
        drawn = page.eval_on_selector_all(
            "#taskgraph g.task", "els => els.map(e => e.dataset.task)"
        )
        assert sorted(drawn) == sorted(tasks)
    else:  # or, past what a graph can show, as the first rows of the table
        assert page.is_visible("#graph-skipped")
    rows = page.eval_on_selector_all("#tasks tr[data-task]", "els => els.map(e => e.dataset.task)")
    assert rows == sorted(tasks)[:MAX_ROWS]

    page.fill("#search", model)
    page.wait_for_selector(f"#results li[data-task='{model}']")
    page.click(f"#results li[data-task='{model}']")  # a search finds the model
    assert page.text_content("#task-title") == model
    command = page.text_content("#task-command")
    assert f"--select {tasks[model]['selector']}" in command

    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    assert view.errors == []
    assert view.network() == []
    return view


def test_the_shop_preview_in_chromium(
    browser, shop_manifest, edited_manifest, tmp_path, monkeypatch
):
    """The sample project after a dbt change, compared with the build before it."""
    config = SHOP / "dagfactory.yml"
    monkeypatch.chdir(tmp_path)  # the page names the folder as given: build-main
    deployed = Path("build-main")
    built = CliRunner().invoke(
        cli,
        [
            "build",
            "--manifest",
            str(shop_manifest),
            "--config",
            str(config),
            "--out",
            str(deployed),
        ],
    )
    assert built.exit_code == 0, built.output
    changed = edited_manifest(change_three_models, name="changed.json")
    html, facts = preview_page(tmp_path, changed, config, "shop", "--against", str(deployed))
    shot = tmp_path / "shop.png"
    view = check_page(browser, html, facts, "fct_revenue", shot)
    changes = view.page.text_content("#changes-text")
    assert "moved model.shop.sales_by_country: shop_team__sales -> shop_team__marketing" in changes
    if os.environ.get("DAGFACTORY_SCREENSHOT"):
        shutil.copyfile(shot, REPO / os.environ["DAGFACTORY_SCREENSHOT"])


def _synth():
    spec = importlib.util.spec_from_file_location("synth", SAMPLES / "synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("models", [5000, 20000])
def test_a_large_preview_in_chromium(browser, tmp_path, models):
    """5,000 models make ~50 DAGs; 20,000 make ~200 DAGs of ~22,000 tasks in all."""
    import orjson

    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(orjson.dumps(_synth().build_manifest(models)))
    config = REPO / "docs" / "examples" / "minimal.yml"  # names a pod image for heavy models
    html, facts = preview_page(tmp_path, manifest, config, "synth")
    assert len(facts["dags"]) >= models // 100
    biggest = max(facts["dags"], key=lambda d: len(facts["dags"][d]["tasks"]))
    model = sorted(facts["dags"][biggest]["tasks"])[-1]  # past the first rows in a big DAG
    check_page(browser, html, facts, model, tmp_path / "synth.png")


HOSTILE = '</script><img src="x" onerror="window.pwned=1"><b>{{ owner }}</b> & @team'


def test_user_text_is_shown_as_text_and_runs_nothing(browser, tmp_path):
    """Owners, tags, reasons and model ids reach the page as data: shown literally, never
    parsed as markup (an <img> there would also be a request, which the route counts)."""
    from dagfactory import preview as pv

    task = pv.TaskView(
        "t", (f"model.p.{HOSTILE}",), "model", "celery", HOSTILE, None, "build", HOSTILE, (), (), ()
    )
    dag = pv.DagView("d", "d.py", HOSTILE, HOSTILE, None, "schedule", 0, (HOSTILE,), (), (task,))
    page_file = tmp_path / "hostile.html"
    preview = pv.Preview("p", HOSTILE, "pod_operator", ("dbt",), (HOSTILE,), (dag,))
    page_file.write_text(pv.render_html(preview), encoding="utf-8")
    view = Page(browser, page_file)
    view.page.click("g.dag[data-dag='d']")
    view.page.click("#tasks tr[data-task='t']")
    assert view.page.text_content("#detail dl.facts dd") == HOSTILE  # the owner, verbatim
    assert HOSTILE in view.page.text_content("#task-command")
    assert view.page.evaluate("window.pwned") is None
    assert view.page.locator("img, b").count() == 0
    assert view.errors == [] and view.network() == []
