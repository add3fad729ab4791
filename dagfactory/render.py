"""Stage 6: lay each ``DagPlan`` out as the text of a self-contained DAG file, and write them.

The plan (``dagfactory.plan``) has decided every value; this stage only lays the file out:
Airflow names localised to the target version (``_airflow_api``), the imports those names
and constructors need, the jinja2 template and the content hash in the header. A user's
templates (``--templates``) get a ``compile()`` of the result, so a layout that is not Python
stops the build; the bundled ones are held to that by the tests instead (hostile-text property
tests, every sample and corpus build parsed by Airflow), since compiling a 5k-model build's
4 MB of source costs a quarter of the build. It never reads the config. Every value reaches
the template as Python source made by :func:`dagfactory._pysrc.literal`, so user text can
only ever be a string literal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from dagfactory import _airflow_api
from dagfactory._pysrc import Call, literal
from dagfactory._version import __version__
from dagfactory.errors import ConfigError, RenderError
from dagfactory.plan import ASSET_LIST, DagPlan

__all__ = ["RenderedFile", "render_dag", "render_dags", "template_dirs"]

TEMPLATE_NAME = "dag.py.j2"


@dataclass(frozen=True)
class RenderedFile:
    name: str
    text: str
    dag_id: str


class _TaskSource(NamedTuple):
    """One task as the template lays it out: ``var = operator(name=value, ...)``.

    Not a dict: jinja2 looks ``task.var`` up as an attribute first, and on a dict that raised
    (and caught) an AttributeError three times per task, ~10% of rendering a 5k-task build.
    """

    var: str
    operator: str
    kwargs: list[tuple[str, str]]


def _import_lines(imports: Iterable[tuple[str, str]]) -> list[str]:
    """``from m import a, b`` lines, one per module, sorted."""
    names: dict[str, set[str]] = {}
    for module, name in imports:
        names.setdefault(module, set()).add(name)
    return [f"from {module} import {', '.join(sorted(names[module]))}" for module in sorted(names)]


PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "templates"


def template_dirs(extra: str | Path | None = None) -> list[str]:
    """Template search path: a user folder first (it must exist), then the packaged one."""
    dirs = []
    if extra:
        if not Path(extra).is_dir():
            raise ConfigError("the --templates folder does not exist", path=str(extra))
        dirs.append(Path(extra))
    dirs.append(PACKAGE_TEMPLATES)
    return [str(p) for p in dirs]


@lru_cache(maxsize=8)
def _template(search_path: tuple[str, ...]):  # compiled once per process, not per file
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(search_path)),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    try:
        return env.get_template(TEMPLATE_NAME)
    except jinja2.TemplateError as exc:
        raise RenderError(f"cannot load template {TEMPLATE_NAME}: {exc}") from exc


#: stands for the header's hash while the text it covers is rendered
_HASH_SLOT = "@@dagfactory-content-hash@@"


def _with_content_hash(text: str) -> str:
    """Put the hash of the file's own text into its header.

    The text is all that shapes a file (plan, template, Airflow names, generator version in
    the first line), so the hash changes exactly when the file does: a config change that
    touches one DAG leaves every other file byte-identical, and so unpushed.
    """
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return text.replace(_HASH_SLOT, digest, 1)


def _localized(
    kwargs: Iterable[tuple[str, Any]], version: str, used: set[str], calls: set[str]
) -> list[tuple[str, str]]:
    """Keyword arguments as source, Airflow names mapped to the target version (see
    ``_airflow_api``), and the constructor names emitted added to ``calls``; the table
    symbols met are added to ``used``, except in the native version, where they are the
    table symbols among ``calls`` (``render_dag`` adds them once per file)."""
    if version == _airflow_api.NATIVE:  # written in these names already
        return [(name, literal(value, calls)) for name, value in kwargs]
    return [
        (name, literal(_airflow_api.localize(value, version, used), calls))
        for name, value in kwargs
    ]


def _asset_list(value: Any, version: str) -> tuple[Any, bool]:
    """The schedule in ``version``: the plan's asset list stays a hash-caching ``_AssetList``
    where Airflow's DAG hash walks schedule assets, and is a plain list elsewhere."""
    if isinstance(value, Call) and value.func == ASSET_LIST:
        if version in _airflow_api.HASH_WALKS_SCHEDULE_ASSETS:
            return value, True
        return value.args[0], False
    return value, False


def render_dag(
    plan: DagPlan, airflow_version: str, template_dir: str | None = None
) -> RenderedFile:
    """The text of one DAG file: the plan laid out (compiled, when a user template laid it out)."""
    version = airflow_version
    used = {"DAG"}  # symbols of the _airflow_api table this file uses
    operators: set[str] = set()
    calls: set[str] = set()  # constructor names in the arguments, for their imports
    tasks = []
    var_of: dict[str, str] = {}
    operator_name: dict[str, str] = {}  # a file has one or two operators: look them up once
    for prefix, calls_of_kind in (("s", plan.sensors), ("t", plan.tasks)):
        for index, call in enumerate(calls_of_kind):
            var = var_of[call.task_id] = f"{prefix}{index}"
            operator = operator_name.get(call.operator)
            if operator is None:
                operators.add(call.operator)
                operator = operator_name[call.operator] = _airflow_api.locate(
                    call.operator, version
                )[1]
            tasks.append(
                _TaskSource(
                    var=var, operator=operator, kwargs=_localized(call.kwargs, version, used, calls)
                )
            )
    asset_list_class = False
    dag_kwargs: list[tuple[str, Any]] = []
    for name, value in plan.dag_kwargs:
        if name == "schedule":
            value, asset_list_class = _asset_list(value, version)
        dag_kwargs.append((name, value))
    dag_source = _localized(dag_kwargs, version, used, calls)
    if version == _airflow_api.NATIVE:
        used.update(name for name in calls if name in _airflow_api.SYMBOLS)
    imports = {_airflow_api.locate(symbol, version) for symbol in used | operators}
    imports.update(_airflow_api.helper_imports(calls))
    imports.update(plan.imports)  # notifier classes (plan.plan_notifications)
    constants = [(name, literal(text)) for name, text in plan.constants]
    # One set_upstream call per task, not one `>>` per edge: Airflow re-hashes the DAG (and
    # every schedule asset) on each call, so calls, not edges, drive parse time.
    upstream = [
        (var_of[call.task_id], [var_of[up] for up in call.upstream])
        for call in plan.tasks
        if call.upstream
    ]
    context = {
        "generator": f"dagfactory {__version__}",
        "content_hash": _HASH_SLOT,
        "dag_id_comment": plan.dag_id,
        "imports": _import_lines(imports),
        "dag_kwargs": dag_source,
        "tasks": tasks,
        "upstream": upstream,
        "asset_list_class": asset_list_class,
        "constants": constants,
    }
    template = _template(tuple(template_dirs(template_dir)))  # a missing folder: ConfigError
    try:
        text = template.render(context)
    except Exception as exc:  # jinja2 errors of a user template
        raise RenderError(f"template failed: {exc}", group=plan.group) from exc
    try:
        if template_dir is not None:
            compile(text, plan.file_name, "exec", dont_inherit=True)
    except SyntaxError as exc:  # a user template that lays out something that is not Python
        raise RenderError(
            f"the template made invalid Python: {exc.msg} (line {exc.lineno})", group=plan.group
        ) from None
    return RenderedFile(plan.file_name, _with_content_hash(text), plan.dag_id)


def render_dags(
    plans: Iterable[DagPlan], airflow_version: str, template_dir: str | None = None
) -> list[RenderedFile]:
    template_dirs(template_dir)  # a --templates folder that does not exist stops here
    return [render_dag(plan, airflow_version, template_dir) for plan in plans]
