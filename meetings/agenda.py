"""The daily meeting's agenda: which notifications the meeting discusses, why, in what order, and what it lists as
information only.

* **Rules** (``data/agenda.toml``, or the file ``DV_AGENDA_RULES`` names) are read by ``load_rules``: inclusion,
  MARAC thresholds, section order and titles. An unknown key or a wrong type is refused, naming the key.
* **Window**: meeting days are weekdays that are not England bank holidays. An agenda covers incidents from the
  previous meeting day's cut-off to this meeting's cut-off (``agenda_window``), all in Europe/London wall-clock as
  the police give them, so a clock change never moves an incident between agendas.
* **Build** (``build_agenda``): a draft is (re)computed from the notifications in the window, keeping what a
  coordinator did by hand (additions, removals, order); a published agenda is never reshuffled: later arrivals go
  to "late additions" (or, when no rule includes them, to information only, marked late). A notification before
  the window that was on no agenda (imported after the previous agenda was built) is carried over to the next
  one, so nothing falls between two agendas. Nothing is ever silently dropped: what no rule includes is listed as
  information only, and a removed case stays on the agenda, marked removed, with the reason.
* **Changes** (``publish_agenda``, ``add_case``, ``remove_case``, ``restore_case``, ``move_item``) are a
  coordinator's; each bumps the meeting's version, checks the version the page showed (``expected_version``) and
  writes an audit row with the old and new values in the same transaction.
* **Reading** (``agenda_view``) is the coordinator's (``read_agenda``) and scoped by
  ``core.scope.visible(user, "notification")``; ``job_agenda_view`` is the scheduled job's (the CLI).
  ``agenda_workbook`` and ``agenda_text`` render a view for partners (formula-safe xlsx, plain text).

``marac_referrals`` is the seam the meeting record (issue 5) fills with the MARAC referrals it records.
"""
from __future__ import annotations

import calendar
import datetime as dt
import functools
import json
import os
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from sqlalchemy import ColumnElement, exists, func, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from core import audit
from core.db import checked_update, is_lost_race
from core.models import Agency, User
from core.scope import can, refuse, require, visible
from core.settings import ROOT
from core.timeutil import london_to_utc, utcnow
from dv.models import MatchStatus, Notification, NotificationPerson, PersonMatch, PersonRole, Risk, Stream
from meetings.models import Action, ActionStatus, AgendaItem, Meeting, MeetingStatus

N = Notification.__table__
NP = NotificationPerson.__table__
M = Meeting.__table__
I = AgendaItem.__table__  # noqa: E741
A = Action.__table__
G = Agency.__table__
PM = PersonMatch.__table__
CHUNK = 500

ORDERED_SECTIONS = ("high_risk_children", "high_risk", "repeat_escalating", "medium_children", "other")
ADDED, LATE, INFO = "added", "late_additions", "information_only"
MANUAL_SECTIONS = (ADDED, LATE)  # where a case stays once there: a rebuild never moves it out
DEFAULT_TITLES = MappingProxyType({
    "high_risk_children": "New high risk with children",
    "high_risk": "Other high risk",
    "repeat_escalating": "Repeat and escalating",
    "medium_children": "Medium risk with children",
    "other": "Other cases",
    ADDED: "Added by the coordinator",
    LATE: "Late additions (arrived after the agenda was published)",
    INFO: "Information only",
    "overdue_actions": "Actions overdue or due today",
})
DEFAULT_RULES_PATH = ROOT / "data" / "agenda.toml"


class RulesError(ValueError):
    """The agenda rules file is missing or invalid; the message names the file and the key."""


class NotAMeetingDay(ValueError):
    """The date is a weekend day or an England bank holiday."""


class Conflict(ValueError):
    """The agenda changed after the page showed it. ``current`` holds the meeting as now stored. A ValueError, so a
    page that shows ValueErrors shows this message too."""

    def __init__(self, current: dict | None):
        super().__init__("The agenda was changed by someone else (or by a new import) after you opened it. "
                         "The page now shows the current agenda; make your change again if it is still needed.")
        self.current = current


# ------------------------------------------------------------------------------------------------------ rules


@dataclass(frozen=True)
class AgendaRules:
    cutoff: dt.time = dt.time(9, 0)
    include_crime: bool = True
    non_crime_risks: tuple[str, ...] = ("high", "medium")
    child_under_1: bool = True
    pregnancy: bool = True
    escalation_incidents: int = 3  # 0: off
    escalation_months: int = 12
    marac_repeat_months: int = 12  # 0: off
    visible_high_score: int = 14
    marac_escalation_incidents: int = 3  # 0: off
    marac_escalation_months: int = 12
    marac_flag_repeat_months: int = 12  # 0: off
    sections: tuple[str, ...] = ORDERED_SECTIONS
    titles: Mapping[str, str] = field(default_factory=lambda: DEFAULT_TITLES)
    history_months: int = 12
    source: str | None = None

    def title(self, key: str) -> str:
        return self.titles.get(key) or DEFAULT_TITLES.get(key) or key.replace("_", " ").capitalize()


# file key -> (AgendaRules attribute, kind)
_SCHEMA: dict[str, dict[str, tuple[str, str]]] = {
    "": {"cutoff": ("cutoff", "time")},
    "include": {
        "crime": ("include_crime", "bool"),
        "non_crime_risks": ("non_crime_risks", "risks"),
        "child_under_1": ("child_under_1", "bool"),
        "pregnancy": ("pregnancy", "bool"),
        "escalation_incidents": ("escalation_incidents", "count"),
        "escalation_months": ("escalation_months", "months"),
        "marac_repeat_months": ("marac_repeat_months", "months0"),
    },
    "marac": {
        "visible_high_score": ("visible_high_score", "score"),
        "escalation_incidents": ("marac_escalation_incidents", "count"),
        "escalation_months": ("marac_escalation_months", "months"),
        "repeat_months": ("marac_flag_repeat_months", "months0"),
    },
    "order": {"sections": ("sections", "sections"), "titles": ("titles", "titles")},
    "history": {"months": ("history_months", "months")},
}


def _check(name: str, kind: str, value, where: str):
    def bad(expected: str) -> RulesError:
        return RulesError(f"{where}: {name} must be {expected} (found {value!r}).")

    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind in ("count", "months", "months0", "score"):
        lo, hi, expected = {"count": (0, 100, "a whole number from 0 (off) to 100"),
                            "months": (1, 120, "a whole number of months from 1 to 120"),
                            "months0": (0, 120, "a whole number of months from 0 (off) to 120"),
                            "score": (1, 100, "a whole number from 1 to 100")}[kind]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise bad(expected)
        return value
    if kind == "time":
        try:
            if not isinstance(value, str) or len(value.strip()) != 5:
                raise ValueError
            return dt.datetime.strptime(value.strip(), "%H:%M").time()
        except ValueError:
            raise bad('a time written "HH:MM", e.g. "09:00"') from None
    if kind == "risks":
        allowed = [r.value for r in Risk]
        if not isinstance(value, list) or not all(isinstance(v, str) and v in allowed for v in value):
            raise bad(f"a list of risk grades from {allowed}")
        return tuple(dict.fromkeys(value))
    if kind == "sections":
        if (not isinstance(value, list) or sorted(value) != sorted(ORDERED_SECTIONS) or not value
                or value[-1] != "other"):
            raise bad(f"every one of {list(ORDERED_SECTIONS)} once, in the meeting's order, with \"other\" last")
        return tuple(value)
    if kind == "titles":
        if not isinstance(value, dict):
            raise bad("a table of section titles")
        for key, title in value.items():
            if key not in DEFAULT_TITLES:
                raise RulesError(f"{where}: unknown key {name}.{key} (known: {', '.join(DEFAULT_TITLES)}).")
            if not isinstance(title, str) or not title.strip():
                raise RulesError(f"{where}: {name}.{key} must be a title in quotes (found {title!r}).")
        return MappingProxyType({**DEFAULT_TITLES, **{k: v.strip() for k, v in value.items()}})
    raise AssertionError(kind)


def rules_path() -> Path:
    return Path(os.environ.get("DV_AGENDA_RULES") or DEFAULT_RULES_PATH)


def load_rules(path: str | Path | None = None) -> AgendaRules:
    """The agenda rules from ``path``, else ``DV_AGENDA_RULES``, else ``data/agenda.toml``. A key left out keeps
    its default; an unknown key or a wrong value raises ``RulesError`` naming it."""
    path = Path(path) if path is not None else rules_path()
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"The agenda rules file {where} could not be read: {exc.strerror or exc}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{where} is not valid TOML: {exc}.") from None
    except UnicodeDecodeError:
        raise RulesError(f"{where} is not UTF-8 text.") from None
    values: dict = {"source": where}
    for key, value in data.items():
        if isinstance(value, dict):
            schema = _SCHEMA.get(key)
            if schema is None or key == "":
                raise RulesError(f"{where}: unknown section [{key}] (known: "
                                 f"{', '.join('[' + s + ']' for s in _SCHEMA if s)}).")
            for sub, subvalue in value.items():
                if sub not in schema:
                    raise RulesError(f"{where}: unknown key {key}.{sub} (known in [{key}]: {', '.join(schema)}).")
                attr, kind = schema[sub]
                values[attr] = _check(f"{key}.{sub}", kind, subvalue, where)
        else:
            if key not in _SCHEMA[""]:
                raise RulesError(f"{where}: unknown key {key} (known at the top: {', '.join(_SCHEMA[''])}).")
            attr, kind = _SCHEMA[""][key]
            values[attr] = _check(key, kind, value, where)
    return AgendaRules(**values)


# ------------------------------------------------------------------------------------------------ meeting days


@functools.lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[dt.date]:
    import holidays

    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


def is_meeting_day(day: dt.date) -> bool:
    """A weekday that is not an England bank holiday."""
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def previous_meeting_day(day: dt.date) -> dt.date:
    day -= dt.timedelta(days=1)
    while not is_meeting_day(day):
        day -= dt.timedelta(days=1)
    return day


def next_meeting_day(day: dt.date) -> dt.date:
    """``day`` itself when it is a meeting day, else the next one."""
    while not is_meeting_day(day):
        day += dt.timedelta(days=1)
    return day


def _as_date(day) -> dt.date:
    return day.date() if isinstance(day, dt.datetime) else day


def agenda_window(meeting_date: dt.date, rules: AgendaRules | None = None) -> tuple[dt.datetime, dt.datetime]:
    """(start, end), naive Europe/London wall-clock: the previous meeting day at the cut-off to this meeting day at
    the cut-off. Raises ``NotAMeetingDay`` for a weekend day or a bank holiday."""
    meeting_date = _as_date(meeting_date)
    cutoff = (rules or AgendaRules()).cutoff
    if not is_meeting_day(meeting_date):
        why = "a bank holiday" if meeting_date.weekday() < 5 else f"a {meeting_date:%A}"
        raise NotAMeetingDay(f"{meeting_date:%A %d/%m/%Y} is {why}, not a meeting day; the next meeting is on "
                             f"{next_meeting_day(meeting_date):%A %d/%m/%Y}.")
    start = dt.datetime.combine(previous_meeting_day(meeting_date), cutoff)
    return start, dt.datetime.combine(meeting_date, cutoff)


# ------------------------------------------------------------------------------------------------ classification


def marac_referrals(session: Session, person_ids: Iterable[int]) -> dict[int, list[dt.date]]:
    """Each person's MARAC referral dates, as the meeting record decided them: ``{person_id: [date, ...]}`` (the
    date of each meeting that decided a MARAC referral on a notification where the person was the victim). The
    agenda always asks this function (looked up at call time), so tests can monkeypatch it."""
    from meetings.meeting import marac_referral_dates  # the meeting record imports this module

    return marac_referral_dates(session, person_ids)


def _add_months(day, months: int):
    """``day`` (a date or datetime) moved by ``months`` calendar months, the day clipped to the month's end."""
    y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
    return day.replace(year=y, month=m + 1, day=min(day.day, calendar.monthrange(y, m + 1)[1]))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _value(v):
    return v.value if hasattr(v, "value") else v


@dataclass
class _Case:
    id: int
    police_ref: str
    stream: str
    stream_reason: str
    risk: str
    dash_score: int | None
    incident_at: dt.datetime
    flag_pregnancy: bool | None
    victim_id: int | None
    children: list[dt.date | None] = field(default_factory=list)


@dataclass
class Classified:
    section: str  # one of rules.sections, or "information_only"
    reasons: list[str]
    marac_flags: list[str]
    prior_incidents: int
    key: tuple  # the order inside a section


def _sort_key(case: _Case) -> tuple:
    """DASH score, highest first (none last), then the earliest incident, then the police reference."""
    return (case.dash_score is None, -(case.dash_score or 0), case.incident_at, case.police_ref)


def classify(case: _Case, counts: Mapping[int, int], referrals: list[dt.date], rules: AgendaRules,
             window_start: dt.datetime | None = None) -> Classified:
    """Why ``case`` is on the agenda, its MARAC flags and its section. ``counts[months]`` is the number of the
    victim's incidents in that many months up to and including this one; ``referrals`` the victim's MARAC
    referral dates."""
    reasons: list[str] = []
    flags: list[str] = []
    at, day, score = case.incident_at, case.incident_at.date(), case.dash_score
    visible_high = case.risk == Risk.high.value or (score is not None and score >= rules.visible_high_score)
    if case.stream == Stream.crime.value:
        if rules.include_crime:
            reasons.append(f"crime: {case.stream_reason}")
    elif case.risk in rules.non_crime_risks:
        reasons.append(f"non-crime, {case.risk.replace('_', ' ')} risk")
    elif visible_high and Risk.high.value in rules.non_crime_risks:
        reasons.append(f"non-crime, DASH score {score} (visible high risk)")
    babies = sorted({d for d in case.children if d is not None and _add_months(d, 12) > day})
    if rules.child_under_1 and babies:
        reasons.append(f"child under 1 (born {', '.join(f'{d:%d/%m/%Y}' for d in babies)})")
    if rules.pregnancy and case.flag_pregnancy:
        reasons.append("pregnancy recorded")
    count = counts.get(rules.escalation_months, 1)
    escalating = bool(rules.escalation_incidents) and case.victim_id is not None and count >= rules.escalation_incidents
    if escalating:
        reasons.append(f"victim's {_ordinal(count)} incident in {rules.escalation_months} months")
    earlier = sorted(d for d in referrals if d <= day)
    repeat_from = [d for d in earlier if rules.marac_repeat_months and _add_months(d, rules.marac_repeat_months) >= day]
    if repeat_from:
        reasons.append(f"victim referred to MARAC on {repeat_from[-1]:%d/%m/%Y}")

    if visible_high:
        flags.append("visible high risk")
    marac_count = counts.get(rules.marac_escalation_months, 1)
    if rules.marac_escalation_incidents and case.victim_id is not None and \
            marac_count >= rules.marac_escalation_incidents:
        flags.append(f"potential escalation ({marac_count} incidents in {rules.marac_escalation_months} months)")
    if earlier and rules.marac_flag_repeat_months and _add_months(earlier[-1], rules.marac_flag_repeat_months) >= day:
        flags.append(f"repeat (MARAC referral on {earlier[-1]:%d/%m/%Y})")
    if flags and not reasons:
        reasons.append("meets a MARAC referral criterion")

    prior = max(counts.get(rules.history_months, 1) - 1, 0)
    if not reasons:
        section = INFO
    else:
        children = bool(case.children)
        fits = {
            "high_risk_children": visible_high and children,
            "high_risk": visible_high,
            "repeat_escalating": escalating or bool(repeat_from) or any(
                f.startswith(("potential escalation", "repeat")) for f in flags),
            "medium_children": case.risk == Risk.medium.value and children,
            "other": True,
        }
        section = next(s for s in rules.sections if fits[s])
    if window_start is not None and at < window_start:
        reasons.append(f"carried over: the incident ({at:%d/%m/%Y %H:%M}) is before this agenda's window and was "
                       "not on an earlier agenda")
    key = _sort_key(case) if section != INFO else (at, case.police_ref)
    return Classified(section, reasons, flags, prior, key)


def _chunks(ids: list[int]):
    for i in range(0, len(ids), CHUNK):
        yield ids[i: i + CHUNK]


def _load_cases(conn, ids: Iterable[int]) -> dict[int, _Case]:
    ids = sorted(set(ids))
    cases: dict[int, _Case] = {}
    for chunk in _chunks(ids):
        for r in conn.execute(select(N.c.id, N.c.police_ref, N.c.stream, N.c.stream_reason, N.c.risk, N.c.dash_score,
                                     N.c.incident_at, N.c.flag_pregnancy, N.c.victim_id).where(N.c.id.in_(chunk))):
            cases[r.id] = _Case(r.id, r.police_ref, _value(r.stream), r.stream_reason, _value(r.risk), r.dash_score,
                                r.incident_at, r.flag_pregnancy, r.victim_id)
        for r in conn.execute(select(NP.c.notification_id, NP.c.dob).where(
                NP.c.notification_id.in_(chunk), NP.c.role == PersonRole.child.value)):
            cases[r.notification_id].children.append(r.dob)
    return cases


def _linked_people(conn, person_ids: set[int]) -> dict[int, frozenset[int]]:
    """Each person with everyone a coordinator confirmed is the same person (``PersonMatch`` confirmed, followed
    through), so a victim's history is read across their records."""
    edges: list[tuple[int, int]] = []
    seen, frontier = set(person_ids), set(person_ids)
    for _ in range(10):  # chains of confirmed matches are short
        if not frontier:
            break
        found: set[int] = set()
        for chunk in _chunks(sorted(frontier)):
            for a, b in conn.execute(select(PM.c.person_a_id, PM.c.person_b_id).where(
                    PM.c.status == MatchStatus.confirmed.value,
                    or_(PM.c.person_a_id.in_(chunk), PM.c.person_b_id.in_(chunk)))):
                edges.append((a, b))
                found |= {a, b}
        frontier = found - seen
        seen |= found
    parent = {p: p for p in seen}

    def root(p):
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for a, b in edges:
        parent[root(a)] = root(b)
    groups: dict[int, set[int]] = defaultdict(set)
    for p in seen:
        groups[root(p)].add(p)
    return {p: frozenset(groups[root(p)]) for p in person_ids}


def _classify_all(session: Session, ids: Iterable[int], rules: AgendaRules,
                  window_start: dt.datetime | None = None) -> tuple[dict[int, _Case], dict[int, Classified]]:
    """Classify many notifications with a handful of queries: the notifications and their children, confirmed
    matches, one query for the victims' incidents (chunked only past 500 victims) and one call for MARAC
    referrals. Counting is done in Python: month arithmetic in SQL differs between SQLite and PostgreSQL."""
    conn = session.connection()
    cases = _load_cases(conn, ids)
    victims = {c.victim_id for c in cases.values() if c.victim_id is not None}
    groups = _linked_people(conn, victims)
    people = sorted(set().union(*groups.values())) if groups else []
    months = {m for m in (rules.history_months, rules.escalation_months, rules.marac_escalation_months) if m}
    history: dict[int, list[tuple[int, dt.datetime]]] = defaultdict(list)
    with_victim = [c for c in cases.values() if c.victim_id is not None]
    if with_victim and people:
        earliest = _add_months(min(c.incident_at for c in with_victim), -max(months))
        latest = max(c.incident_at for c in with_victim)
        for chunk in _chunks(people):
            for r in conn.execute(select(N.c.id, N.c.victim_id, N.c.incident_at).where(
                    N.c.victim_id.in_(chunk), N.c.incident_at >= earliest, N.c.incident_at <= latest)):
                history[r.victim_id].append((r.id, r.incident_at))
    referrals_by_person = marac_referrals(session, people) if people else {}
    out: dict[int, Classified] = {}
    for case in cases.values():
        counts: dict[int, int] = {}
        referrals: list[dt.date] = []
        if case.victim_id is not None:
            group = groups.get(case.victim_id, frozenset({case.victim_id}))
            incidents = {nid: at for p in group for nid, at in history.get(p, ()) if nid != case.id}
            for m in months:  # this incident and the victim's others in the m months up to it
                since = _add_months(case.incident_at, -m)
                counts[m] = 1 + sum(1 for at in incidents.values() if since <= at <= case.incident_at)
            referrals = sorted({d for p in group for d in referrals_by_person.get(p, ())})
        out[case.id] = classify(case, counts, referrals, rules, window_start)
    return cases, out


# ------------------------------------------------------------------------------------------------------ building


def _meeting(conn, meeting_id: int | None = None, meeting_date: dt.date | None = None, *, lock: bool = False):
    stmt = select(M).where(M.c.id == meeting_id) if meeting_id is not None else select(M).where(
        M.c.meeting_date == meeting_date)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def _meeting_summary(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {"meeting_id": row["id"], "date": row["meeting_date"], "status": _value(row["status"]),
            "version": row["version"]}


def _actor(user: User | None, actor: str | None) -> dict:
    return {} if user is not None else {"username": actor or "scheduled job"}


def _window_ids(conn, start: dt.datetime, end: dt.datetime) -> set[int]:
    return {r[0] for r in conn.execute(select(N.c.id).where(N.c.incident_at >= start, N.c.incident_at < end))}


def _carried_ids(conn, meeting_date: dt.date, start: dt.datetime) -> set[int]:
    """Notifications from the previous agenda's window start up to this window that are on no agenda: imported
    after the previous agenda was built (an incident at 08:00 in the next morning's extract, say). Without them a
    case could fall between two agendas. None before the first agenda ever built."""
    prev = conn.execute(select(M.c.window_start).where(M.c.meeting_date < meeting_date)
                        .order_by(M.c.meeting_date.desc()).limit(1)).first()
    if prev is None or prev.window_start >= start:
        return set()
    on_an_agenda = exists().where(I.c.notification_id == N.c.id)
    return {r[0] for r in conn.execute(select(N.c.id).where(
        N.c.incident_at >= prev.window_start, N.c.incident_at < start, ~on_an_agenda))}


def _merge(staying: list, incoming: list, key) -> list:
    """Items already in a section keep their order (a coordinator may have moved them); new ones go in where the
    rules' order puts them."""
    out, i, j = [], 0, 0
    while i < len(staying) and j < len(incoming):
        if key(incoming[j]) < key(staying[i]):
            out.append(incoming[j])
            j += 1
        else:
            out.append(staying[i])
            i += 1
    return out + staying[i:] + incoming[j:]


def _dumps(values: list[str]) -> str:
    return json.dumps(values, ensure_ascii=False)


def build_agenda(session: Session, user: User | None, meeting_date: dt.date, *, now: dt.datetime | None = None,
                 rules: AgendaRules | None = None, actor: str | None = None) -> int:
    """Build or refresh the agenda of ``meeting_date`` and return the meeting's id (the caller commits).

    A coordinator's (``manage_agenda``); ``user=None`` is the scheduled job / CLI (``actor`` names it in the audit
    log). A new meeting starts as a draft. A draft is recomputed from the rules: new notifications go in at their
    place, cases move to the section the rules now give them, but cases added by hand stay added, removed ones stay
    removed, and the order a coordinator set is kept. A published agenda is never reshuffled: notifications new to
    its window are added as late additions (information only when no rule includes them, marked late). A closed
    meeting is left alone. ``now`` (Europe/London wall-clock) stamps the meeting, for tests.

    Raises ``NotAMeetingDay`` (a ValueError) for a weekend day or bank holiday. On a concurrent build of the same
    agenda the session is rolled back and the build retried."""
    if user is not None:
        require(session, user, "manage_agenda")
    rules = rules or load_rules()
    meeting_date = _as_date(meeting_date)
    start, end = agenda_window(meeting_date, rules)
    for attempt in range(3):
        try:
            return _build(session, user, meeting_date, start, end, now, rules, actor)
        except (IntegrityError, OperationalError) as exc:  # another build of this agenda committed first: read it again
            session.rollback()
            if attempt == 2 or (isinstance(exc, OperationalError) and not is_lost_race(exc)):
                raise  # a real fault (disk full, a dropped connection) is not retried as if it were a race
    raise AssertionError("unreachable")


def _build(session: Session, user: User | None, meeting_date: dt.date, start: dt.datetime, end: dt.datetime,
           now: dt.datetime | None, rules: AgendaRules, actor: str | None) -> int:
    conn = session.connection()
    stamp = london_to_utc(now) if now else utcnow()
    meeting = _meeting(conn, meeting_date=meeting_date, lock=True)
    created = meeting is None
    if created:
        try:
            with session.begin_nested():
                meeting_id = conn.execute(insert(M).values(
                    meeting_date=meeting_date, window_start=start, window_end=end, status=MeetingStatus.draft,
                    created_at_utc=stamp, version=1)).inserted_primary_key[0]
        except IntegrityError:  # built a moment ago by someone else: refresh theirs instead
            meeting = _meeting(conn, meeting_date=meeting_date, lock=True)
            created = False
        else:
            meeting = _meeting(conn, meeting_id)
    meeting_id = meeting["id"]
    status = MeetingStatus(meeting["status"])
    if status == MeetingStatus.closed:
        return meeting_id
    details: dict = {"meeting_date": meeting_date, "status": status.value}
    changed = created
    window_moved = (meeting["window_start"], meeting["window_end"]) != (start, end)
    if status == MeetingStatus.published or not window_moved:
        start, end = meeting["window_start"], meeting["window_end"]
    else:  # a draft, and the cut-off in the rules changed since it was built
        details["window"] = {"old": [meeting["window_start"], meeting["window_end"]], "new": [start, end]}
        conn.execute(update(M).where(M.c.id == meeting_id).values(window_start=start, window_end=end))
        changed = True

    existing = {r["notification_id"]: dict(r) for r in conn.execute(
        select(I).where(I.c.meeting_id == meeting_id)).mappings()}
    candidates = _window_ids(conn, start, end) | _carried_ids(conn, meeting_date, start)
    if status == MeetingStatus.published:
        late = _late_additions(session, meeting_id, existing, candidates - existing.keys(), rules, start, stamp)
        if late:
            details["late_additions"] = late
            changed = True
    else:
        summary = _recompute(session, meeting_id, existing, candidates | existing.keys(), rules, start, stamp)
        if summary["added_count"] or summary["updated_count"]:
            details.update(summary)
            changed = True
    if changed:
        if not created:
            conn.execute(update(M).where(M.c.id == meeting_id).values(version=M.c.version + 1))
        details["created"] = created
        details["window_start"], details["window_end"] = start, end
        audit.record(session, user, "change", "meeting", meeting_id, **details, **_actor(user, actor))
    return meeting_id


def _row_values(cls: Classified) -> dict:
    return {"reasons": _dumps(cls.reasons), "marac_flags": _dumps(cls.marac_flags),
            "prior_incidents_12m": cls.prior_incidents}


def _recompute(session: Session, meeting_id: int, existing: dict[int, dict], ids: set[int], rules: AgendaRules,
               start: dt.datetime, stamp: dt.datetime) -> dict:
    conn = session.connection()
    cases, cls = _classify_all(session, ids, rules, start)
    target: dict[int, str] = {}
    for nid in cls:
        old = existing.get(nid)
        target[nid] = old["section"] if old and old["section"] in MANUAL_SECTIONS else cls[nid].section
    new_rows, updates = [], []
    added, moved = [], []
    for section in (*rules.sections, INFO, *MANUAL_SECTIONS):
        staying = sorted((nid for nid, old in existing.items() if old["section"] == section
                          and target.get(nid) == section), key=lambda n: (existing[n]["position"], existing[n]["id"]))
        incoming = sorted((nid for nid, s in target.items() if s == section
                           and (nid not in existing or existing[nid]["section"] != section)), key=lambda n: cls[n].key)
        for position, nid in enumerate(_merge(staying, incoming, lambda n: cls[n].key), start=1):
            values = {"section": section, "position": position, **_row_values(cls[nid])}
            old = existing.get(nid)
            if old is None:
                new_rows.append({"meeting_id": meeting_id, "notification_id": nid, "added_by_id": None,
                                 "added_reason": None, "removed": False, "removed_reason": None,
                                 "late_addition": False, "created_at_utc": stamp, "version": 1, **values})
                added.append(cases[nid].police_ref)
            elif any(old[k] != v for k, v in values.items()):
                updates.append((old["id"], values))
                if old["section"] != section:
                    moved.append({"police_ref": cases[nid].police_ref, "old": old["section"], "new": section})
    if new_rows:
        conn.execute(insert(I), new_rows)
    for item_id, values in updates:
        conn.execute(update(I).where(I.c.id == item_id).values(**values, version=I.c.version + 1))
    return {"added": added[:200], "added_count": len(added), "section_changes": moved[:200],
            "updated_count": len(updates)}


def _late_additions(session: Session, meeting_id: int, existing: dict[int, dict], new_ids: set[int],
                    rules: AgendaRules, start: dt.datetime, stamp: dt.datetime) -> list[dict]:
    if not new_ids:
        return []
    conn = session.connection()
    cases, cls = _classify_all(session, new_ids, rules, start)
    last = defaultdict(int)
    for old in existing.values():
        last[old["section"]] = max(last[old["section"]], old["position"])
    rows, out = [], []
    for nid in sorted(cls, key=lambda n: (cls[n].section == INFO, cls[n].key)):
        section = INFO if cls[nid].section == INFO else LATE
        last[section] += 1
        rows.append({"meeting_id": meeting_id, "notification_id": nid, "section": section, "position": last[section],
                     "added_by_id": None, "added_reason": None, "removed": False, "removed_reason": None,
                     "late_addition": True, "created_at_utc": stamp, "version": 1, **_row_values(cls[nid])})
        out.append({"police_ref": cases[nid].police_ref, "section": section})
    conn.execute(insert(I), rows)
    return out


# ------------------------------------------------------------------------------------------------------ changes


def _claim(session: Session, meeting_id: int, expected_version: int | None, *, extra=()) -> dict:
    """Bump the meeting's version, if it still has ``expected_version`` (any version when None) and is not closed:
    the row lock serialises concurrent edits, and a stale page gets ``Conflict``."""
    stmt = update(M).where(M.c.id == meeting_id, M.c.status != MeetingStatus.closed.value, *extra)
    if expected_version is not None:
        stmt = stmt.where(M.c.version == expected_version)
    if not checked_update(session, stmt.values(version=M.c.version + 1)):
        current = _meeting(session.connection(), meeting_id)
        session.rollback()
        if current is None:
            raise ValueError("That meeting does not exist.")
        if MeetingStatus(current["status"]) == MeetingStatus.closed:
            raise ValueError(f"The meeting of {current['meeting_date']:%d/%m/%Y} is closed: its agenda is final.")
        raise Conflict(_meeting_summary(current))
    return _meeting(session.connection(), meeting_id)


def publish_agenda(session: Session, user: User | None, meeting_id: int, expected_version: int, *,
                   now: dt.datetime | None = None, actor: str | None = None) -> dict:
    """Publish a draft agenda: from now on it is stable (later imports only add late additions). ``user=None`` is
    the scheduled job. Raises ``Conflict`` when the agenda changed since ``expected_version``."""
    if user is not None:
        require(session, user, "manage_agenda")
    old = _meeting(session.connection(), meeting_id)
    if old is None:
        raise ValueError("That meeting does not exist.")
    if MeetingStatus(old["status"]) != MeetingStatus.draft:
        raise ValueError(f"The agenda of {old['meeting_date']:%d/%m/%Y} is already {_value(old['status'])}.")
    _claim(session, meeting_id, expected_version, extra=(M.c.status == MeetingStatus.draft.value,))
    stamp = london_to_utc(now) if now else utcnow()
    session.connection().execute(update(M).where(M.c.id == meeting_id).values(
        status=MeetingStatus.published, published_at_utc=stamp, published_by_id=user.id if user else None))
    audit.record(session, user, "change", "meeting", meeting_id, meeting_date=old["meeting_date"],
                 old={"status": "draft"}, new={"status": "published", "published_at_utc": stamp},
                 **_actor(user, actor))
    return _meeting_summary(_meeting(session.connection(), meeting_id))


def _item(conn, item_id: int) -> dict | None:
    row = conn.execute(select(I, N.c.police_ref).join(N, N.c.id == I.c.notification_id)
                       .where(I.c.id == item_id)).mappings().first()
    return dict(row) if row else None


def _next_position(conn, meeting_id: int, section: str) -> int:
    return (conn.execute(select(func.max(I.c.position)).where(I.c.meeting_id == meeting_id, I.c.section == section))
            .scalar() or 0) + 1


def add_case(session: Session, user: User, meeting_id: int, police_ref: str, reason: str, *,
             expected_version: int | None = None, rules: AgendaRules | None = None) -> int:
    """Put a notification on the agenda by hand, with the reason (section "added"): one outside the window, one
    no rule included (information only), or one removed earlier. Returns the item id."""
    require(session, user, "manage_agenda")
    reason, ref = (reason or "").strip(), (police_ref or "").strip()
    if not ref:
        raise ValueError("Give the police reference of the case to add.")
    if not reason:
        raise ValueError("Say why the case should be discussed.")
    conn = session.connection()
    found = conn.execute(select(N.c.id).where(N.c.police_ref == ref, visible(user, "notification"))).all()
    if not found:
        raise ValueError(f"No notification has the police reference {ref}.")
    if len(found) > 1:
        raise ValueError(f"More than one force uses the police reference {ref}; ask for the case to be added "
                         "from its notification.")
    nid = found[0][0]
    meeting = _claim(session, meeting_id, expected_version)
    old = conn.execute(select(I).where(I.c.meeting_id == meeting_id, I.c.notification_id == nid)).mappings().first()
    if old is not None and not old["removed"] and old["section"] != INFO:
        session.rollback()
        raise ValueError(f"{ref} is already on this agenda.")
    position = _next_position(conn, meeting_id, ADDED)
    values = {"section": ADDED, "position": position, "added_by_id": user.id, "added_reason": reason,
              "removed": False, "removed_reason": None}
    if old is None:
        _, cls = _classify_all(session, [nid], rules or load_rules(), meeting["window_start"])
        item_id = conn.execute(insert(I).values(
            meeting_id=meeting_id, notification_id=nid, late_addition=False, created_at_utc=utcnow(), version=1,
            **values, **_row_values(cls[nid]))
        ).inserted_primary_key[0]
        before = None
    else:
        item_id = old["id"]
        conn.execute(update(I).where(I.c.id == item_id).values(**values, version=I.c.version + 1))
        before = {k: old[k] for k in ("section", "position", "removed", "removed_reason", "added_reason")}
    audit.record(session, user, "change", "notification", nid, what="agenda: case added", meeting_id=meeting_id,
                 meeting_date=meeting["meeting_date"], item_id=item_id, police_ref=ref, old=before,
                 new={"section": ADDED, "position": position, "added_reason": reason})
    return item_id


def remove_case(session: Session, user: User, item_id: int, reason: str, *,
                expected_version: int | None = None) -> None:
    """Take a case off the agenda, with the reason. It stays listed, marked removed (never dropped)."""
    _set_removed(session, user, item_id, True, reason, expected_version)


def restore_case(session: Session, user: User, item_id: int, *, expected_version: int | None = None) -> None:
    """Undo a removal: the case is discussed again, where it was."""
    _set_removed(session, user, item_id, False, None, expected_version)


def _set_removed(session: Session, user: User, item_id: int, removed: bool, reason: str | None,
                 expected_version: int | None) -> None:
    require(session, user, "manage_agenda")
    reason = (reason or "").strip() or None
    if removed and not reason:
        raise ValueError("Say why the case is taken off the agenda.")
    conn = session.connection()
    item = _item(conn, item_id)
    if item is None:
        raise ValueError("That agenda item does not exist.")
    meeting = _claim(session, item["meeting_id"], expected_version)
    result = conn.execute(update(I).where(I.c.id == item_id, I.c.removed == (not removed))
                          .values(removed=removed, removed_reason=reason, version=I.c.version + 1))
    if result.rowcount != 1:
        session.rollback()
        raise ValueError(f"{item['police_ref']} is {'already off' if removed else 'already on'} the agenda.")
    audit.record(session, user, "change", "notification", item["notification_id"],
                 what="agenda: case removed" if removed else "agenda: case restored", meeting_id=item["meeting_id"],
                 meeting_date=meeting["meeting_date"], item_id=item_id, police_ref=item["police_ref"],
                 old={"removed": item["removed"], "removed_reason": item["removed_reason"]},
                 new={"removed": removed, "removed_reason": reason})


def move_item(session: Session, user: User, item_id: int, direction: int | str | None = None, *,
              new_position: int | None = None, expected_version: int | None = None) -> bool:
    """Move a case within its section: ``direction`` -1/"up" or +1/"down", or to ``new_position`` (1 = first in
    the section). Returns False when it is already there (nothing changed)."""
    require(session, user, "manage_agenda")
    steps = {-1: -1, 1: 1, "up": -1, "down": 1}
    if (direction is None) == (new_position is None) or (direction is not None and direction not in steps) or (
            new_position is not None and (not isinstance(new_position, int) or new_position < 1)):
        raise ValueError("Say where to move the case: up, down or a position from 1.")
    conn = session.connection()
    item = _item(conn, item_id)
    if item is None:
        raise ValueError("That agenda item does not exist.")
    meeting = _claim(session, item["meeting_id"], expected_version)
    rows = conn.execute(select(I.c.id, I.c.position, N.c.police_ref).join(N, N.c.id == I.c.notification_id).where(
        I.c.meeting_id == item["meeting_id"], I.c.section == item["section"]).order_by(I.c.position, I.c.id)).all()
    order = [r.id for r in rows]
    index = order.index(item_id)
    target = index + steps[direction] if direction is not None else new_position - 1
    target = max(0, min(len(order) - 1, target))
    if target == index:
        session.rollback()
        return False
    order.insert(target, order.pop(index))
    refs = {r.id: r.police_ref for r in rows}
    was = {r.id: r.position for r in rows}
    for position, iid in enumerate(order, start=1):
        if was[iid] != position:
            conn.execute(update(I).where(I.c.id == iid).values(position=position, version=I.c.version + 1))
    audit.record(session, user, "change", "meeting", item["meeting_id"], what="agenda: order",
                 meeting_date=meeting["meeting_date"], section=item["section"], police_ref=item["police_ref"],
                 old=[refs[r.id] for r in rows], new=[refs[i] for i in order])
    return True


# ------------------------------------------------------------------------------------------------------ reading


def agenda_view(session: Session, user: User, meeting_date: dt.date, *, rules: AgendaRules | None = None,
                log_view: bool = True, overdue_actions: bool = True) -> dict:
    """The agenda of ``meeting_date`` as the coordinator sees it (``read_agenda``; notifications through
    ``visible(user, "notification")``). With no agenda yet, ``meeting_id`` is None (and ``note`` says why when
    the date is not a meeting day). ``log_view`` audits the view: pass it once per page visit.
    ``overdue_actions=False`` skips the actions review (the Meeting page, which reruns on every click, shows none)."""
    if not can(user, "read_agenda"):
        raise refuse(session, user, "read_agenda", "meeting")
    return _view(session, user, _as_date(meeting_date), visible(user, "notification"), visible(user, "action"),
                 rules or load_rules(), log_view, {}, overdue_actions)


def job_agenda_view(session: Session, meeting_date: dt.date, *, actor: str = "cli",
                    rules: AgendaRules | None = None) -> dict:
    """The agenda for the scheduled job (``python -m dv agenda``): the whole hub's, audited as read by ``actor``.
    Pages use ``agenda_view`` with the signed-in user."""
    return _view(session, None, _as_date(meeting_date), true(), true(), rules or load_rules(), True,
                 {"username": actor})


def _people(conn, ids: list[int]) -> tuple[dict[int, str], dict[int, int]]:
    victims, children = {}, defaultdict(int)
    for chunk in _chunks(sorted(set(ids))):
        for r in conn.execute(select(NP.c.notification_id, NP.c.role, NP.c.surname, NP.c.forename, NP.c.position)
                              .where(NP.c.notification_id.in_(chunk),
                                     NP.c.role.in_([PersonRole.victim.value, PersonRole.child.value]))):
            if _value(r.role) == PersonRole.child.value:
                children[r.notification_id] += 1
            elif r.position == 0:
                victims[r.notification_id] = ", ".join(x for x in (r.surname, r.forename) if x)
    return victims, children


def _overdue_actions(conn, where: ColumnElement[bool], meeting_date: dt.date, cutoff: dt.datetime) -> list[dict]:
    """Open or in-progress actions due before the end of the meeting day: overdue (due before the cut-off) first,
    as ``meetings.actions.list_actions`` orders them."""
    day_end = dt.datetime.combine(meeting_date + dt.timedelta(days=1), dt.time())
    stmt = (select(A.c.id.label("action_id"), A.c.notification_id, N.c.police_ref, G.c.name.label("agency"),
                   A.c.owner, A.c.description, A.c.due_at, A.c.status, A.c.version)
            .join(N, N.c.id == A.c.notification_id).join(G, G.c.id == A.c.agency_id)
            .where(where, A.c.status.in_([ActionStatus.open.value, ActionStatus.in_progress.value]),
                   A.c.due_at.is_not(None), A.c.due_at < day_end)
            .order_by(A.c.due_at, A.c.id))
    rows = []
    for r in conn.execute(stmt).mappings():
        row = dict(r)
        row["status"] = _value(row["status"])
        row["overdue"] = row["due_at"] < cutoff
        rows.append(row)
    return rows


def _view(session: Session, user: User | None, meeting_date: dt.date, notif_where, action_where,
          rules: AgendaRules, log_view: bool, who: dict, overdue_actions: bool = True) -> dict:
    conn = session.connection()
    meeting = _meeting(conn, meeting_date=meeting_date)
    view: dict = {"date": meeting_date, "meeting_id": None, "status": None, "version": None, "meeting_day": True,
                  "note": None, "window_start": None, "window_end": None, "published_at_utc": None,
                  "sections": [], "items": [], "late_additions": [], "information_only": [],
                  "overdue_actions": [], "titles": {k: rules.title(k) for k in DEFAULT_TITLES}}
    if meeting is not None:
        view.update(meeting_id=meeting["id"], status=_value(meeting["status"]), version=meeting["version"],
                    window_start=meeting["window_start"], window_end=meeting["window_end"],
                    published_at_utc=meeting["published_at_utc"], meeting_day=is_meeting_day(meeting_date))
    else:
        try:
            view["window_start"], view["window_end"] = agenda_window(meeting_date, rules)
        except NotAMeetingDay as exc:
            view.update(meeting_day=False, note=str(exc))
    cutoff = view["window_end"] or dt.datetime.combine(meeting_date, rules.cutoff)
    if overdue_actions:
        view["overdue_actions"] = _overdue_actions(conn, action_where, meeting_date, cutoff)
    if meeting is None:
        return view

    rows = [dict(r) for r in conn.execute(
        select(I.c.id.label("item_id"), I.c.notification_id, I.c.section, I.c.position, I.c.reasons,
               I.c.marac_flags, I.c.prior_incidents_12m, I.c.added_reason, I.c.removed, I.c.removed_reason,
               I.c.late_addition, I.c.version, N.c.police_ref, N.c.stream, N.c.risk, N.c.dash_score,
               N.c.incident_at)
        .join(N, N.c.id == I.c.notification_id)
        .where(I.c.meeting_id == meeting["id"], notif_where)
        .order_by(I.c.position, I.c.id)).mappings()]
    victims, children = _people(conn, [r["notification_id"] for r in rows])
    by_section: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        r.update(stream=_value(r["stream"]), risk=_value(r["risk"]), reasons=json.loads(r["reasons"] or "[]"),
                 marac_flags=json.loads(r["marac_flags"] or "[]"), victim=victims.get(r["notification_id"], ""),
                 children=children.get(r["notification_id"], 0), section_position=r.pop("position"))
        by_section[r["section"]].append(r)
    order = [*rules.sections, ADDED, LATE]
    order += sorted(s for s in by_section if s not in order and s != INFO)  # a section no longer in the rules
    number = 0
    for key in order:
        items = by_section.get(key, [])
        for item in items:
            number += 1
            item["position"] = number
        view["sections"].append({"key": key, "title": rules.title(key), "items": items})
        view["items"].extend(items)
    view["late_additions"] = by_section.get(LATE, [])
    for i, item in enumerate(by_section.get(INFO, []), start=1):
        item["position"] = i
    view["information_only"] = by_section.get(INFO, [])
    if log_view:
        audit.record(session, user, "view", "meeting", meeting["id"], meeting_date=meeting_date,
                     items=len(view["items"]), information_only=len(view["information_only"]), **who)
    return view


CLI_ITEM_KEYS = ("position", "section", "police_ref", "stream", "risk", "reasons", "marac_flags",
                 "prior_incidents_12m")
CLI_ACTION_KEYS = ("police_ref", "agency", "description", "due_at", "status", "overdue")


def cli_payload(view: dict) -> dict:
    """The view in the shape ``python -m dv agenda --json`` prints (dates ISO). A removed case is listed with
    section "removed"."""
    def iso(v):
        return v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v

    def item(i):
        out = {k: i[k] for k in CLI_ITEM_KEYS}
        if i.get("removed"):
            out["section"] = "removed"
        return out

    return {"date": iso(view["date"]), "window_start": iso(view["window_start"]), "window_end": iso(view["window_end"]),
            "items": [item(i) for i in view["items"]],
            "information_only": [item(i) for i in view["information_only"]],
            "overdue_actions": [{k: iso(a[k]) for k in CLI_ACTION_KEYS} for a in view["overdue_actions"]]}


# ------------------------------------------------------------------------------------------------------ exports


def _status(item: dict) -> str:
    parts = []
    if item.get("removed"):
        parts.append(f"REMOVED: {item.get('removed_reason') or ''}".strip())
    if item.get("late_addition"):
        parts.append("late addition")
    return "; ".join(parts)


AGENDA_HEADERS = ("No.", "Section", "Police ref", "Stream", "Risk", "DASH score", "Incident", "Victim", "Children",
                  "Earlier incidents (12 months)", "Why on the agenda", "MARAC flags", "Added because", "Status")
ACTION_HEADERS = ("Police ref", "Agency", "Owner", "Action", "Due", "Status", "Overdue")


def _label(v: str | None) -> str:
    return (v or "").replace("_", " ")


def agenda_workbook(view: dict) -> bytes:
    """The agenda as a workbook for partners: "Agenda" (the cases in the meeting's order, then information only)
    and "Overdue actions"; bold frozen headers, widths, wrapped text, A4 landscape; every cell formula-safe
    (``core.exports``). The caller audits the export."""
    from core.exports import xlsx_bytes

    titles = view.get("titles") or DEFAULT_TITLES
    rows = []
    for section in view["sections"]:
        for i in section["items"]:
            rows.append(_export_row(i, section["title"]))
    for i in view["information_only"]:
        rows.append(_export_row(i, titles.get(INFO, "Information only")))
    actions = [[a["police_ref"], a["agency"], a.get("owner"), a["description"], a["due_at"], _label(a["status"]),
                "overdue" if a["overdue"] else "due today"] for a in view["overdue_actions"]]
    return xlsx_bytes({"Agenda": (AGENDA_HEADERS, rows), "Overdue actions": (ACTION_HEADERS, actions)},
                      landscape=True)


def _export_row(i: dict, section_title: str) -> list:
    return [i["position"], section_title, i["police_ref"], _label(i["stream"]), _label(i["risk"]), i["dash_score"],
            i["incident_at"], i["victim"], i["children"], i["prior_incidents_12m"], "; ".join(i["reasons"]),
            "; ".join(i["marac_flags"]), i.get("added_reason") or "", _status(i)]


def agenda_text(view: dict) -> str:
    """A print-friendly plain-text agenda (shown with ``st.text``, never as Markdown). Removed cases stay in
    place, marked REMOVED with the reason."""
    titles = view.get("titles") or DEFAULT_TITLES
    day = view["date"]
    lines = [f"Daily domestic abuse meeting: agenda for {day:%A %d/%m/%Y}"
             + (f" ({view['status']})" if view.get("status") else "")]
    if view.get("window_start"):
        lines.append(f"Notifications from {view['window_start']:%a %d/%m/%Y %H:%M} "
                     f"to {view['window_end']:%a %d/%m/%Y %H:%M}")
    if view.get("meeting_id") is None:
        lines.append(view.get("note") or "There is no agenda for this date yet.")

    def case_lines(i: dict) -> list[str]:
        score = f", DASH {i['dash_score']}" if i["dash_score"] is not None else ""
        mark = "REMOVED - " if i["removed"] else ""
        out = [f"{i['position']:>3}. {mark}{i['police_ref']}  {_label(i['stream'])}, {_label(i['risk'])} risk{score}, "
               f"incident {i['incident_at']:%a %d/%m/%Y %H:%M}",
               f"     Victim: {i['victim'] or '-'}; children: {i['children']}; "
               f"earlier incidents (12 months): {i['prior_incidents_12m']}"]
        if i["reasons"]:
            out.append("     Why: " + "; ".join(i["reasons"]))
        if i.get("added_reason"):
            out.append("     Added because: " + i["added_reason"])
        if i["marac_flags"]:
            out.append("     MARAC: " + "; ".join(i["marac_flags"]))
        if i.get("late_addition"):
            out.append("     Late addition (arrived after the agenda was published)")
        if i["removed"]:
            out.append("     Removed because: " + (i.get("removed_reason") or ""))
        return out

    for section in view["sections"]:
        if not section["items"]:
            continue
        lines += ["", section["title"].upper()]
        for i in section["items"]:
            lines += case_lines(i)
    if view["information_only"]:
        lines += ["", titles.get(INFO, "Information only").upper()]
        for i in view["information_only"]:
            lines += case_lines(i)
    lines += ["", titles.get("overdue_actions", "Actions overdue or due today").upper()]
    if not view["overdue_actions"]:
        lines.append("  None.")
    for a in view["overdue_actions"]:
        when = "OVERDUE" if a["overdue"] else "due today"
        lines.append(f"  {a['police_ref']}  {a['agency']}: {a['description']} "
                     f"(due {a['due_at']:%d/%m/%Y %H:%M}, {when}, {_label(a['status'])})")
    return "\n".join(lines) + "\n"


__all__ = ["AgendaRules", "Conflict", "NotAMeetingDay", "RulesError", "add_case", "agenda_text", "agenda_view",
           "agenda_window", "agenda_workbook", "build_agenda", "classify", "cli_payload", "is_meeting_day",
           "job_agenda_view", "load_rules", "marac_referrals", "move_item", "next_meeting_day",
           "previous_meeting_day", "publish_agenda", "remove_case", "restore_case"]
