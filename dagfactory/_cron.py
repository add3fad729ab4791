"""Just enough cron to check a schedule and to line two schedules up for a sensor.

Airflow parses the schedules itself; dagfactory only needs to know whether a string is a
schedule Airflow accepts (a preset or five cron fields), and, for ``cross_dag: sensors``, the
fixed distance between a downstream run and the upstream run it waits for. That distance
exists when both schedules fire once per period of the same kind (hour, day, week, month,
year) at a fixed offset in it, or when they are the same schedule. Times are UTC, like the
``start_date`` dagfactory writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "NOT_CRON",
    "PRESETS",
    "ScheduleError",
    "check_schedule",
    "cron_expression",
    "execution_delta_seconds",
]

#: Airflow's cron presets (``airflow.utils.dates.cron_presets``)
PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
#: presets that are schedules but not cron: no time of day to line up with
NOT_CRON = ("@once", "@continuous")

_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?#]+$")
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_FIXED_PERIODS = {"hour": 3600, "day": 86400, "week": 7 * 86400}


class ScheduleError(ValueError):
    """A schedule is malformed, or two schedules cannot be lined up."""


def check_schedule(schedule: str) -> str:
    """``schedule`` unchanged if Airflow would accept it as a preset or a cron line."""
    text = schedule.strip()
    if text in PRESETS or text in NOT_CRON:
        return text
    if text.startswith("@"):
        valid = ", ".join([*PRESETS, *NOT_CRON])
        raise ScheduleError(f"unknown schedule preset {schedule!r}; valid presets: {valid}")
    fields = text.split()
    if len(fields) != 5 or not all(_FIELD.fullmatch(f) for f in fields):
        raise ScheduleError(
            f"{schedule!r} is not a cron schedule: expected five fields "
            "(minute hour day-of-month month day-of-week) or a preset such as @daily"
        )
    expression = " ".join(fields)
    _check_with_croniter(expression, schedule)
    return expression


def _check_with_croniter(expression: str, schedule: str) -> None:
    """Ranges, steps and names as Airflow checks them: with croniter, Airflow's own cron
    library (``airflow.timetables._cron``). One next run is computed too, because a date
    that never comes (``0 0 31 2 *``) passes croniter's parser and fails the scheduler."""
    import datetime

    from croniter import CroniterBadDateError, CroniterError, croniter

    try:
        croniter(expression, datetime.datetime(2024, 1, 1)).get_next(datetime.datetime)
    except (CroniterError, ValueError) as exc:
        reason = str(exc).replace(f"[{expression}] ", "").replace("is not acceptable, ", "")
        if isinstance(exc, CroniterBadDateError):
            reason = "no date ever matches it"
        raise ScheduleError(f"{schedule!r} is not a valid cron schedule ({reason})") from None


def cron_expression(schedule: str) -> str:
    """The cron line of a schedule (presets expanded); ScheduleError for @once/@continuous."""
    text = check_schedule(schedule)
    if text in NOT_CRON:
        raise ScheduleError(f"{schedule!r} has no time of day to line up with")
    return PRESETS.get(text, text)


@dataclass(frozen=True)
class _Tick:
    period: str  # hour | day | week | month | year:<month>
    offset: int  # seconds from the start of the period


def _number(field: str, names: dict[str, int] | None = None) -> int | None:
    if field.isdigit():
        return int(field)
    if names and field.lower() in names:
        return names[field.lower()]
    return None


def _tick(expression: str) -> _Tick | None:
    """The period and offset of a cron line that fires once per period, else None."""
    minute_f, hour_f, dom_f, month_f, dow_f = expression.split()
    minute, hour = _number(minute_f), _number(hour_f)
    dom, month = _number(dom_f), _number(month_f)
    dow = _number(dow_f, _DAYS)
    if minute is None:
        return None
    if (hour_f, dom_f, month_f, dow_f) == ("*", "*", "*", "*"):
        return _Tick("hour", minute * 60)
    if hour is None:
        return None
    time_of_day = hour * 3600 + minute * 60
    if (dom_f, month_f, dow_f) == ("*", "*", "*"):
        return _Tick("day", time_of_day)
    if (dom_f, month_f) == ("*", "*") and dow is not None:
        return _Tick("week", (dow % 7) * 86400 + time_of_day)
    if dom is not None and (month_f, dow_f) == ("*", "*"):
        return _Tick("month", (dom - 1) * 86400 + time_of_day)
    if dom is not None and month is not None and dow_f == "*":
        return _Tick(f"year:{month}", (dom - 1) * 86400 + time_of_day)
    return None


def _describe(tick: _Tick | None, schedule: str) -> str:
    if tick is None:
        return f"{schedule!r} (not once per hour, day, week, month or year)"
    period = "year" if tick.period.startswith("year") else tick.period
    return f"{schedule!r} (once every {period})"


def execution_delta_seconds(upstream: str | None, downstream: str | None) -> int:
    """Seconds from the upstream run a downstream run waits for to the downstream run.

    The upstream run is the latest one at or before the downstream run, which is what an
    ``ExternalTaskSensor(execution_delta=...)`` needs. ScheduleError says why there is no
    such fixed distance.
    """
    if downstream is None or upstream is None:
        which = "downstream" if downstream is None else "upstream"
        raise ScheduleError(f"the {which} DAG has no schedule")
    down, up = cron_expression(downstream), cron_expression(upstream)
    if down == up:
        return 0
    down_tick, up_tick = _tick(down), _tick(up)
    if down_tick is None or up_tick is None or down_tick.period != up_tick.period:
        raise ScheduleError(
            f"upstream runs {_describe(up_tick, upstream)} and downstream runs "
            f"{_describe(down_tick, downstream)}: they need the same period with one run in it"
        )
    delta = down_tick.offset - up_tick.offset
    if delta < 0:
        length = _FIXED_PERIODS.get(down_tick.period)
        if length is None:  # months and years differ in length
            raise ScheduleError(
                f"downstream {downstream!r} runs before upstream {upstream!r} in each "
                f"{down_tick.period.split(':')[0]}, and the previous one is not a fixed time away"
            )
        delta += length
    return delta
