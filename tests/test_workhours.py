"""Working hours for action due dates (meetings.workhours): weekends, England bank holidays (checked against the
holidays package), midnight edges, the clock-change weekends (wall-clock arithmetic never moves by an hour), the
settings per risk, and properties checked against an independent hour counter."""
from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.settings import get_settings
from dv.models import Risk
from meetings.workhours import add_working_hours, default_due, due_hours

D = dt.datetime
ENGLAND = holidays.country_holidays("GB", subdiv="ENG", years=range(2025, 2030))


def test_the_bank_holidays_these_tests_rely_on():
    assert {d: ENGLAND.get(d) for d in (dt.date(2026, 12, 25), dt.date(2026, 12, 26), dt.date(2026, 12, 28))} == {
        dt.date(2026, 12, 25): "Christmas Day", dt.date(2026, 12, 26): "Boxing Day",
        dt.date(2026, 12, 28): "Boxing Day (observed)"}
    assert dt.date(2026, 12, 25).strftime("%a") == "Fri" and dt.date(2026, 12, 28).strftime("%a") == "Mon"
    assert ENGLAND.get(dt.date(2027, 3, 26)) == "Good Friday"
    assert ENGLAND.get(dt.date(2027, 3, 29)) == "Easter Monday"
    assert dt.date(2026, 12, 29) not in ENGLAND and dt.date(2027, 3, 30) not in ENGLAND


@pytest.mark.parametrize("start,hours,due", [
    # Friday to Monday across a weekend
    (D(2026, 11, 20, 10, 0), 24, D(2026, 11, 23, 10, 0)),
    (D(2026, 11, 20, 22, 0), 4, D(2026, 11, 23, 2, 0)),
    (D(2026, 11, 20, 16, 45), 72, D(2026, 11, 25, 16, 45)),
    (D(2026, 11, 19, 12, 0), 36, D(2026, 11, 21, 0, 0)),  # 12 Thu + 24 Fri = the end of Friday: Saturday 00:00
    (D(2026, 11, 19, 12, 0), 36.5, D(2026, 11, 23, 0, 30)),
    # Christmas 2026: Fri 25 Dec, Sat 26 Dec, and Mon 28 Dec (Boxing Day's substitute) do not count
    (D(2026, 12, 24, 10, 0), 24, D(2026, 12, 29, 10, 0)),
    (D(2026, 12, 24, 22, 0), 4, D(2026, 12, 29, 2, 0)),
    (D(2026, 12, 23, 9, 0), 72, D(2026, 12, 30, 9, 0)),  # 15 Wed + 24 Thu + 24 Tue 29th + 9 Wed 30th
    (D(2026, 12, 31, 18, 0), 24, D(2027, 1, 4, 18, 0)),  # New Year's Day 2027 is a Friday
    # Easter 2027: Good Friday 26 March and Easter Monday 29 March (and the clocks go forward on the Sunday)
    (D(2027, 3, 25, 22, 0), 4, D(2027, 3, 30, 2, 0)),
    (D(2027, 3, 25, 10, 0), 24, D(2027, 3, 30, 10, 0)),
    (D(2027, 3, 24, 9, 30), 72, D(2027, 3, 31, 9, 30)),  # 14.5 Wed + 24 Thu + 24 Tue + 9.5 Wed
    # Easter 2026, the module's own example: Good Friday 3 April, Easter Monday 6 April
    (D(2026, 4, 2, 22, 0), 4, D(2026, 4, 7, 2, 0)),
])
def test_weekends_and_bank_holidays_do_not_count(start, hours, due):
    assert add_working_hours(start, hours) == due


@pytest.mark.parametrize("start,hours,due", [
    # a start on a Saturday or Sunday counts from Monday 00:00
    (D(2026, 11, 21, 15, 0), 4, D(2026, 11, 23, 4, 0)),
    (D(2026, 11, 21, 15, 0), 0, D(2026, 11, 23, 0, 0)),
    (D(2026, 11, 22, 23, 59), 1, D(2026, 11, 23, 1, 0)),
    # a start on a bank holiday counts from the next working day's 00:00
    (D(2026, 12, 25, 14, 0), 4, D(2026, 12, 29, 4, 0)),
    (D(2026, 12, 28, 9, 0), 4, D(2026, 12, 29, 4, 0)),  # the substitute Boxing Day
    (D(2027, 3, 26, 9, 0), 24, D(2027, 3, 31, 0, 0)),  # Good Friday: Tuesday 30th is the first working day
    (D(2027, 3, 29, 23, 0), 0.5, D(2027, 3, 30, 0, 30)),  # Easter Monday
])
def test_a_start_outside_working_days(start, hours, due):
    assert add_working_hours(start, hours) == due


@pytest.mark.parametrize("start,hours,due", [
    (D(2026, 11, 23, 0, 0), 0, D(2026, 11, 23, 0, 0)),
    (D(2026, 11, 23, 0, 0), 24, D(2026, 11, 24, 0, 0)),
    (D(2026, 11, 23, 0, 0), 120, D(2026, 11, 28, 0, 0)),  # Mon 00:00 + 5 days = the end of Friday
    (D(2026, 11, 23, 0, 0), 121, D(2026, 11, 30, 1, 0)),
    (D(2026, 11, 20, 0, 0), 24, D(2026, 11, 21, 0, 0)),  # exactly the end of Friday stays Friday's 24:00
    (D(2026, 11, 20, 23, 0), 1, D(2026, 11, 21, 0, 0)),
    (D(2026, 11, 20, 23, 0), 2, D(2026, 11, 23, 1, 0)),
    (D(2026, 11, 21, 0, 0), 1, D(2026, 11, 23, 1, 0)),  # Saturday's midnight is not working time
    (D(2026, 12, 24, 0, 0), 24, D(2026, 12, 25, 0, 0)),  # the end of Christmas Eve
    (D(2026, 12, 24, 0, 0), 24.25, D(2026, 12, 29, 0, 15)),
    (D(2026, 12, 28, 23, 59, 59), 0, D(2026, 12, 29, 0, 0)),
])
def test_exactly_at_midnight(start, hours, due):
    assert add_working_hours(start, hours) == due


@pytest.mark.parametrize("start,hours,due", [
    # October 2026: the clocks go back at 02:00 on Sunday 25 October
    (D(2026, 10, 23, 10, 0), 24, D(2026, 10, 26, 10, 0)),
    (D(2026, 10, 23, 22, 0), 4, D(2026, 10, 26, 2, 0)),
    (D(2026, 10, 22, 12, 0), 72, D(2026, 10, 27, 12, 0)),
    (D(2026, 10, 25, 1, 30, fold=1), 4, D(2026, 10, 26, 4, 0)),  # the repeated hour, second time round
    (D(2026, 10, 25, 1, 30, fold=0), 4, D(2026, 10, 26, 4, 0)),
    # March 2027: the clocks go forward at 01:00 on Sunday 28 March (Easter Sunday)
    (D(2027, 3, 27, 23, 30), 1, D(2027, 3, 30, 1, 0)),
    (D(2027, 3, 28, 1, 30), 4, D(2027, 3, 30, 4, 0)),  # 01:30 does not exist that day: still wall-clock
    # and a clock-change weekend without a bank holiday: the clocks go forward on Sunday 29 March 2026
    (D(2026, 3, 27, 10, 0), 24, D(2026, 3, 30, 10, 0)),
    (D(2026, 3, 27, 20, 30), 8, D(2026, 3, 30, 4, 30)),
])
def test_clock_change_weekends_are_wall_clock(start, hours, due):
    got = add_working_hours(start, hours)
    assert got == due
    assert (got.hour, got.minute) == (due.hour, due.minute)


def test_wall_clock_not_elapsed_time_across_the_october_change():
    london = ZoneInfo("Europe/London")
    start, due = D(2026, 10, 23, 10, 0), add_working_hours(D(2026, 10, 23, 10, 0), 24)
    assert due == D(2026, 10, 26, 10, 0)
    # 73 real hours pass (the clocks went back), but the due time is Monday 10:00 on the office clock
    utc = dt.timezone.utc
    assert due.replace(tzinfo=london).astimezone(utc) - start.replace(tzinfo=london).astimezone(utc) == \
        dt.timedelta(hours=73)


def test_negative_hours_are_refused():
    with pytest.raises(ValueError):
        add_working_hours(D(2026, 11, 23, 9, 0), -1)


# ------------------------------------------------------------------------------------------------ risk and settings


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("DV_ACTION_DUE_HOURS_HIGH", "DV_ACTION_DUE_HOURS_MEDIUM", "DV_ACTION_DUE_HOURS_STANDARD"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("risk,hours", [(Risk.high, 4), ("high", 4), (Risk.medium, 24), ("medium", 24),
                                        (Risk.standard, 72), (Risk.not_assessed, 72), (None, 72), ("", 72)])
def test_default_hours_by_risk(clean_env, risk, hours):
    assert due_hours(risk) == hours


def test_unknown_risk_is_refused(clean_env):
    with pytest.raises(ValueError):
        due_hours("urgent")


def test_default_due_by_risk_from_a_friday_afternoon(clean_env):
    agreed = D(2026, 11, 20, 10, 15)
    assert default_due(Risk.high, agreed) == D(2026, 11, 20, 14, 15)
    assert default_due(Risk.medium, agreed) == D(2026, 11, 23, 10, 15)
    assert default_due(Risk.standard, agreed) == D(2026, 11, 25, 10, 15)
    assert default_due(None, agreed) == D(2026, 11, 25, 10, 15)
    # seconds are dropped: a due time is shown and stored to the minute
    assert default_due("high", D(2026, 11, 20, 10, 15, 59, 999999)) == D(2026, 11, 20, 14, 15)


def test_environment_overrides(clean_env):
    clean_env.setenv("DV_ACTION_DUE_HOURS_HIGH", "8")
    clean_env.setenv("DV_ACTION_DUE_HOURS_MEDIUM", "48")
    clean_env.setenv("DV_ACTION_DUE_HOURS_STANDARD", "120")
    assert (due_hours("high"), due_hours("medium"), due_hours("standard"), due_hours(None)) == (8, 48, 120, 120)
    agreed = D(2026, 12, 24, 10, 0)
    assert default_due("high", agreed) == D(2026, 12, 24, 18, 0)
    assert default_due("medium", agreed) == D(2026, 12, 30, 10, 0)  # 14 Thu + 24 Tue + 10 Wed
    assert default_due("standard", agreed) == D(2027, 1, 5, 10, 0)  # 14 + Tue 29, Wed, Thu 31, Mon 4 + 10 Tue
    clean_env.setenv("DV_ACTION_DUE_HOURS_HIGH", "")  # empty: the default
    assert due_hours("high") == 4


def test_explicit_settings_win_over_the_environment(clean_env):
    clean_env.setenv("DV_ACTION_DUE_HOURS_MEDIUM", "48")
    s = dataclasses.replace(get_settings(), action_due_hours_medium=2)
    assert due_hours("medium", s) == 2
    assert default_due("medium", D(2026, 11, 20, 23, 0), s) == D(2026, 11, 23, 1, 0)


# ------------------------------------------------------------------------------------------------ properties


def _is_working(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in ENGLAND


def _worked(start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """Working time in [start, end), counted day by day (an oracle independent of meetings.workhours)."""
    total = dt.timedelta()
    day = start.date()
    while dt.datetime.combine(day, dt.time()) < end:
        lo = max(start, dt.datetime.combine(day, dt.time()))
        hi = min(end, dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))
        if _is_working(day) and hi > lo:
            total += hi - lo
        day += dt.timedelta(days=1)
    return total


starts = st.datetimes(min_value=D(2026, 1, 1), max_value=D(2028, 12, 31, 23, 59)).map(
    lambda d: d.replace(second=0, microsecond=0))
half_hours = st.integers(min_value=0, max_value=400).map(lambda n: n / 2)  # exact in binary floating point


@settings(max_examples=300, deadline=None)
@given(start=starts, a=half_hours, b=half_hours)
def test_adding_is_monotonic_and_additive(start, a, b):
    once = add_working_hours(start, a + b)
    assert once >= start
    assert add_working_hours(add_working_hours(start, a), b) == once
    assert add_working_hours(start, a) <= once


@settings(max_examples=300, deadline=None)
@given(start=starts, hours=half_hours)
def test_exactly_the_working_hours_asked_for_and_no_slack(start, hours):
    due = add_working_hours(start, hours)
    assert _worked(start, due) == dt.timedelta(hours=hours)
    if hours > 0:  # the last minute before the due time was working time: the due time is the earliest one
        assert _is_working((due - dt.timedelta(minutes=1)).date())
    elif _is_working(start.date()):
        assert due == start
    else:  # nothing to add, outside working days: the next working day's 00:00
        assert due.time() == dt.time() and _is_working(due.date())
        assert all(not _is_working(start.date() + dt.timedelta(days=i)) for i in range((due.date() - start.date()).days))
