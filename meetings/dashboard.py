"""The performance dashboard (issue 7): the hub's figures for a date range, aggregated in SQL.

Every figure is a GROUP BY run by the database; Python only folds the aggregated groups (one per day x stream x
risk, per agency x bin of days to complete, per bucket x hour: a few thousand at most) into buckets and tables.
The per-notification facts (children, a child under 5, earlier incidents of the victim, MARAC referral) are set-
based on PostgreSQL (a window over the victims' notifications, hash joins) and indexed correlated look-ups on
SQLite (cheaper there than a window's sort); the benchmark, ``bench/dashboard_bench.py``, measured each choice.
Nothing here returns a record:
no names, no police references, no ids — the read-only manager role sees these figures and nothing else, which is
why the queries carry no ``core.scope.visible`` filter (a manager's ``visible`` is ``false()`` for every case
table) but the whole function is guarded by ``require(session, user, "view_dashboard")``.

Definitions (where the issue was silent):

* **Range**: ``start`` and ``end`` are dates, both included, Europe/London wall-clock days. Notifications, risk,
  children and repeats count by incident time; meetings by meeting date; actions by when they were agreed
  (``created_at_utc``, the range's London midnights converted to UTC); Encompass alerts by incident time (as
  ``dv.encompass.timeliness`` does).
* **Buckets**: ``month`` (key: the 1st of the month) or ``week`` (ISO weeks, key: the Monday). Computed in SQL:
  ``strftime`` on SQLite, ``to_char(date_trunc(...))`` on PostgreSQL.
* **Force / district**: ``force`` filters on the notification's force; ``district`` on the postcode's outward code
  (``"NG5"``: the postcode without spaces, less its last three characters). Both filters apply to everything that
  hangs off a notification (cases and decisions, actions, alerts); meeting counts and attendance are hub-wide.
* **Repeat victim**: the notification's victim (same person record) had another notification whose incident was
  earlier and within ``DV_PRIOR_INCIDENT_DAYS`` (365) days before; **escalation**: at least two such (the 3rd+
  incident in 12 months); **MARAC repeat**: the victim was referred to MARAC (a ``marac_referral`` decision, dated
  by its meeting) within the same period before the incident.
* **Child under 5**: a child whose date of birth is less than five years before the incident.
* **Actions**: *on time* = done with ``completed_at_utc`` at or before the due time. ``due_at`` is Europe/London
  wall-clock and ``completed_at_utc`` is UTC: the due time is converted to UTC in SQL by subtracting an hour when
  it falls in British Summer Time (a CASE over the BST periods of the years concerned, built from
  ``zoneinfo``; the repeated October hour counts as BST, like ``core.timeutil.london_to_utc``'s fold=0).
  *Overdue now* = open or in progress and due before now (wall-clock). *Median days to complete* = done actions,
  agreed to completed (both UTC).
* **Attendance**: per agency over the meetings held (opened or closed) in the range; an agency with several
  attendees counts its best (present > apologies > absent); an agency with nobody recorded is absent.
* **Encompass**: *notified before the deadline* = notified at or before ``due_at`` (converted as above); hours
  from incident to notification convert the incident to UTC the same way.
* **Medians** are computed by the database: ``percentile_cont(0.5)`` on PostgreSQL, in the same GROUP BY as the
  counts (``GROUPING SETS`` add the median of all agencies, or of the whole range, to the per-agency or per-bucket
  rows). On SQLite the counts' GROUP BY also groups by a bin of the value (an eighth of a day, an hour), and that
  histogram says which bin holds each middle row and its rank there; a second pass ranks only the rows of those
  few bins (``row_number``). Whole seconds per case are their own bins. Exact, like sorting every value.
* **Small-number suppression** (``DV_SUPPRESS_BELOW``, default 5) happens only in exports meant to leave the hub
  (``workbook_bytes(..., suppress=True)``): counts from 1 to 4 become "<5", and so does a share whose numerator
  was suppressed. Zero stays zero. The live page never suppresses.
"""
from __future__ import annotations

import calendar
import datetime as dt
import io
from collections import defaultdict
from typing import Any

from sqlalchemy import (Date, Integer, and_, case, cast, exists, false, func, literal, literal_column, not_, or_,
                        select, text, true, tuple_, union_all)
from sqlmodel import Session

from core import audit
from core.models import Agency, User
from core.scope import require
from core.settings import Settings, get_settings
from core.timeutil import london_now, london_to_utc, utcnow
from dv.models import AlertStatus, EncompassAlert, Notification, NotificationPerson, Risk
from meetings.models import Action, CaseDecision, CaseRecord, Decision, Meeting, MeetingAttendee

N = Notification.__table__
NP = NotificationPerson.__table__
E = EncompassAlert.__table__
A = Action.__table__
G = Agency.__table__
M = Meeting.__table__
CR = CaseRecord.__table__
CD = CaseDecision.__table__
MA = MeetingAttendee.__table__

BUCKETS = ("month", "week")
STREAMS = ("crime", "non_crime")
RISKS = tuple(r.value for r in (Risk.standard, Risk.medium, Risk.high, Risk.not_assessed))
CSC_DECISIONS = (Decision.csc_referral.value, Decision.strategy_discussion.value)
SECTIONS = ("notifications", "risk", "children", "repeats", "areas", "meetings", "actions", "encompass")


# ------------------------------------------------------------------------------------------------ SQL dialects


class _Sql:
    """The few expressions SQLite and PostgreSQL spell differently."""

    def __init__(self, dialect: str):
        self.pg = dialect == "postgresql"

    def day(self, col):
        """'YYYY-MM-DD' of a datetime or date column."""
        return func.to_char(col, "YYYY-MM-DD") if self.pg else func.strftime("%Y-%m-%d", col)

    def day_key(self, col):
        """The day of a datetime column, cheaply: the first ten characters of SQLite's stored text
        ('YYYY-MM-DD HH:MM:SS.ffffff', as SQLAlchemy writes it; ``strftime`` costs a parse per row), a date on
        PostgreSQL. Either way the caller gets 'YYYY-MM-DD' after ``isoformat``."""
        return cast(col, Date) if self.pg else func.substr(col, 1, 10)

    def bucket(self, col, bucket: str):
        """The bucket's first day, 'YYYY-MM-DD': the 1st of the month, or the ISO week's Monday."""
        if self.pg:
            return func.to_char(func.date_trunc("week" if bucket == "week" else "month", col), "YYYY-MM-DD")
        if bucket == "week":  # 'weekday 0' moves forward to Sunday (or stays), then back six days: the Monday
            return func.date(col, "weekday 0", "-6 days")
        # 'YYYY-MM' of the stored text (a date or SQLAlchemy's 'YYYY-MM-DD HH:MM:SS.ffffff'), without a parse
        return func.substr(col, 1, 7).concat("-01")

    def to_date(self, col):
        return cast(col, Date) if self.pg else func.date(col)

    def minus_days(self, col, days: int):
        return col - literal_column(f"interval '{int(days)} days'") if self.pg else func.datetime(col, f"-{int(days)} days")

    def minus_years_date(self, col, years: int):
        if self.pg:
            return cast(col - literal_column(f"interval '{int(years)} years'"), Date)
        return func.date(col, f"-{int(years)} years")

    def minus_hour(self, col):
        """``col`` an hour earlier, in the column's own storage form (so comparisons stay exact)."""
        if self.pg:
            return col - literal_column("interval '1 hour'")
        # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff'; %f is 'SS.sss': pad to microseconds
        return func.strftime("%Y-%m-%d %H:%M:%f", col, "-1 hours").concat("000")

    def hours(self, earlier, later):
        """(later - earlier) in hours, as a float."""
        if self.pg:
            return func.date_part("epoch", later - earlier) / 3600.0
        return (func.julianday(later) - func.julianday(earlier)) * 24.0

    def outward(self, col):
        """A postcode's outward code ('NG5 1AA' / 'ng51aa' -> 'NG5'): portable substr/replace/length."""
        squashed = func.upper(func.replace(col, " ", ""))
        return func.substr(squashed, 1, func.length(squashed) - 3)


def _last_sunday(year: int, month: int) -> dt.date:
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


def bst_periods(years) -> list[tuple[dt.datetime, dt.datetime]]:
    """British Summer Time as wall-clock [start, end): from 02:00 on the last Sunday of March (01:00-02:00 does not
    exist; zoneinfo's fold=0 reads it as GMT) to 02:00 on the last Sunday of October (the repeated 01:00 hour
    is BST with fold=0). Checked against zoneinfo in the tests."""
    out = []
    for y in sorted(set(years)):
        out.append((dt.datetime.combine(_last_sunday(y, 3), dt.time(2)),
                    dt.datetime.combine(_last_sunday(y, 10), dt.time(2))))
    return out


def _wall_to_utc(sql: _Sql, col, years):
    """A Europe/London wall-clock column as naive UTC, in SQL."""
    periods = bst_periods(years)
    if not periods:
        return col
    in_bst = or_(*[and_(col >= a, col < b) for a, b in periods])
    return case((in_bst, sql.minus_hour(col)), else_=col)


def _utc_not_after_wall(sql: _Sql, utc, wall, years):
    """``utc <= _wall_to_utc(wall)``: a UTC column at or before the instant of a wall-clock one (done by the due
    time). The same truth value (NULL included), cheaper on SQLite, where moving a stored time by an hour is a
    ``strftime`` per row. In order, with text comparisons of the stored 'YYYY-MM-DD HH:MM:SS.ffffff': a time
    after the wall-clock one is late in any season; one on an earlier date than a wall-clock time of 01:00 or
    later is before it less an hour, so on time in any season (most actions are done before the day they are
    due); one outside British Summer Time is compared as it is. Only what is left, the same day in summer, is
    moved an hour."""
    periods = bst_periods(years)
    if sql.pg or not periods:
        return utc <= _wall_to_utc(sql, wall, years)
    in_bst = or_(*[and_(wall >= a, wall < b) for a, b in periods])
    return case((utc > wall, false()),
                (and_(utc < func.substr(wall, 1, 10), func.substr(wall, 12, 2) >= "01"), true()),
                (not_(in_bst), utc <= wall),
                else_=utc <= sql.minus_hour(wall))


def _wall_to_utc_hours(periods_years, col):
    """The hours to add to (utc - wall) differences for a wall-clock column: 1.0 in BST, else 0.0."""
    periods = bst_periods(periods_years)
    if not periods:
        return literal(0.0)
    return case((or_(*[and_(col >= a, col < b) for a, b in periods]), 1.0), else_=0.0)


# ------------------------------------------------------------------------------------------------ medians


def _positions(hist: dict) -> list[tuple[Any, int]]:
    """The middle one or two rows of a histogram {bin: count} (bins ordered like the values): [(bin, rank within
    the bin, 1-based)], or [] when it is empty."""
    n = sum(hist.values())
    if not n:
        return []
    out, seen = [], 0
    wanted = sorted({(n - 1) // 2, n // 2})  # 0-based positions of the middle row(s)
    for b in sorted(hist):
        c = hist[b]
        while wanted and wanted[0] < seen + c:
            out.append((b, wanted.pop(0) - seen + 1))
        seen += c
    return out


def _sqlite_binned_medians(conn, value, bin_, where, hist: dict, group=None) -> tuple[dict, Any]:
    """SQLite: exact medians of ``value`` per group and over all, from a histogram the caller's GROUP BY already
    made. ``bin_`` is a monotonic function of ``value`` (``CAST(value * k AS INTEGER)``, NULL when the value is),
    ``hist`` maps (group key, bin) to the number of rows with a value. The histogram says which bin holds each
    middle row and its rank there; one more pass ranks only the rows of those few bins (``row_number`` over a
    few thousand rows instead of sorting a year's). Returns ({group key: median}, median of all)."""
    per_group: dict = defaultdict(dict)
    overall: dict = defaultdict(int)
    for (g, b), c in hist.items():
        per_group[g][b] = per_group[g].get(b, 0) + c
        overall[b] += c
    targets = {g: _positions(h) for g, h in per_group.items()}
    targets_all = _positions(overall)
    bins = {b for t in targets.values() for b, _ in t} | {b for b, _ in targets_all}
    if not bins:
        return {}, None
    g_col = (group if group is not None else literal(0)).label("g")
    inner = select(g_col, bin_.label("b"), value.label("v")).where(*where, bin_.in_(sorted(bins))).subquery()
    ranked = select(inner.c.g, inner.c.b, inner.c.v,
                    func.row_number().over(partition_by=(inner.c.g, inner.c.b), order_by=inner.c.v).label("rn_g"),
                    func.row_number().over(partition_by=inner.c.b, order_by=inner.c.v).label("rn_b")).subquery()
    picks = [and_(ranked.c.g == g, ranked.c.b == b, ranked.c.rn_g == r) for g, t in targets.items() for b, r in t]
    picks += [and_(ranked.c.b == b, ranked.c.rn_b == r) for b, r in targets_all]
    got = conn.execute(select(ranked.c.g, ranked.c.b, ranked.c.rn_g, ranked.c.rn_b, ranked.c.v)
                       .where(or_(*picks))).all()
    by_g = {(g, b, r): v for g, b, r, _, v in got}
    by_b = {(b, r): v for _, b, _, r, v in got}
    medians = {}
    for g, t in targets.items():
        mids = [by_g[(g, b, r)] for b, r in t]
        if mids:
            medians[g] = sum(mids) / len(mids)
    mids = [by_b[(b, r)] for b, r in targets_all]
    return medians, (sum(mids) / len(mids) if mids else None)


def _histogram_median(hist: dict) -> Any:
    """The exact median of a histogram of exact values {value: count} (``GROUP BY value``)."""
    mids = [b for b, _ in _positions(hist)]
    return sum(mids) / len(mids) if mids else None


# ------------------------------------------------------------------------------------------------ helpers


def _pct(part, whole) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _r(value, digits: int = 1):
    return None if value is None else round(float(value), digits)


def bucket_keys(start: dt.date, end: dt.date, bucket: str) -> list[str]:
    """Every bucket from ``start`` to ``end`` (so empty ones show as 0), as the SQL computes its keys."""
    keys, seen = [], set()
    day = start
    while day <= end:
        key = _bucket_of(day, bucket)
        if key not in seen:
            seen.add(key)
            keys.append(key)
        day += dt.timedelta(days=1)
    return keys


def _bucket_of(day: dt.date, bucket: str) -> str:
    if bucket == "week":
        return (day - dt.timedelta(days=day.weekday())).isoformat()
    return day.replace(day=1).isoformat()


def _bucket_days_in_range(start: dt.date, end: dt.date, bucket: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    day = start
    while day <= end:
        out[_bucket_of(day, bucket)] += 1
        day += dt.timedelta(days=1)
    return out


def forecast_line(start: dt.date, end: dt.date, bucket: str, per_month: int | None) -> dict[str, float]:
    """The forecast for each bucket: ``per_month`` for a whole month, pro rata for part of one; a week is its days'
    share of their months (7/30 of a 30-day month's forecast)."""
    if not per_month:
        return {}
    out: dict[str, float] = defaultdict(float)
    day = start
    while day <= end:
        out[_bucket_of(day, bucket)] += per_month / calendar.monthrange(day.year, day.month)[1]
        day += dt.timedelta(days=1)
    return {k: round(v, 1) for k, v in out.items()}


# ------------------------------------------------------------------------------------------------ the figures


def dashboard(session: Session, user: User | None, start: dt.date, end: dt.date, bucket: str = "month",
              district: str | None = None, *, force: str | None = None, now: dt.datetime | None = None,
              settings: Settings | None = None, actor: str | None = None, record_view: bool = True) -> dict:
    """Every section's figures for ``start``..``end`` (both included). ``user`` must be a coordinator or manager
    (``view_dashboard``; refused and audited otherwise); ``user=None`` is the ``python -m dv report`` job (named by
    ``actor`` in the audit log). The view is audited once per call (``record_view=False``: the page's reruns)."""
    if user is not None or actor is None:
        require(session, user, "view_dashboard")
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    if end < start:
        raise ValueError("The end of the range is before its start.")
    settings = settings or get_settings()
    now = now or london_now()
    district = (district or "").replace(" ", "").upper() or None
    force = (force or "").strip() or None
    conn = session.connection()
    sql = _Sql(conn.dialect.name)
    lo = dt.datetime.combine(start, dt.time())
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    years = range(start.year - 1, max(end.year, now.year) + 2)
    days = (end - start).days + 1

    def note_filter(t):
        conds = []
        if force:
            conds.append(t.c.force == force)
        if district:
            conds.append(t.c.postcode.is_not(None))
            conds.append(sql.outward(t.c.postcode) == district)
        return conds

    def via_notification(fk_col):
        """Restrict rows hanging off a notification to the force / district filter (nothing when no filter)."""
        if not (force or district):
            return []
        n2 = N.alias("nf")
        return [fk_col.in_(select(n2.c.id).where(*note_filter(n2)))]

    out: dict[str, Any] = {
        "range": {"start": start.isoformat(), "end": end.isoformat(), "days": days, "bucket": bucket,
                  "force": force, "district": district, "generated_at_utc": utcnow().replace(microsecond=0),
                  "now": now.replace(microsecond=0)},
        "buckets": bucket_keys(start, end, bucket),
    }
    if sql.pg:
        # For this transaction only (SET LOCAL): no JIT — a year's statements are costed high enough to be
        # compiled, which took 0.5 s a statement, more than running them —, room to sort and hash a year's
        # rows in memory (the default 4 MB spilled the per-victim window's sort to disk), and:
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        # the tables a year's figures read are in memory: an index look-up is not four times a sequential read
        # (with 4, the default, the decisions' and children's joins scanned whole tables: 0.35 -> 0.2 s)
        conn.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
    out.update(_notification_sections(conn, sql, start, end, lo, hi, bucket, note_filter, settings))
    out["areas"] = _areas(conn, sql, lo, hi, note_filter)
    out["meetings"] = _meetings(conn, sql, start, end, bucket, via_notification)
    out["actions"] = _actions(conn, sql, lo, hi, now, years, via_notification)
    out["encompass"] = _encompass(conn, sql, lo, hi, bucket, years, via_notification)
    if record_view:
        _audit_view(session, user, start, end, bucket, district, force, actor)
    return out


def _audit_view(session, user, start, end, bucket, district, force, actor) -> None:
    details = {"start": start, "end": end, "bucket": bucket, "force": force, "district": district}
    if user is None:
        details["username"] = actor
    audit.record(session, user, "view", "dashboard", None, **details)


def record_view(session: Session, user: User | None, start: dt.date, end: dt.date, bucket: str = "month",
                district: str | None = None, *, force: str | None = None, audited: bool = True) -> None:
    """The permission check (refused and audited as ``dashboard`` does) and, with ``audited``, the audit row of
    the view exactly as ``dashboard`` writes it, without the figures: for a caller that then computes them with
    ``record_view=False`` in a read-only session (``core.db.read_scope``, which cannot write a refusal). The page
    does, so on SQLite the seconds the figures take hold no write lock (a ``session_scope`` begins IMMEDIATE:
    every save and import would wait for the dashboard)."""
    require(session, user, "view_dashboard")
    if audited:
        _audit_view(session, user, start, end, bucket, (district or "").replace(" ", "").upper() or None,
                    (force or "").strip() or None, None)


def _facts_sqlite(sql: _Sql, lo, hi, note_filter, days_back: int):
    """SQLite: the per-notification facts, one indexed look-up per notification for each of two facts, each
    folding two figures into one number (SQLite runs a correlated look-up for a few microseconds; a window over
    the victims' notifications sorts 200,000 rows for a year and took five times longer):

    * ``history``: the victim's notifications in the days_back + 31 days before this incident (an index range
      on (victim_id, incident_at)), ``2 * (those within days_back days) + (any of them referred to MARAC at a
      meeting within days_back days before the incident)`` (nested EXISTS: its case by notification_id, the
      decision by the unique (case_id, decision));
    * ``kids``: ``2 * children + (any child under 5)``.
    """
    n = N.alias("n")
    vn, cr, cd, mt = N.alias("vn"), CR.alias("mcr"), CD.alias("mcd"), M.alias("mm")
    referred = exists().where(cd.c.case_id == cr.c.id, cd.c.decision == Decision.marac_referral.value)
    case_referred = (exists().select_from(cr.join(mt, mt.c.id == cr.c.meeting_id))
                     .where(cr.c.notification_id == vn.c.id, referred,
                            mt.c.meeting_date < sql.to_date(n.c.incident_at),
                            mt.c.meeting_date >= sql.to_date(sql.minus_days(n.c.incident_at, days_back)))
                     .correlate(n, vn))
    in_period = vn.c.incident_at >= sql.minus_days(n.c.incident_at, days_back)
    history = (select(2 * func.sum(case((in_period, 1), else_=0)) + func.max(case((case_referred, 1), else_=0)))
               .select_from(vn)
               .where(vn.c.victim_id == n.c.victim_id, vn.c.incident_at < n.c.incident_at,
                      vn.c.incident_at >= sql.minus_days(n.c.incident_at, days_back + 31))
               .correlate(n).scalar_subquery())
    child = NP.alias("child")
    young = and_(child.c.dob.is_not(None), child.c.dob > sql.minus_years_date(n.c.incident_at, 5))
    kids = (select(2 * func.count() + func.max(case((young, 1), else_=0))).select_from(child)
            .where(child.c.notification_id == n.c.id, child.c.role == "child").correlate(n).scalar_subquery())
    # OFFSET 0 keeps SQLite from flattening the subquery into the GROUP BY (which would evaluate each correlated
    # subquery once per use instead of once per notification)
    return (select(sql.day_key(n.c.incident_at).label("day"), n.c.stream, n.c.risk, n.c.victim_id,
                   func.coalesce(history, 0, type_=Integer).label("history"),
                   func.coalesce(kids, 0, type_=Integer).label("kids"))
            .where(n.c.incident_at >= lo, n.c.incident_at < hi, *note_filter(n)).offset(0).subquery("facts"))


def _groups_pg(conn, sql: _Sql, lo, hi, note_filter, days_back: int) -> list[dict]:
    """PostgreSQL: the notification figures per (day, stream, risk), set-based: three GROUP BYs, each over only
    what it needs, merged here (PostgreSQL runs a correlated subquery as a SubPlan per row, 100,000 of them for a
    year, and joining three per-notification results by id cost more than the three GROUP BYs)."""

    def n_(cond):
        return func.sum(case((cond, 1), else_=0))

    # repeats: one window over the notifications from days_back days before the range to its end (every force:
    # a victim's earlier incidents count wherever they happened), counting each one's earlier incidents of the
    # same victim in the period: RANGE from days_back days before the incident to one microsecond before it
    # (timestamps are microseconds: strictly earlier, as before). A frame that slides (no EXCLUDE) keeps count(*)
    # a running count, so the rows without a victim (one partition, whose counts are never used) cost no more
    # than the others. Every column it reads is in ix_notification_dashboard (an index-only scan).
    prior = literal_column(
        f"count(*) OVER (PARTITION BY victim_id ORDER BY incident_at RANGE BETWEEN INTERVAL '{int(days_back)} days' "
        "PRECEDING AND INTERVAL '1 microsecond' PRECEDING)")
    # force and postcode go through the window's sort only when a filter needs them
    extra = [N.c.force, N.c.postcode] if note_filter(N) else []
    w = (select(N.c.incident_at, N.c.stream, N.c.risk, N.c.victim_id, *extra, prior.label("prior"))
         .where(N.c.incident_at >= lo - dt.timedelta(days=days_back), N.c.incident_at < hi).subquery("w"))
    has_victim = w.c.victim_id.is_not(None)
    day = sql.day_key(w.c.incident_at)
    rows = conn.execute(select(day.label("day"), w.c.stream, w.c.risk, func.count().label("n"),
                               n_(has_victim).label("with_victim"),
                               n_(and_(has_victim, w.c.prior >= 1)).label("repeat"),
                               n_(and_(has_victim, w.c.prior >= 2)).label("escalation"))
                        .where(w.c.incident_at >= lo, *note_filter(w)).group_by(day, w.c.stream, w.c.risk)).mappings()
    groups = {(r["day"], r["stream"], r["risk"]): dict(r) for r in rows}
    # children: per notification of the range with children (a hash join and GROUP BY), then per day
    child, x = NP.alias("child"), N.alias("x")
    young = and_(child.c.dob.is_not(None), child.c.dob > sql.minus_years_date(x.c.incident_at, 5))
    per = (select(sql.day_key(x.c.incident_at).label("day"), x.c.stream, x.c.risk,
                  func.count().label("children"), func.max(case((young, 1), else_=0)).label("under5"))
           .select_from(child.join(x, x.c.id == child.c.notification_id))
           .where(child.c.role == "child", x.c.incident_at >= lo, x.c.incident_at < hi, *note_filter(x))
           .group_by(x.c.id).subquery("per"))
    for r in conn.execute(select(per.c.day, per.c.stream, per.c.risk, func.count().label("with_children"),
                                 func.sum(per.c.children).label("children"), func.sum(per.c.under5).label("under5"))
                          .group_by(per.c.day, per.c.stream, per.c.risk)).mappings():
        groups[(r["day"], r["stream"], r["risk"])].update(r)
    # MARAC repeat: the MARAC referrals of the meetings that can count (from days_back days before the range),
    # joined to the range's notifications by victim, with the same conditions as before; each notification once
    cr, cd, mt, vn, n2 = CR.alias("mcr"), CD.alias("mcd"), M.alias("mm"), N.alias("vn"), N.alias("n2")
    day2 = sql.day_key(n2.c.incident_at)
    stmt = (select(day2.label("day"), n2.c.stream, n2.c.risk, func.count(func.distinct(n2.c.id)).label("marac"))
            .select_from(cd.join(cr, cr.c.id == cd.c.case_id).join(mt, mt.c.id == cr.c.meeting_id)
                         .join(vn, vn.c.id == cr.c.notification_id)
                         .join(n2, and_(n2.c.victim_id == vn.c.victim_id, vn.c.incident_at < n2.c.incident_at,
                                        vn.c.incident_at >= sql.minus_days(n2.c.incident_at, days_back + 31),
                                        mt.c.meeting_date < sql.to_date(n2.c.incident_at),
                                        mt.c.meeting_date >= sql.to_date(sql.minus_days(n2.c.incident_at,
                                                                                        days_back)))))
            .where(cd.c.decision == Decision.marac_referral.value,
                   mt.c.meeting_date >= (lo - dt.timedelta(days=days_back)).date(), mt.c.meeting_date < hi.date(),
                   n2.c.incident_at >= lo, n2.c.incident_at < hi, *note_filter(n2))
            .group_by(day2, n2.c.stream, n2.c.risk))
    for r in conn.execute(stmt).mappings():
        groups[(r["day"], r["stream"], r["risk"])]["marac"] = r["marac"]
    return list(groups.values())


def _notification_sections(conn, sql: _Sql, start, end, lo, hi, bucket, note_filter, settings: Settings) -> dict:
    days_back = settings.prior_incident_days
    # grouped by day, stream and risk (at most 366 x 2 x 4 groups); each day's bucket is computed here
    # (``_bucket_of``, the same keys as the SQL's ``bucket``)
    if sql.pg:
        groups = _groups_pg(conn, sql, lo, hi, note_filter, days_back)
    else:
        f = _facts_sqlite(sql, lo, hi, note_filter, days_back)
        prior, marac, children, under5 = f.c.history // 2, f.c.history % 2, f.c.kids // 2, f.c.kids % 2
        has_victim = f.c.victim_id.is_not(None)

        def n_(cond):
            return func.sum(case((cond, 1), else_=0))

        stmt = (select(f.c.day, f.c.stream, f.c.risk, func.count().label("n"),
                       n_(children > 0).label("with_children"),
                       func.sum(children).label("children"),
                       func.sum(under5).label("under5"),
                       n_(has_victim).label("with_victim"),
                       n_(and_(has_victim, prior >= 1)).label("repeat"),
                       n_(and_(has_victim, prior >= 2)).label("escalation"),
                       n_(and_(has_victim, marac == 1)).label("marac"))
                .group_by(f.c.day, f.c.stream, f.c.risk))
        groups = [dict(r) for r in conn.execute(stmt).mappings()]
    for g in groups:  # enums come back as enum members through the typed columns
        g["stream"] = getattr(g["stream"], "value", g["stream"])
        g["risk"] = getattr(g["risk"], "value", g["risk"])
        g["day"] = g["day"].isoformat() if isinstance(g["day"], dt.date) else g["day"]
        g["bucket"] = _bucket_of(dt.date.fromisoformat(g["day"]), bucket)

    keys = bucket_keys(start, end, bucket)
    fields = ("n", "with_children", "children", "under5", "with_victim", "repeat", "escalation", "marac")
    per_bucket = {k: defaultdict(int) for k in keys}
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_risk = {r: defaultdict(int) for r in RISKS}
    totals: dict[str, int] = defaultdict(int)
    for g in groups:
        b = per_bucket.setdefault(g["bucket"], defaultdict(int))
        for k in fields:
            v = int(g.get(k) or 0)
            b[k] += v
            totals[k] += v
        b[g["stream"]] += g["n"]
        per_day[g["day"]][g["stream"]] += g["n"]
        per_risk.setdefault(g["risk"], defaultdict(int))[g["stream"]] += g["n"]
        totals[g["stream"]] += g["n"]
    total = totals["n"]
    forecast = forecast_line(start, end, bucket, settings.forecast_per_month)
    by_day = [{"day": d, "crime": v["crime"], "non_crime": v["non_crime"], "total": v["crime"] + v["non_crime"]}
              for d, v in sorted(per_day.items())]
    peak = max(by_day, key=lambda r: (r["total"], r["day"]), default=None)
    notifications = {
        "total": total, "crime": totals["crime"], "non_crime": totals["non_crime"],
        "crime_pct": _pct(totals["crime"], total), "daily_average": round(total / ((end - start).days + 1), 1),
        "peak_day": peak["day"] if peak else None, "peak_day_count": peak["total"] if peak else 0,
        "days_with_none": (end - start).days + 1 - len(by_day),
        "forecast_per_month": settings.forecast_per_month,
        "by_bucket": [{"bucket": k, "crime": per_bucket[k]["crime"], "non_crime": per_bucket[k]["non_crime"],
                       "total": per_bucket[k]["n"], "forecast": forecast.get(k)} for k in keys],
        "by_day": by_day,
    }
    risk = {"rows": [{"risk": r, "crime": per_risk[r]["crime"], "non_crime": per_risk[r]["non_crime"],
                      "total": per_risk[r]["crime"] + per_risk[r]["non_crime"],
                      "pct": _pct(per_risk[r]["crime"] + per_risk[r]["non_crime"], total)} for r in per_risk]}
    children_sec = {
        "notifications": total, "with_children": totals["with_children"],
        "with_children_pct": _pct(totals["with_children"], total), "children": totals["children"],
        "with_under5": totals["under5"], "with_under5_pct": _pct(totals["under5"], total),
        "by_bucket": [{"bucket": k, "notifications": per_bucket[k]["n"], "with_children": per_bucket[k]["with_children"],
                       "children": per_bucket[k]["children"], "with_under5": per_bucket[k]["under5"]} for k in keys],
    }
    repeats = {
        "notifications": total, "with_victim": totals["with_victim"], "repeat": totals["repeat"],
        "repeat_pct": _pct(totals["repeat"], totals["with_victim"]), "escalation": totals["escalation"],
        "escalation_pct": _pct(totals["escalation"], totals["with_victim"]), "marac_repeat": totals["marac"],
        "marac_repeat_pct": _pct(totals["marac"], totals["with_victim"]), "period_days": days_back,
        "by_bucket": [{"bucket": k, "with_victim": per_bucket[k]["with_victim"], "repeat": per_bucket[k]["repeat"],
                       "repeat_pct": _pct(per_bucket[k]["repeat"], per_bucket[k]["with_victim"]),
                       "escalation": per_bucket[k]["escalation"], "marac_repeat": per_bucket[k]["marac"]}
                      for k in keys],
    }
    return {"notifications": notifications, "risk": risk, "children": children_sec, "repeats": repeats}


def _areas(conn, sql: _Sql, lo, hi, note_filter) -> dict:
    # One pass over the range: notifications per (force, postcode), then the outward code computed once per
    # distinct postcode rather than once per notification, and the three tables from that (a CTE used three
    # times: both databases materialise it once). The ORDER BY stays in SQL, so the database's collation orders
    # the names as before.
    per = (select(N.c.force.label("force"), N.c.postcode.label("postcode"), func.count().label("c"))
           .where(N.c.incident_at >= lo, N.c.incident_at < hi, *note_filter(N))
           .group_by(N.c.force, N.c.postcode).cte("per_postcode"))
    outward = sql.outward(per.c.postcode)
    parts = union_all(
        select(literal(1).label("kind"), per.c.force.label("name"), func.sum(per.c.c).label("total"))
        .group_by(per.c.force),
        select(literal(2), outward, func.sum(per.c.c)).where(per.c.postcode.is_not(None)).group_by(outward),
        select(literal(3), literal(None), func.sum(per.c.c)).where(per.c.postcode.is_(None)),
    ).subquery()
    rows = conn.execute(select(parts.c.kind, parts.c.name, parts.c.total)
                        .order_by(parts.c.kind, parts.c.total.desc(), parts.c.name)).all()
    forces = [(name_, int(c)) for k, name_, c in rows if k == 1]
    districts = [(name_, int(c)) for k, name_, c in rows if k == 2]
    unknown = sum(int(c or 0) for k, _, c in rows if k == 3)
    return {"by_force": [{"force": f, "notifications": c} for f, c in forces],
            "by_district": [{"district": d or "(unknown)", "notifications": c} for d, c in districts],
            "no_postcode": unknown}


def _meetings(conn, sql: _Sql, start, end, bucket, via_notification) -> dict:
    held = [M.c.meeting_date >= start, M.c.meeting_date <= end,
            or_(M.c.status.in_(("open", "closed")), M.c.opened_at_utc.is_not(None))]
    bkey = sql.bucket(M.c.meeting_date, bucket)
    discussed = [CR.c.discussed == true(), *via_notification(CR.c.notification_id)]
    held_ids = select(M.c.id).where(*held)
    cases_per = (select(CR.c.meeting_id, func.count().label("cases"))
                 .where(CR.c.meeting_id.in_(held_ids), *discussed).group_by(CR.c.meeting_id).subquery())
    rows = conn.execute(select(bkey.label("bucket"), func.count().label("meetings"),
                               func.coalesce(func.sum(cases_per.c.cases), 0).label("cases"))
                        .select_from(M.outerjoin(cases_per, cases_per.c.meeting_id == M.c.id))
                        .where(*held).group_by(bkey)).mappings().all()
    got = {r["bucket"]: r for r in rows}
    by_bucket = []
    for k in bucket_keys(start, end, bucket):
        r = got.get(k)
        m, c = (int(r["meetings"]), int(r["cases"])) if r else (0, 0)
        by_bucket.append({"bucket": k, "meetings": m, "cases": c, "cases_per_meeting": _r(c / m) if m else None})
    meetings = sum(b["meetings"] for b in by_bucket)
    cases = sum(b["cases"] for b in by_bucket)
    case_base = select(CR.c.id).where(CR.c.meeting_id.in_(held_ids), *discussed)
    if sql.pg:
        mean_s, median_s = conn.execute(case_base.with_only_columns(
            func.avg(CR.c.seconds_spent), func.percentile_cont(0.5).within_group(CR.c.seconds_spent))).one()
    else:
        # seconds are whole numbers: their histogram (a GROUP BY, about a thousand values) gives the exact
        # median, and the mean as SQLite's avg computes it (an exact integer sum over the count)
        hist = {v: int(c) for v, c in conn.execute(case_base.with_only_columns(CR.c.seconds_spent, func.count())
                                                   .where(CR.c.seconds_spent.is_not(None))
                                                   .group_by(CR.c.seconds_spent)).all()}
        n_cases = sum(hist.values())
        mean_s = sum(v * c for v, c in hist.items()) / n_cases if n_cases else None
        median_s = _histogram_median(hist)
    # decisions: several may apply to one case, each at most once (unique (case_id, decision)), so count(*) is
    # the number of cases; shares are of the cases discussed
    # and in the same pass the cases with both decisions that progress to children's social care, so those
    # cases are (cases with one) + (cases with the other) - (cases with both); the second look-up is made for
    # the first decision's rows only
    first, second = CSC_DECISIONS
    cd2 = CD.alias("cd2")
    both = and_(CD.c.decision == first,
                exists().where(cd2.c.case_id == CD.c.case_id, cd2.c.decision == second))
    dec = conn.execute(select(CD.c.decision, func.count(), func.sum(case((both, 1), else_=0)))
                       .select_from(CD.join(CR, CR.c.id == CD.c.case_id))
                       .where(CR.c.meeting_id.in_(held_ids), *discussed).group_by(CD.c.decision)).all()
    dec_counts = {getattr(d, "value", d): int(c) for d, c, _ in dec}
    csc = dec_counts.get(first, 0) + dec_counts.get(second, 0) - sum(int(b or 0) for _, _, b in dec)
    decisions = [{"decision": d.value, "cases": dec_counts.get(d.value, 0), "pct": _pct(dec_counts.get(d.value, 0), cases)}
                 for d in Decision]
    # attendance: best per (meeting, agency), then per agency over the meetings held
    best = (select(MA.c.meeting_id, MA.c.agency_id,
                   func.max(case((MA.c.attendance == "present", 3), (MA.c.attendance == "apologies", 2),
                                 else_=1)).label("best"))
            .where(MA.c.meeting_id.in_(held_ids)).group_by(MA.c.meeting_id, MA.c.agency_id).subquery())
    att = conn.execute(select(G.c.name, func.coalesce(func.sum(case((best.c.best == 3, 1), else_=0)), 0),
                              func.coalesce(func.sum(case((best.c.best == 2, 1), else_=0)), 0))
                       .select_from(G.outerjoin(best, best.c.agency_id == G.c.id))
                       .where(or_(G.c.active == true(), best.c.agency_id.is_not(None)))
                       .group_by(G.c.id, G.c.name).order_by(G.c.name)).all()
    attendance = [{"agency": name, "meetings": meetings, "present": int(p), "apologies": int(a),
                   "absent": meetings - int(p) - int(a), "rate_pct": _pct(int(p), meetings)} for name, p, a in att]
    return {"meetings": meetings, "cases": cases, "cases_per_meeting": _r(cases / meetings) if meetings else None,
            "median_minutes_per_case": _r(median_s / 60) if median_s is not None else None,
            "mean_minutes_per_case": _r(float(mean_s) / 60) if mean_s is not None else None,
            "csc_cases": int(csc), "csc_pct": _pct(int(csc), cases), "by_bucket": by_bucket,
            "decisions": decisions, "attendance": attendance}


def _actions(conn, sql: _Sql, lo, hi, now: dt.datetime, years, via_notification) -> dict:
    agreed = [A.c.created_at_utc >= london_to_utc(lo), A.c.created_at_utc < london_to_utc(hi),
              *via_notification(A.c.notification_id)]
    done = A.c.status == "done"
    on_time = and_(done, A.c.completed_at_utc.is_not(None),
                   or_(A.c.due_at.is_(None), _utc_not_after_wall(sql, A.c.completed_at_utc, A.c.due_at, years)))
    overdue = and_(A.c.status.in_(("open", "in_progress")), A.c.due_at < now)
    # days to complete, NULL unless done: the status test sits in the value, not the WHERE, so the planner reads
    # the range from ix_action_created instead of every done action through ix_action_status_due
    days = case((done, sql.hours(A.c.created_at_utc, A.c.completed_at_utc) / 24.0), else_=None)

    def n(cond):
        return func.sum(case((cond, 1), else_=0))

    counts = [func.count().label("agreed"), n(done).label("done"), n(on_time).label("on_time"),
              n(overdue).label("overdue"), n(A.c.status == "not_done").label("not_done"),
              n(A.c.status == "not_possible").label("not_possible"),
              n(A.c.status.in_(("open", "in_progress"))).label("open")]
    if sql.pg:
        # one pass: the counts and the median per agency, and the median of all agencies (the () grouping set)
        stmt = (select(A.c.agency_id, func.grouping(A.c.agency_id).label("all_"), *counts,
                       func.percentile_cont(0.5).within_group(days).label("median"))
                .where(*agreed).group_by(func.grouping_sets(tuple_(A.c.agency_id), tuple_())))
        rows = conn.execute(stmt).mappings().all()
        by_agency = {r["agency_id"]: r for r in rows if not r["all_"]}
        medians = {r["agency_id"]: r["median"] for r in by_agency.values()}
        overall = next((r["median"] for r in rows if r["all_"]), None)
    else:
        # one pass: the counts per agency and eighth of a day to complete (a few thousand groups, folded here),
        # whose histogram finds the medians (``_sqlite_binned_medians``)
        bin_ = cast(days * 8, Integer)
        rows = conn.execute(select(A.c.agency_id, bin_.label("bin"), *counts).where(*agreed)
                            .group_by(A.c.agency_id, bin_)).mappings().all()
        by_agency = {}
        hist = {}
        for r in rows:
            acc = by_agency.setdefault(r["agency_id"], defaultdict(int))
            for k in ("agreed", "done", "on_time", "overdue", "not_done", "not_possible", "open"):
                acc[k] += int(r[k] or 0)
            if r["bin"] is not None:
                hist[(r["agency_id"], r["bin"])] = int(r["agreed"])
        medians, overall = _sqlite_binned_medians(conn, days, bin_, agreed, hist, A.c.agency_id)
    names = conn.execute(select(G.c.id, G.c.name, G.c.active).order_by(G.c.name)).all()
    out, total = [], defaultdict(int)
    for agency_id, name, active in names:
        r = by_agency.get(agency_id)
        if r is None and not active:
            continue
        vals = {k: int((r or {}).get(k) or 0) for k in ("agreed", "done", "on_time", "overdue", "not_done",
                                                        "not_possible", "open")}
        for k, v in vals.items():
            total[k] += v
        out.append({"agency": name, **vals, "late": vals["done"] - vals["on_time"],
                    "on_time_pct": _pct(vals["on_time"], vals["done"]),
                    "median_days": _r(medians.get(agency_id)) if medians.get(agency_id) is not None else None})
    tot = {"agency": "All agencies", **total, "late": total["done"] - total["on_time"],
           "on_time_pct": _pct(total["on_time"], total["done"]), "median_days": _r(overall)}
    return {"rows": out, "total": tot, "now": now.replace(microsecond=0)}


_ENCOMPASS_COUNTS = ("alerts", "notified", "on_time", "acknowledged", "unresolved")


def _encompass(conn, sql: _Sql, lo, hi, bucket, years, via_notification) -> dict:
    # a withdrawn alert was raised again for the child's corrected setting: counting both would count the child twice
    where = [E.c.incident_at >= lo, E.c.incident_at < hi, E.c.status != AlertStatus.withdrawn.value,
             *via_notification(E.c.notification_id)]
    notified = E.c.notified_at_utc.is_not(None)
    hours = sql.hours(E.c.incident_at, E.c.notified_at_utc) + _wall_to_utc_hours(years, E.c.incident_at)

    def n(cond):
        return func.sum(case((cond, 1), else_=0))

    bkey = sql.bucket(E.c.incident_at, bucket)
    cols = [func.count().label("alerts"), n(notified).label("notified"),
            n(and_(notified, E.c.due_at.is_not(None),
                   _utc_not_after_wall(sql, E.c.notified_at_utc, E.c.due_at, years))).label("on_time"),
            n(E.c.acknowledged_at_utc.is_not(None)).label("acknowledged"),
            n(E.c.resolution == "to_resolve").label("unresolved")]
    if sql.pg:
        # one pass: the buckets' counts and the median over the range (the () grouping set)
        rows = conn.execute(select(bkey.label("bucket"), func.grouping(bkey).label("all_"), *cols,
                                   func.percentile_cont(0.5).within_group(hours).label("median"))
                            .where(*where).group_by(func.grouping_sets(tuple_(bkey), tuple_()))).mappings().all()
        median_h = next((r["median"] for r in rows if r["all_"]), None)
        rows = [r for r in rows if not r["all_"]]
    else:
        # one pass: the counts per bucket and hour to notification (folded here), whose histogram finds the median
        bin_ = cast(hours, Integer)
        groups = conn.execute(select(bkey.label("bucket"), bin_.label("bin"), *cols).where(*where)
                              .group_by(bkey, bin_)).mappings().all()
        per: dict = {}
        hist: dict = defaultdict(int)
        for r in groups:
            acc = per.setdefault(r["bucket"], {"bucket": r["bucket"], **{k: 0 for k in _ENCOMPASS_COUNTS}})
            for k in _ENCOMPASS_COUNTS:
                acc[k] += int(r[k] or 0)
            if r["bin"] is not None:
                hist[(0, r["bin"])] += int(r["alerts"])
        rows = list(per.values())
        median_h = _sqlite_binned_medians(conn, hours, bin_, where, hist)[1]
    got = {r["bucket"]: r for r in rows}
    fields = _ENCOMPASS_COUNTS
    total = {k: sum(int(r[k] or 0) for r in rows) for k in fields}
    lo_d, hi_d = lo.date(), (hi - dt.timedelta(days=1)).date()
    by_bucket = [{"bucket": k, **{f: int((got.get(k) or {}).get(f) or 0) for f in fields}}
                 for k in bucket_keys(lo_d, hi_d, bucket)]
    for b in by_bucket:
        b["on_time_pct"] = _pct(b["on_time"], b["alerts"])
    return {**total, "on_time_pct": _pct(total["on_time"], total["alerts"]),
            "acknowledged_pct": _pct(total["acknowledged"], total["alerts"]),
            "median_hours_to_notification": _r(median_h), "by_bucket": by_bucket}


# ------------------------------------------------------------------------------------------------ export


def _label(v) -> str:
    return str(v).replace("_", " ")


def tables(figures: dict) -> dict[str, dict]:
    """The figures as plain tables, one per sheet: {title: {"headers", "rows", "counts": set of count columns,
    "shares": {share column: its numerator column}, "chart": (kind, title, category col, value cols) or None}}.
    Shared by the page (each chart's numbers) and the workbook."""
    nt, rk, ch, rp = figures["notifications"], figures["risk"], figures["children"], figures["repeats"]
    mt, ac, en, ar = figures["meetings"], figures["actions"], figures["encompass"], figures["areas"]
    out: dict[str, dict] = {}

    def add(title, headers, rows, counts=(), shares=None, chart=None):
        out[title] = {"headers": list(headers), "rows": [list(r) for r in rows], "counts": set(counts),
                      "shares": dict(shares or {}), "chart": chart}

    add("Notifications", ["bucket", "crime", "non-crime", "total", "forecast"],
        [[b["bucket"], b["crime"], b["non_crime"], b["total"], b["forecast"]] for b in nt["by_bucket"]],
        counts=("crime", "non-crime", "total"), chart=("line", "Notifications by stream", 0, [1, 2, 3, 4]))
    add("Per day", ["day", "crime", "non-crime", "total"],
        [[d["day"], d["crime"], d["non_crime"], d["total"]] for d in nt["by_day"]], counts=("crime", "non-crime", "total"))
    add("Risk", ["risk", "crime", "non-crime", "total", "% of notifications"],
        [[_label(r["risk"]), r["crime"], r["non_crime"], r["total"], r["pct"]] for r in rk["rows"]],
        counts=("crime", "non-crime", "total"), shares={"% of notifications": "total"},
        chart=("bar", "Risk mix", 0, [1, 2]))
    add("Children", ["bucket", "notifications", "with children", "children", "with a child under 5"],
        [[b["bucket"], b["notifications"], b["with_children"], b["children"], b["with_under5"]] for b in ch["by_bucket"]],
        counts=("notifications", "with children", "children", "with a child under 5"),
        chart=("bar", "Notifications with children", 0, [2, 4]))
    add("Repeats", ["bucket", "with a victim", "repeat victim", "% repeat", "escalation (3rd+)", "MARAC repeat"],
        [[b["bucket"], b["with_victim"], b["repeat"], b["repeat_pct"], b["escalation"], b["marac_repeat"]]
         for b in rp["by_bucket"]],
        counts=("with a victim", "repeat victim", "escalation (3rd+)", "MARAC repeat"),
        shares={"% repeat": "repeat victim"}, chart=("line", "Repeat victims", 0, [2, 4, 5]))
    add("Areas", ["force or district", "kind", "notifications"],
        [[f["force"], "force", f["notifications"]] for f in ar["by_force"]]
        + [[d["district"], "postcode district", d["notifications"]] for d in ar["by_district"]],
        counts=("notifications",))
    add("Meetings", ["bucket", "meetings", "cases discussed", "cases per meeting"],
        [[b["bucket"], b["meetings"], b["cases"], b["cases_per_meeting"]] for b in mt["by_bucket"]],
        counts=("meetings", "cases discussed"), chart=("bar", "Cases discussed", 0, [2]))
    add("Decisions", ["decision", "cases", "% of cases discussed"],
        [[_label(d["decision"]), d["cases"], d["pct"]] for d in mt["decisions"]]
        + [["progressed to children's social care (referral or strategy discussion)", mt["csc_cases"], mt["csc_pct"]]],
        counts=("cases",), shares={"% of cases discussed": "cases"}, chart=("bar", "Decisions", 0, [1]))
    add("Attendance", ["agency", "meetings held", "present", "apologies", "absent", "attendance %"],
        [[a["agency"], a["meetings"], a["present"], a["apologies"], a["absent"], a["rate_pct"]] for a in mt["attendance"]],
        counts=("meetings held", "present", "apologies", "absent"), shares={"attendance %": "present"},
        chart=("bar", "Attendance rate %", 0, [5]))
    add("Actions", ["agency", "agreed", "done", "completed on time", "completed late", "% on time", "overdue now",
                    "not done", "not possible", "still open", "median days to complete"],
        [[r["agency"], r["agreed"], r["done"], r["on_time"], r["late"], r["on_time_pct"], r["overdue"],
          r["not_done"], r["not_possible"], r["open"], r["median_days"]] for r in [*ac["rows"], ac["total"]]],
        counts=("agreed", "done", "completed on time", "completed late", "overdue now", "not done", "not possible",
                "still open"), shares={"% on time": "completed on time"},
        chart=("bar", "Actions per agency", 0, [3, 4, 6]))
    add("Encompass", ["bucket", "alerts", "notified", "notified before the deadline", "% before the deadline",
                      "acknowledged", "school to resolve"],
        [[b["bucket"], b["alerts"], b["notified"], b["on_time"], b["on_time_pct"], b["acknowledged"], b["unresolved"]]
         for b in en["by_bucket"]],
        counts=("alerts", "notified", "notified before the deadline", "acknowledged", "school to resolve"),
        shares={"% before the deadline": "notified before the deadline"},
        chart=("line", "Operation Encompass alerts", 0, [1, 3]))
    return out


def summary_rows(figures: dict) -> list[tuple[str, Any, str]]:
    """The headline figures: (label, value, kind) with kind "count", "share:<count label>" or "value"."""
    nt, ch, rp, mt, ac, en = (figures[k] for k in ("notifications", "children", "repeats", "meetings", "actions",
                                                    "encompass"))
    t = ac["total"]
    return [
        ("Notifications", nt["total"], "count"),
        ("Crime", nt["crime"], "count"),
        ("Non-crime", nt["non_crime"], "count"),
        ("% crime", nt["crime_pct"], "share:Crime"),
        ("Daily average", nt["daily_average"], "value"),
        ("Peak day", nt["peak_day"], "value"),
        ("Notifications on the peak day", nt["peak_day_count"], "count"),
        ("Forecast per month", nt["forecast_per_month"], "value"),
        ("Notifications with children", ch["with_children"], "count"),
        ("% with children", ch["with_children_pct"], "share:Notifications with children"),
        ("Children involved", ch["children"], "count"),
        ("Notifications with a child under 5", ch["with_under5"], "count"),
        ("% with a child under 5", ch["with_under5_pct"], "share:Notifications with a child under 5"),
        ("Repeat victims (earlier incident within 12 months)", rp["repeat"], "count"),
        ("% repeat victims", rp["repeat_pct"], "share:Repeat victims (earlier incident within 12 months)"),
        ("Escalation (3rd+ incident in 12 months)", rp["escalation"], "count"),
        ("MARAC repeat (referred within 12 months)", rp["marac_repeat"], "count"),
        ("Meetings held", mt["meetings"], "count"),
        ("Cases discussed", mt["cases"], "count"),
        ("Cases per meeting", mt["cases_per_meeting"], "value"),
        ("Median minutes per case", mt["median_minutes_per_case"], "value"),
        ("Progressed to children's social care", mt["csc_cases"], "count"),
        ("% progressed to children's social care", mt["csc_pct"], "share:Progressed to children's social care"),
        ("Actions agreed", t["agreed"], "count"),
        ("Actions completed on time", t["on_time"], "count"),
        ("% of completed actions on time", t["on_time_pct"], "share:Actions completed on time"),
        ("Actions overdue now", t["overdue"], "count"),
        ("Actions not done", t["not_done"], "count"),
        ("Actions not possible", t["not_possible"], "count"),
        ("Median days to complete", t["median_days"], "value"),
        ("Encompass alerts", en["alerts"], "count"),
        ("Alerts notified before the deadline", en["on_time"], "count"),
        ("% notified before the deadline", en["on_time_pct"], "share:Alerts notified before the deadline"),
        ("Alerts acknowledged", en["acknowledged"], "count"),
        ("% acknowledged", en["acknowledged_pct"], "share:Alerts acknowledged"),
        ("Median hours from incident to notification", en["median_hours_to_notification"], "value"),
        ("Alerts whose school is still to resolve", en["unresolved"], "count"),
    ]


def suppressed(value, below: int):
    """A count of 1..below-1 as "<below" (published statistics' small-number rule); 0 and larger stay."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < below:
        return f"<{below}"
    return value


def workbook_bytes(figures: dict, *, suppress: bool = False, settings: Settings | None = None,
                   title: str = "DA Daily performance report") -> bytes:
    """The committee-ready workbook: a cover sheet (range, filters, generation time, the headline figures), then
    one sheet per section with a native Excel chart where useful. Every cell goes through
    ``core.exports.safe_cell`` (a force called "=cmd" stays text). ``suppress``: counts under
    ``DV_SUPPRESS_BELOW`` become "<5" (for figures that leave the hub)."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, LineChart, Reference
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    from core.exports import safe_cell

    settings = settings or get_settings()
    below = settings.suppress_below
    book = Workbook()
    cover = book.active
    cover.title = "Cover"
    rng = figures["range"]
    cover.append([safe_cell(title)])
    cover["A1"].font = Font(bold=True, size=14)
    for label_, value in (("From", rng["start"]), ("To", rng["end"]), ("Buckets", rng["bucket"]),
                          ("Force", rng["force"] or "all"), ("Postcode district", rng["district"] or "all"),
                          ("Generated (UTC)", rng["generated_at_utc"]),
                          ("Small numbers", f"counts under {below} shown as <{below}" if suppress
                           else "not suppressed: for use inside the hub only")):
        cover.append([label_, safe_cell(value)])
    cover.append([])
    cover.append(["Figure", "Value"])
    cover.cell(cover.max_row, 1).font = Font(bold=True)
    cover.cell(cover.max_row, 2).font = Font(bold=True)
    summary = summary_rows(figures)
    small = {lbl for lbl, v, kind in summary if kind == "count" and suppressed(v, below) != v}
    for lbl, v, kind in summary:
        if suppress and (kind == "count" or (kind.startswith("share:") and kind[6:] in small)):
            v = suppressed(v, below) if kind == "count" else f"<{below} cases"
        cover.append([safe_cell(lbl), safe_cell(v)])
    cover.column_dimensions["A"].width = 55
    cover.column_dimensions["B"].width = 24

    for name, t in tables(figures).items():
        ws = book.create_sheet(title=name[:31])
        headers = t["headers"]
        ws.append([safe_cell(h) for h in headers])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        count_idx = {headers.index(c) for c in t["counts"]}
        share_idx = {headers.index(s): headers.index(c) for s, c in t["shares"].items()}
        for row in t["rows"]:
            cells = list(row)
            if suppress:
                for i, num in share_idx.items():
                    if suppressed(row[num], below) != row[num]:
                        cells[i] = f"<{below} cases"
                for i in count_idx:
                    cells[i] = suppressed(row[i], below)
            ws.append([safe_cell(v) for v in cells])
        for i, h in enumerate(headers, start=1):
            ws.column_dimensions[get_column_letter(i)].width = max(12, min(len(str(h)) + 4, 60))
        ws.column_dimensions["A"].width = 40 if name in ("Areas", "Decisions", "Actions", "Attendance") else 14
        ws.freeze_panes = "A2"
        if t["chart"] and t["rows"]:
            kind, chart_title, cat, values = t["chart"]
            chart = LineChart() if kind == "line" else BarChart()
            chart.title = chart_title
            chart.height, chart.width = 9, 22
            n = len(t["rows"]) + 1
            for col in values:
                chart.add_data(Reference(ws, min_col=col + 1, min_row=1, max_row=n), titles_from_data=True)
            chart.set_categories(Reference(ws, min_col=cat + 1, min_row=2, max_row=n))
            ws.add_chart(chart, f"{get_column_letter(len(headers) + 2)}2")
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def export_dashboard(session: Session, user: User | None, figures: dict, *, suppress: bool = False,
                     actor: str | None = None, settings: Settings | None = None) -> bytes:
    """The workbook of ``figures``, the export audited (with whether small numbers were suppressed)."""
    if user is not None or actor is None:
        require(session, user, "view_dashboard")
    rng = figures["range"]
    details = {"start": rng["start"], "end": rng["end"], "bucket": rng["bucket"], "force": rng["force"],
               "district": rng["district"], "suppress": suppress}
    if user is None:
        details["username"] = actor
    data = workbook_bytes(figures, suppress=suppress, settings=settings)
    audit.record(session, user, "export", "dashboard", None, **details)
    return data


def forces(session: Session, user: User | None) -> list[str]:
    """The forces notifications came from (for the page's filter)."""
    require(session, user, "view_dashboard")
    # a skip scan of the (force, police_ref) unique index: one seek per force instead of reading every notification
    stmt = text("WITH RECURSIVE f(force) AS (SELECT min(force) FROM notification UNION ALL "
                "SELECT (SELECT min(n.force) FROM notification n WHERE n.force > f.force) FROM f "
                "WHERE f.force IS NOT NULL) SELECT force FROM f WHERE force IS NOT NULL")
    return list(session.connection().execute(stmt).scalars())
