"""Parsing the values police extracts carry: dates (day-first, Excel serials, real date cells), times,
names ("SURNAME, Forename" or "Forename Surname"), yes/no, and the normalised keys people are linked by.

Every parser raises ``ValueError`` with a message fit to show a coordinator.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import lru_cache

EXCEL_EPOCH = dt.datetime(1899, 12, 30)  # serial 1 = 1900-01-01 once Excel's phantom 29/02/1900 is allowed for
MAX_EXCEL_SERIAL = 2958465  # 31/12/9999

_DIRECTIVES = {
    "%d": r"(?P<d>\d{1,2})",
    "%m": r"(?P<m>\d{1,2})",
    "%Y": r"(?P<Y>\d{4})",
    "%y": r"(?P<y>\d{2})",
    "%H": r"(?P<H>\d{1,2})",
    "%M": r"(?P<M>\d{2})",
    "%S": r"(?P<S>\d{2})",
}
SURNAME_PARTICLES = frozenset({
    "da", "de", "del", "della", "der", "di", "do", "dos", "das", "du", "la", "le", "van", "von", "den", "ter", "ten",
    "ní", "nic", "ó", "ua", "mac", "bin", "binti", "al", "el", "st", "st.", "san", "santa",
})
_NUMERIC = re.compile(r"^\d+(\.\d+)?$")


def text(value: object) -> str | None:
    """A cell as trimmed text; None for an empty cell. Whole-number floats lose their '.0' (12345.0 -> '12345')."""
    if value.__class__ is str:  # most cells: checked first
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer():
            return str(int(value))
    return str(value).strip() or None


@lru_cache(maxsize=64)
def _compile(fmt: str) -> re.Pattern | None:
    """A strict regex for a strptime format made only of numeric directives; None means use strptime."""
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%":
            directive = fmt[i : i + 2]
            if directive not in _DIRECTIVES:
                return None
            out.append(_DIRECTIVES[directive])
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def _strptime(raw: str, fmt: str) -> dt.datetime:
    rx = _compile(fmt)
    if rx is None:
        return dt.datetime.strptime(raw, fmt)
    m = rx.match(raw)
    if not m:
        raise ValueError(raw)
    g = m.groupdict()
    if "Y" in g:
        year = int(g["Y"])
    elif "y" in g:
        yy = int(g["y"])
        year = 2000 + yy if yy < 69 else 1900 + yy  # the same pivot as strptime's %y
    else:
        year = 1900
    return dt.datetime(year, int(g.get("m") or 1), int(g.get("d") or 1), int(g.get("H") or 0),
                       int(g.get("M") or 0), int(g.get("S") or 0))


def excel_serial(serial: float) -> dt.datetime:
    if not (1 <= serial <= MAX_EXCEL_SERIAL):
        raise ValueError(f"{serial:g} is not an Excel date number")
    whole = int(serial)
    if whole < 61:  # Excel believes 1900 was a leap year; serials before its phantom 29/02/1900 are one day on
        whole += 1
    seconds = round((serial - int(serial)) * 86400)
    return EXCEL_EPOCH + dt.timedelta(days=whole, seconds=seconds)


def parse_datetime(value: object, formats: tuple[str, ...]) -> dt.datetime | None:
    """A date-time from a cell: an Excel date cell, an Excel serial number, or text in one of ``formats``
    (tried in order, strictly: 03/04/2026 is 3 April with a day-first format, never silently 4 March)."""
    cls = value.__class__
    if cls is dt.datetime:  # a date cell, as the xlsx reader gives it (checked first: most cells are)
        return value if value.tzinfo is None else value.replace(tzinfo=None)
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not a date")
    if isinstance(value, (int, float)):
        return excel_serial(float(value))
    raw = " ".join(str(value).split())
    if not raw:
        return None
    if _NUMERIC.match(raw):
        return excel_serial(float(raw))
    for fmt in formats:
        try:
            return _strptime(raw, fmt)
        except ValueError:
            continue
    raise ValueError(f"'{raw}' is not a date in the expected form ({', '.join(_example(f) for f in formats)})")


def parse_date(value: object, formats: tuple[str, ...]) -> dt.date | None:
    if value.__class__ is dt.date:  # a day cell, as the xlsx reader gives it
        return value
    parsed = parse_datetime(value, formats)
    return parsed.date() if parsed else None


def parse_time(value: object, formats: tuple[str, ...]) -> dt.time | None:
    """A time of day: an Excel time cell, a day fraction (0.5 = 12:00), text such as 14:30 or 1430, or a number
    such as 1430 (HHMM, with a profile time format %H%M)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.time()
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.timedelta):
        secs = int(round(value.total_seconds()))
        if 0 <= secs < 86400:
            return dt.time(secs // 3600, secs // 60 % 60, secs % 60)
        raise ValueError(f"'{value}' is not a time of day")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1:
        secs = round(value * 86400)
        return dt.time(secs // 3600 % 24, secs // 60 % 60, secs % 60)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer() \
            and 1 <= value < 2400:
        # A numeric HHMM cell: the xlsx reader gives 1430.0 (str() would make it "1430.0", which no format
        # matches), and a number has lost its leading zeros (00:05 is 5): back to the four digits typed.
        raw = f"{int(value):04d}"
    else:
        raw = text(value)
    if raw is None:
        return None
    for fmt in formats:
        try:
            return _strptime(raw, fmt).time()
        except ValueError:
            continue
    raise ValueError(f"'{raw}' is not a time in the expected form ({', '.join(_example(f) for f in formats)})")


def _example(fmt: str) -> str:
    return dt.datetime(2026, 11, 21, 23, 15, 0).strftime(fmt)


def parse_yes_no(value: object, yes: frozenset[str], no: frozenset[str]) -> bool | None:
    raw = text(value)
    if raw is None:
        return None
    key = " ".join(raw.split()).casefold()
    if key in yes:
        return True
    if key in no:
        return False
    if key in {"unknown", "not known", "u", "?", "n/k", "nk"}:
        return None
    raise ValueError(f"'{raw}' is not yes or no")


def split_name(value: object) -> tuple[str | None, str | None]:
    """(surname, forename) from "SURNAME, Forename" or "Forename [Middle] Surname"."""
    raw = text(value)
    if raw is None:
        return None, None
    raw = " ".join(raw.split())
    if "," in raw:
        surname, _, forename = raw.partition(",")
        return surname.strip() or None, forename.strip() or None
    parts = raw.split(" ")
    if len(parts) == 1:
        return parts[0], None
    # "Maria Da Silva", "Aoife Ní Bhriain", "Jan van der Berg": particles before the last word belong to the surname
    start = len(parts) - 1
    while start > 1 and parts[start - 1].casefold() in SURNAME_PARTICLES:
        start -= 1
    return " ".join(parts[start:]), " ".join(parts[:start])


@lru_cache(maxsize=65536)  # names repeat across an extract; a pure function of its argument
def normalise_name(value: str | None) -> str:
    """Case, accents, apostrophes, hyphens and spaces ignored: O'Brien = OBRIEN, Zoë = Zoe, Smith-Jones = smith jones."""
    if not value:
        return ""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch for ch in stripped.casefold() if ch.isalnum())


def match_key(surname: str | None, forename: str | None, dob: dt.date | None) -> str | None:
    """The key people are linked by when the force gives no person id; None when it is not safe to link
    (no date of birth, or no surname): those people are left for a coordinator to match."""
    s, f = normalise_name(surname), normalise_name(forename)
    if not s or not f or dob is None:
        return None
    return f"{s}|{f}|{dob.isoformat()}"
