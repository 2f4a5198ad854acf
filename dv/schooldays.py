"""School days and Operation Encompass deadlines.

The deadline of an alert is the start of the first school day **of that child's setting** after the incident: the
same morning when the incident was before the school day started, otherwise the next school day. A school day is a
day inside one of the setting's terms that is not a weekend, an England bank holiday (the ``holidays`` package) or
one of the setting's closure (INSET) days. Term dates come from ``data/term_dates.toml`` (``TERM_DATES_FILE``).

Everything is Europe/London wall-clock, like police times (``core.timeutil``): "08:30" is 08:30 whatever the
clock change, so the October and March changes never move a deadline.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import tomllib
from pathlib import Path

from core.settings import ROOT, get_settings

DEFAULT_FILE = ROOT / "data" / "term_dates.toml"
SEARCH_DAYS = 400  # no school day within this many days: the term dates file has run out


class TermDatesError(ValueError):
    """The term dates file is wrong; the message names the key."""


@dataclasses.dataclass(frozen=True)
class Calendar:
    terms: tuple[tuple[dt.date, dt.date], ...]
    closures: frozenset[dt.date]

    def in_term(self, day: dt.date) -> bool:
        return any(start <= day <= end for start, end in self.terms)

    @property
    def last_day(self) -> dt.date | None:
        return max((end for _, end in self.terms), default=None)


@functools.lru_cache(maxsize=16)
def _bank_holidays(year: int) -> frozenset[dt.date]:
    import holidays

    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


@dataclasses.dataclass(frozen=True)
class TermDates:
    school_day_starts: dt.time
    default: Calendar
    schools: dict[str, Calendar]

    def calendar(self, urn: str | None) -> Calendar:
        return self.schools.get(str(urn), self.default) if urn else self.default

    def is_school_day(self, urn: str | None, day: dt.date) -> bool:
        cal = self.calendar(urn)
        return (day.weekday() < 5 and day not in _bank_holidays(day.year) and day not in cal.closures
                and cal.in_term(day))

    def deadline(self, urn: str | None, incident_at: dt.datetime, *, strict: bool = False) -> dt.datetime:
        """The start of the first school day of ``urn``'s setting after ``incident_at`` (both wall-clock).

        When the file has no school day within a year of the incident (its terms have run out, or an old incident
        is imported) every weekday that is not a bank holiday counts as a school day: an alert is never left
        without a deadline and an import never fails for it. ``strict`` raises TermDatesError instead."""
        found = self._first_day(incident_at, lambda day: self.is_school_day(urn, day))
        if found is not None:
            return found
        if strict:
            raise TermDatesError(f"No school day within {SEARCH_DAYS} days of {incident_at:%d/%m/%Y} for setting "
                                 f"{urn or '(default)'}: add the next terms to the term dates file.")
        return self._first_day(incident_at, lambda day: day.weekday() < 5 and day not in _bank_holidays(day.year))

    def _first_day(self, incident_at: dt.datetime, school_day) -> dt.datetime | None:
        day = incident_at.date()
        if school_day(day) and incident_at < dt.datetime.combine(day, self.school_day_starts):
            return dt.datetime.combine(day, self.school_day_starts)
        for _ in range(SEARCH_DAYS):
            day += dt.timedelta(days=1)
            if school_day(day):
                return dt.datetime.combine(day, self.school_day_starts)
        return None


def _date(value, where: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise TermDatesError(f"{where}: '{value}' is not a date (write YYYY-MM-DD)") from None


def _calendar(table: dict, where: str, base: Calendar | None = None) -> Calendar:
    if not isinstance(table, dict):
        raise TermDatesError(f"{where} must be a table")
    unknown = set(table) - {"terms", "closures"}
    if unknown:
        raise TermDatesError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    terms = []
    for i, pair in enumerate(table.get("terms", [])):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise TermDatesError(f"{where}.terms[{i}] must be [start, end]")
        start, end = _date(pair[0], f"{where}.terms[{i}]"), _date(pair[1], f"{where}.terms[{i}]")
        if end < start:
            raise TermDatesError(f"{where}.terms[{i}]: ends before it starts")
        terms.append((start, end))
    closures = frozenset(_date(d, f"{where}.closures") for d in table.get("closures", []))
    if base is not None and "terms" not in table:  # INSET days on the authority's calendar
        return Calendar(base.terms, base.closures | closures)
    return Calendar(tuple(sorted(terms)), closures)


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> TermDates:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TermDatesError(f"Cannot read the term dates file {path}: {exc}") from None
    raw = str(data.get("school_day_starts", "08:30"))
    try:
        starts = dt.time.fromisoformat(raw)
    except ValueError:
        raise TermDatesError(f"school_day_starts: '{raw}' is not a time (write HH:MM)") from None
    if "default" not in data:
        raise TermDatesError("the [default] table (the authority's terms) is missing")
    default = _calendar(data["default"], "default")
    schools = {str(urn): _calendar(table, f'schools."{urn}"', default)
               for urn, table in (data.get("schools") or {}).items()}
    return TermDates(starts, default, schools)


def load_term_dates(path: str | Path | None = None) -> TermDates:
    """The term dates (re-read when the file changes)."""
    path = Path(path or get_settings().term_dates_file or DEFAULT_FILE)
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise TermDatesError(f"Cannot read the term dates file {path}: {exc}") from None
    return _load(str(path), mtime)
