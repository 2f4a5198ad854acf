"""Reading notifications for the pages and the CLI. Every query adds ``core.scope.visible``; a record outside
the user's scope is reported as not found and the attempt is audited."""
from __future__ import annotations

import datetime as dt
from sqlalchemy import func, select
from sqlmodel import Session

from core import audit
from core.models import User
from core.scope import visible
from dv.models import FieldChange, ImportBatch, Notification, NotificationPerson, PersonRole, RowError
from dv.people import prior_incident_counts

RISKS = ("high", "medium", "standard", "not_assessed")
N = Notification.__table__
NP = NotificationPerson.__table__


def _window(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return dt.datetime.combine(start, dt.time()), dt.datetime.combine(end + dt.timedelta(days=1), dt.time())


def list_notifications(session: Session, user: User, start: dt.date, end: dt.date, *, stream: str | None = None,
                       risks: tuple[str, ...] | None = None, with_children: bool | None = None,
                       limit: int = 5000) -> list[dict]:
    """Notifications whose incident falls on ``start``..``end`` (inclusive, wall-clock days), newest first."""
    lo, hi = _window(start, end)
    children = (select(NP.c.notification_id, func.count().label("children"))
                .where(NP.c.role == PersonRole.child.value).group_by(NP.c.notification_id).subquery())
    stmt = (
        select(N.c.id, N.c.police_ref, N.c.incident_at, N.c.stream, N.c.stream_reason, N.c.risk, N.c.dash_score,
               N.c.offence, N.c.location, N.c.flag_pregnancy, N.c.victim_id,
               func.coalesce(children.c.children, 0).label("children"))
        .outerjoin(children, children.c.notification_id == N.c.id)
        .where(visible(user, "notification"), N.c.incident_at >= lo, N.c.incident_at < hi)
        .order_by(N.c.incident_at.desc(), N.c.id.desc())
        .limit(limit)
    )
    if stream:
        stmt = stmt.where(N.c.stream == stream)
    if risks:
        stmt = stmt.where(N.c.risk.in_(risks))
    if with_children is True:
        stmt = stmt.where(children.c.children > 0)
    elif with_children is False:
        stmt = stmt.where(children.c.children.is_(None))
    rows = [dict(r) for r in session.connection().execute(stmt).mappings()]
    names = _victim_names([r["id"] for r in rows], session)
    prior = prior_incident_counts(session, [r["id"] for r in rows])
    for r in rows:
        r["victim"] = names.get(r["id"], "")
        r["prior_incidents_12m"] = prior.get(r["id"], 0)
    return rows


def _victim_names(ids: list[int], session: Session) -> dict[int, str]:
    out: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        stmt = select(NP.c.notification_id, NP.c.surname, NP.c.forename).where(
            NP.c.notification_id.in_(ids[i : i + 500]), NP.c.role == PersonRole.victim.value, NP.c.position == 0)
        out.update({r.notification_id: ", ".join(x for x in (r.surname, r.forename) if x)
                    for r in session.connection().execute(stmt)})
    return out


def stream_summary(session: Session, user: User, start: dt.date, end: dt.date) -> dict:
    """Counts for the stream tabs: per stream, the risk mix and how many notifications involve children."""
    lo, hi = _window(start, end)
    has_child = select(NP.c.notification_id).where(NP.c.role == PersonRole.child.value).distinct().subquery()
    stmt = (select(N.c.stream, N.c.risk, (has_child.c.notification_id.is_not(None)).label("kids"), func.count())
            .outerjoin(has_child, has_child.c.notification_id == N.c.id)
            .where(visible(user, "notification"), N.c.incident_at >= lo, N.c.incident_at < hi)
            .group_by(N.c.stream, N.c.risk, "kids"))
    out = {s: {"total": 0, "with_children": 0, "risk": dict.fromkeys(RISKS, 0)} for s in ("crime", "non_crime")}
    for stream, risk, kids, count in session.connection().execute(stmt):
        bucket = out[stream]
        bucket["total"] += count
        bucket["risk"][risk] = bucket["risk"].get(risk, 0) + count
        if kids:
            bucket["with_children"] += count
    child_count = session.connection().execute(
        select(N.c.stream, func.count()).join(NP, NP.c.notification_id == N.c.id)
        .where(visible(user, "notification"), N.c.incident_at >= lo, N.c.incident_at < hi,
               NP.c.role == PersonRole.child.value).group_by(N.c.stream)).all()
    for stream, count in child_count:
        out[stream]["children"] = count
    for bucket in out.values():
        bucket.setdefault("children", 0)
    return out


def notification_detail(session: Session, user: User, notification_id: int, *, log_view: bool = True) -> dict | None:
    """Everything about one notification, or None when it does not exist or is outside the user's scope
    (the refusal is audited). ``log_view`` records the view; pages pass it once per visit."""
    row = session.connection().execute(
        select(N).where(N.c.id == notification_id, visible(user, "notification"))).mappings().first()
    if row is None:
        audit.record(session, user, "view", "notification", notification_id, outcome="refused")
        return None
    detail = dict(row)
    people = session.connection().execute(
        select(NP).where(NP.c.notification_id == notification_id).order_by(NP.c.role, NP.c.position)).mappings().all()
    detail["people"] = [dict(p) for p in people if p["role"] != PersonRole.child.value]
    detail["children"] = [dict(p) for p in people if p["role"] == PersonRole.child.value]
    detail["prior_incidents_12m"] = prior_incident_counts(session, [notification_id]).get(notification_id, 0)
    detail["earlier"] = earlier_incidents(session, user, notification_id)
    detail["history"] = [dict(r) for r in session.connection().execute(
        select(FieldChange.__table__).where(FieldChange.__table__.c.notification_id == notification_id)
        .order_by(FieldChange.__table__.c.id)).mappings()]
    batches = {b for b in (row["first_batch_id"], row["last_batch_id"]) if b}
    detail["batches"] = [dict(b) for b in session.connection().execute(
        select(ImportBatch.__table__).where(ImportBatch.__table__.c.id.in_(batches))).mappings()] if batches else []
    if log_view:
        audit.record(session, user, "view", "notification", notification_id)
    return detail


def earlier_incidents(session: Session, user: User, notification_id: int, days: int = 365) -> list[dict]:
    """Earlier notifications (within ``days`` before this incident) of anyone in this one, in any role."""
    this = session.connection().execute(select(N.c.incident_at).where(N.c.id == notification_id)).scalar_one()
    people = select(NP.c.person_id).where(NP.c.notification_id == notification_id)
    other = NP.alias("other")
    stmt = (select(N.c.id, N.c.police_ref, N.c.incident_at, N.c.stream, N.c.risk, other.c.role,
                   other.c.surname, other.c.forename)
            .join(other, other.c.notification_id == N.c.id)
            .where(other.c.person_id.in_(people), N.c.id != notification_id, visible(user, "notification"),
                   N.c.incident_at < this, N.c.incident_at >= this - dt.timedelta(days=days))
            .order_by(N.c.incident_at.desc()))
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


def recent_batches(session: Session, user: User, limit: int = 20) -> list[dict]:
    B = ImportBatch.__table__
    stmt = select(B).where(visible(user, "import_batch")).order_by(B.c.id.desc()).limit(limit)
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


def batch_issues(session: Session, user: User, batch_id: int) -> list[dict]:
    E = RowError.__table__
    stmt = (select(E.c.row, E.c.column, E.c.police_ref, E.c.severity, E.c.message)
            .where(E.c.batch_id == batch_id, visible(user, "row_error")).order_by(E.c.row, E.c.id))
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


def has_notifications(session: Session, user: User) -> bool:
    """Whether any notification the user may see exists (an empty hub offers the demo data set)."""
    return session.connection().execute(select(N.c.id).where(visible(user, "notification")).limit(1)).first() is not None


def find_notification(session: Session, user: User, police_ref: str) -> int | None:
    """The id of the notification with this police reference that the user may see (audited as a search)."""
    ref = (police_ref or "").strip()
    found = session.connection().execute(
        select(N.c.id).where(N.c.police_ref == ref, visible(user, "notification"))).first()
    audit.record(session, user, "search", "notification", found[0] if found else None, police_ref=ref,
                 outcome="ok" if found else "not_found")
    return found[0] if found else None


def log_search(session: Session, user: User, **criteria) -> None:
    """A search of notifications (the filters used), for the audit log."""
    audit.record(session, user, "search", "notification", None, **criteria)


def log_export(session: Session, user: User, what: str, **details) -> None:
    audit.record(session, user, "export", what, None, **details)
