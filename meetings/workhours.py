"""Working hours, for action due dates.

An action agreed on a high-risk case is due within 4 **working hours**, medium 24, standard 72 (settings). Working
hours are the clock hours of working days: the clock stops over weekends and England bank holidays and runs the
whole of a working day. So 24 working hours from Friday 10:00 is Monday 10:00, and 4 from the Thursday 22:00 before
Good Friday is Tuesday 02:00 (Good Friday and Easter Monday are bank holidays).

Times are naive Europe/London wall-clock, like every police time (``core.timeutil``): the clock changes fall on
Sundays, which never count, so they cannot move a due date.
"""
from __future__ import annotations

import datetime as dt

from core.settings import Settings, get_settings
from dv.models import Risk
from meetings.agenda import is_meeting_day as is_working_day

DAY = dt.timedelta(days=1)


def _next_working_midnight(day: dt.date) -> dt.datetime:
    while not is_working_day(day):
        day += DAY
    return dt.datetime.combine(day, dt.time())


def add_working_hours(start: dt.datetime, hours: float) -> dt.datetime:
    """``start`` plus ``hours`` of working time. A start outside working days counts from the next working day's
    00:00; a due time landing exactly at the end of a working day is that day's 24:00 (the next day's 00:00)."""
    if hours < 0:
        raise ValueError("hours must not be negative")
    current = start if is_working_day(start.date()) else _next_working_midnight(start.date())
    remaining = dt.timedelta(hours=hours)
    while True:
        day_end = dt.datetime.combine(current.date() + DAY, dt.time())
        available = day_end - current
        if remaining <= available:
            return current + remaining
        remaining -= available
        current = _next_working_midnight(current.date() + DAY)


def due_hours(risk: Risk | str | None, settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    risk = Risk(risk) if risk else Risk.not_assessed
    return {Risk.high: settings.action_due_hours_high,
            Risk.medium: settings.action_due_hours_medium}.get(risk, settings.action_due_hours_standard)


def default_due(risk: Risk | str | None, agreed_at: dt.datetime, settings: Settings | None = None) -> dt.datetime:
    """When an action agreed at ``agreed_at`` (wall-clock) on a case of ``risk`` is due, by default."""
    return add_working_hours(agreed_at, due_hours(risk, settings)).replace(second=0, microsecond=0)
