"""How `dagfactory check` prints findings: one line each, whatever the message holds."""

from __future__ import annotations

import pytest

from dagfactory.check import CheckReport, Finding, format_github, format_text


def _report(*findings: Finding, airflow: bool = True) -> CheckReport:
    return CheckReport(
        folder="build",
        files=("a.py",),
        findings=findings,
        airflow={"python": "/py", "version": "3.3.2"} if airflow else None,
        not_loaded=None if airflow else "Airflow is not importable by /py",
        parse_seconds={"a.py": 0.01} if airflow else {},
    )


@pytest.mark.parametrize(
    ("message", "escaped"),
    [
        ("100% sure", "100%25 sure"),
        ("line one\nline two", "line one%0Aline two"),
        ("cr\rlf\r\n", "cr%0Dlf%0D%0A"),
        ("a: b, c", "a: b, c"),  # the message keeps ':' and ','
    ],
    ids=["percent", "newline", "carriage return", "colon and comma"],
)
def test_github_messages_are_escaped_per_githubs_rules(message, escaped):
    out = format_github(_report(Finding("a.py", 7, "policy.tags", message)))
    assert out == f"::error file=build/a.py,line=7,title=policy.tags::{escaped}"


def test_github_file_names_escape_colon_and_comma_too():
    out = format_github(_report(Finding("a,b:c.py", 1, "syntax-error", "x")))
    assert out.startswith("::error file=build/a%2Cb%3Ac.py,line=1,")


def test_github_output_warns_when_the_files_were_not_loaded():
    out = format_github(_report(airflow=False))
    assert out == "::warning::static checks only: Airflow is not importable by /py"


def test_text_keeps_one_line_per_finding_even_with_a_newline_in_the_message():
    out = format_text(_report(Finding("a.py", 3, "import-error", "bad\nline")))
    assert out.splitlines()[0] == "build/a.py:3: import-error: bad\\nline"
    assert out.splitlines()[-1] == "1 problem: 1 files checked in build"
