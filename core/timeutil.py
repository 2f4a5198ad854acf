"""How DA Daily stores time.

* Times that come from the police (incident, reported, dates of birth) are stored exactly as the extract gives
  them: naive Europe/London wall-clock. They are never converted, so the October and March clock changes cannot
  move an incident from one day's window to another. Windows and deadlines (09:00 cut-off, 08:30 school start)
  are also wall-clock, so comparisons are like for like.
* Times DA Daily itself records (imported at, audit, logins) are naive UTC, in columns ending ``_utc``.
* ``london_to_utc``/``utc_to_london`` convert where the two meet (e.g. "how long after the incident was the
  school told"). In the repeated October hour, fold=0 (the first, BST, occurrence) is used.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    """Now, as naive UTC (the form system timestamps are stored in)."""
    return dt.datetime.now(UTC).replace(tzinfo=None)


def london_now() -> dt.datetime:
    """Now, as naive Europe/London wall-clock (the form police times are stored in)."""
    return dt.datetime.now(LONDON).replace(tzinfo=None)


def london_to_utc(wall: dt.datetime) -> dt.datetime:
    return wall.replace(tzinfo=LONDON, fold=0).astimezone(UTC).replace(tzinfo=None)


def utc_to_london(utc: dt.datetime) -> dt.datetime:
    return utc.replace(tzinfo=UTC).astimezone(LONDON).replace(tzinfo=None)
