"""Agency actions: create (coordinator), list (scoped), update (own agency, version-checked), history, overdue.

Every UPDATE carries both the user's scope (``core.scope.changeable``) and the version the editor last saw, so a
forged id touches nothing and a stale page never overwrites a colleague's save. Every changed field is written to
``action_change`` (who, when, old, new) in the same transaction, and to the audit log.

Agency representatives change status, note and named owner. What the meeting agreed (agency, description, due
date) is the coordinator's; changed after the meeting closed, it is an **amendment**: flagged on the history row and
listed in the meeting's minutes.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, insert, select, update
from sqlmodel import Session

from core import audit
from core.db import checked_update
from core.models import Agency, User
from core.scope import can, changeable, refuse, require, visible
from core.timeutil import london_now, utcnow
from dv.models import Notification
from meetings.models import (Action, ActionChange, ActionStatus, AgencyShare, CaseDecision, CaseRecord, Meeting,
                             MeetingAmendment, MeetingStatus)
from meetings.workhours import default_due

A = Action.__table__
N = Notification.__table__
G = Agency.__table__
H = ActionChange.__table__
M = Meeting.__table__
NEEDS_NOTE = {ActionStatus.done, ActionStatus.not_possible, ActionStatus.not_done}
CLOSED = {ActionStatus.done, ActionStatus.not_possible, ActionStatus.not_done}
OPEN_STATUSES = (ActionStatus.open.value, ActionStatus.in_progress.value)
CLOSED_STATUSES = tuple(s.value for s in CLOSED)
AGREED_FIELDS = ("agency_id", "description", "due_at")  # what the meeting agreed: coordinator only
AGENCY_FIELDS = ("status", "note", "owner")


class Conflict(Exception):
    """Someone saved this action after the editor loaded it. ``current`` holds the values now stored."""

    def __init__(self, current: dict):
        super().__init__("This action was changed by someone else after you opened it. Their version is shown; "
                         "make your change again if it is still needed.")
        self.current = current


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    return getattr(value, "value", value) if not isinstance(value, (int, float)) else str(value)


def _meeting_closed(conn, meeting_id: int | None) -> bool:
    if meeting_id is None:
        return False
    status = conn.execute(select(M.c.status).where(M.c.id == meeting_id)).scalar()
    return status == MeetingStatus.closed.value or status == MeetingStatus.closed


def create_action(session: Session, user: User | None, *, notification_id: int, agency_id: int, description: str,
                  due_at: dt.datetime | None = None, owner: str | None = None, meeting_id: int | None = None,
                  case_id: int | None = None, risk=None, now: dt.datetime | None = None) -> int:
    """Agree an action. Without ``due_at`` it is due ``risk``'s working hours after ``now`` (wall-clock)."""
    require(session, user, "manage_actions")
    description = (description or "").strip()
    if not description:
        raise ValueError("Describe the action.")
    conn = session.connection()
    found = conn.execute(select(N.c.id, N.c.risk).where(N.c.id == notification_id,
                                                       visible(user, "notification"))).first()
    agency = conn.execute(select(G.c.id).where(G.c.id == agency_id, G.c.active.is_(True))).first()
    if found is None or agency is None:
        raise refuse(session, user, "create_action", "notification", notification_id)
    if due_at is None:
        due_at = default_due(risk or found.risk, now or london_now())
    amendment = _meeting_closed(conn, meeting_id)
    stamp = utcnow()
    values = dict(notification_id=notification_id, agency_id=agency_id, description=description,
                  due_at=due_at, owner=(owner or "").strip() or None, status=ActionStatus.open,
                  created_by_id=user.id if user else None, created_at_utc=stamp, updated_at_utc=stamp, version=1,
                  meeting_id=meeting_id, case_id=case_id, amendment=amendment)
    action_id = conn.execute(insert(A).values(**values)).inserted_primary_key[0]
    conn.execute(insert(H).values(action_id=action_id, field="created", old_value=None,
                                  new_value=f"{description} (due {_text(due_at)})",
                                  changed_by_id=user.id if user else None, changed_at_utc=stamp, amendment=amendment))
    if amendment:
        conn.execute(insert(MeetingAmendment.__table__).values(
            meeting_id=meeting_id, entity="action", entity_id=action_id, by_id=user.id, at_utc=stamp,
            summary=f"Action added after the meeting: {description}"))
    audit.record(session, user, "change", "action", action_id,
                 new={k: _text(v) for k, v in values.items()} | {"amendment": amendment})
    return action_id


def _columns():
    return (A.c.id, A.c.notification_id, A.c.agency_id, G.c.name.label("agency"), A.c.owner, A.c.description,
            A.c.due_at, A.c.status, A.c.note, A.c.version, A.c.updated_at_utc, A.c.completed_at_utc,
            A.c.meeting_id, A.c.case_id, A.c.amendment, N.c.police_ref, N.c.incident_at, N.c.risk, N.c.stream)


def _select():
    return select(*_columns()).join(N, N.c.id == A.c.notification_id).join(G, G.c.id == A.c.agency_id)


BUCKETS = ("overdue", "due_today", "later", "closed")


def list_actions(session: Session, user: User, *, statuses: tuple[str, ...] | None = None,
                 agency_id: int | None = None, now: dt.datetime | None = None, limit: int = 500,
                 include_closed: bool = True, log_view: bool = False) -> list[dict]:
    """Actions the user may see: overdue first (oldest due first), then due today, then the rest of the open ones,
    then (``include_closed``) the closed ones, most recently closed first. At most ``limit`` per group.
    ``log_view`` audits the list (its filter and row count; the page passes it once per page visit and filter).

    Each group is its own index-friendly query ((agency, status, due) index), so an agency with a hundred
    thousand old actions still lists in milliseconds; each row has ``bucket`` and ``overdue``."""
    now = now or london_now()
    today_end = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())
    wanted = {ActionStatus(s).value for s in statuses} if statuses else None
    conn = session.connection()

    def run(status_values, where, order) -> list[dict]:
        keep = [s for s in status_values if wanted is None or s in wanted]
        if not keep:
            return []
        stmt = _select().where(visible(user, "action"), A.c.status.in_(keep), *where).order_by(*order).limit(limit)
        if agency_id is not None:
            stmt = stmt.where(A.c.agency_id == agency_id)
        return [dict(r) for r in conn.execute(stmt).mappings()]

    groups = {
        "overdue": run(OPEN_STATUSES, [A.c.due_at < now], [A.c.due_at, A.c.id]),
        "due_today": run(OPEN_STATUSES, [A.c.due_at >= now, A.c.due_at < today_end], [A.c.due_at, A.c.id]),
        "later": run(OPEN_STATUSES, [(A.c.due_at >= today_end) | A.c.due_at.is_(None)],
                     [A.c.due_at.is_(None), A.c.due_at, A.c.id]),
        "closed": run(CLOSED_STATUSES, [], [A.c.completed_at_utc.desc(), A.c.id.desc()]) if include_closed else [],
    }
    rows = []
    for bucket in BUCKETS:
        for r in groups[bucket]:
            r["bucket"] = bucket
            r["overdue"] = bucket == "overdue"
            rows.append(r)
    if log_view:
        _log_list(session, user, "actions list", rows, agency_id=agency_id,
                  statuses=sorted(wanted) if wanted else None, include_closed=include_closed)
    return rows


def _log_list(session: Session, user: User, listed: str, rows: list[dict], **criteria) -> None:
    """A list of actions shown to a user is a read of case data (police references, descriptions, notes): audited
    like the scheduled job's list (``meetings.digest.job_list_actions``), with the filter, the row count and the ids."""
    ids = [r["id"] for r in rows]
    audit.record(session, user, "view", "action", None, listed=listed, **criteria, rows=len(rows),
                 ids=ids if len(ids) <= 500 else None)


def get_action(session: Session, user: User | None, action_id: int) -> dict | None:
    row = session.connection().execute(
        _select().where(A.c.id == action_id, visible(user, "action"))).mappings().first()
    return dict(row) if row else None


def update_action(session: Session, user: User | None, action_id: int, *, expected_version: int,
                  status: str | ActionStatus | None = None, note: str | None = None, owner: str | None = None,
                  description: str | None = None, due_at: dt.datetime | None = None,
                  agency_id: int | None = None) -> dict:
    """Change an action. ``None`` leaves a field as it is (``note`` and ``owner`` are cleared with ""). Refused
    (and audited) outside the user's scope, or for an agency changing what the meeting agreed; Conflict when the
    action changed since ``expected_version``. Returns the stored values."""
    if not can(user, "update_own_actions"):
        raise refuse(session, user, "update_action", "action", action_id)
    agreed = {"description": description, "due_at": due_at, "agency_id": agency_id}
    if any(v is not None for v in agreed.values()) and not can(user, "manage_actions"):
        raise refuse(session, user, "change_agreed_action", "action", action_id)
    old = get_action(session, user, action_id)
    if old is None:
        raise refuse(session, user, "update_action", "action", action_id)
    new: dict = {}
    if status is not None:
        new["status"] = ActionStatus(status)
    if note is not None:
        new["note"] = note.strip() or None
    if owner is not None:
        new["owner"] = owner.strip() or None
    if description is not None:
        if not description.strip():
            raise ValueError("Describe the action.")
        new["description"] = description.strip()
    if due_at is not None:
        new["due_at"] = due_at
    if agency_id is not None:
        if session.connection().execute(select(G.c.id).where(G.c.id == agency_id, G.c.active.is_(True))).first() \
                is None:
            raise ValueError("No such agency.")
        new["agency_id"] = agency_id
    final_status = new.get("status", old["status"])
    final_note = new.get("note", old["note"])
    if final_status in NEEDS_NOTE and not final_note:
        raise ValueError(f"Say why: a note is needed for '{final_status.value.replace('_', ' ')}'.")
    changed = {k: v for k, v in new.items() if v != old[k]}
    if not changed:
        return old
    stamp = utcnow()
    values = dict(changed, version=A.c.version + 1, updated_at_utc=stamp)
    if "status" in changed:
        values["completed_at_utc"] = stamp if changed["status"] in CLOSED else None
    if not checked_update(session, update(A).where(A.c.id == action_id, A.c.version == expected_version,
                                                    changeable(user, "action")).values(**values)):
        current = get_action(session, user, action_id)
        session.rollback()
        if current is None:
            raise refuse(session, user, "update_action", "action", action_id)
        raise Conflict(current)
    conn = session.connection()
    amendment = any(k in AGREED_FIELDS for k in changed) and _meeting_closed(conn, old["meeting_id"])
    conn.execute(insert(H), [dict(action_id=action_id, field=k, old_value=_text(old[k]), new_value=_text(v),
                                  changed_by_id=user.id, changed_at_utc=stamp, amendment=amendment)
                             for k, v in changed.items()])
    if amendment:
        conn.execute(insert(MeetingAmendment.__table__).values(
            meeting_id=old["meeting_id"], entity="action", entity_id=action_id, by_id=user.id, at_utc=stamp,
            summary="Action changed after the meeting: " + "; ".join(
                f"{k.replace('_id', '').replace('_', ' ')} {_text(old[k]) or '–'} → {_text(v) or '–'}"
                for k, v in changed.items() if k in AGREED_FIELDS)))
    audit.record(session, user, "change", "action", action_id,
                 old={k: _text(old[k]) for k in changed}, new={k: _text(v) for k, v in changed.items()},
                 amendment=amendment)
    return get_action(session, user, action_id)


def action_history(session: Session, user: User, action_id: int) -> list[dict]:
    """Every change to an action the user may see, oldest first: who, when, field, old, new."""
    U = User.__table__
    stmt = (select(H.c.id, H.c.field, H.c.old_value, H.c.new_value, H.c.changed_at_utc, H.c.amendment,
                   U.c.display_name.label("by"))
            .join(A, A.c.id == H.c.action_id).outerjoin(U, U.c.id == H.c.changed_by_id)
            .where(H.c.action_id == action_id, visible(user, "action"), visible(user, "action_change"))
            .order_by(H.c.id))
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


def action_context(session: Session, user: User, action_id: int, *, log_view: bool = False) -> dict | None:
    """The minimal case context an agency needs for an action: the notification's reference, date, stream and
    risk, and — when the action was agreed at a meeting — the confirmed risk, decisions and what each agency
    shared there. Nothing else of the case (no other agency's actions, no people beyond what was shared).
    ``log_view`` audits the view (once per page visit)."""
    action = get_action(session, user, action_id)
    if action is None:
        return None
    if log_view:
        audit.record(session, user, "view", "action", action_id, notification_id=action["notification_id"])
    context = {"action": action, "confirmed_risk": None, "decisions": [], "shared": []}
    if action["case_id"] is None:
        return context
    conn = session.connection()
    CR, CD, S = CaseRecord.__table__, CaseDecision.__table__, AgencyShare.__table__
    case = conn.execute(select(CR.c.confirmed_risk, CR.c.risk_rationale, M.c.meeting_date)
                        .join(M, M.c.id == CR.c.meeting_id)
                        .where(CR.c.id == action["case_id"], visible(user, "case_record"))).mappings().first()
    if case is None:
        return context
    context.update(confirmed_risk=case["confirmed_risk"], meeting_date=case["meeting_date"])
    context["decisions"] = list(conn.execute(
        select(CD.c.decision).where(CD.c.case_id == action["case_id"], visible(user, "case_decision"))
        .order_by(CD.c.id)).scalars())
    context["shared"] = [dict(r) for r in conn.execute(
        select(G.c.name.label("agency"), S.c.note).join(G, G.c.id == S.c.agency_id)
        .where(S.c.case_id == action["case_id"], visible(user, "agency_share")).order_by(G.c.name)).mappings()]
    return context


def overdue_by_agency(session: Session, user: User, *, now: dt.datetime | None = None) -> list[dict]:
    """For the coordinator's Overdue view: per agency, open actions overdue and due today (index-only counts)."""
    require(session, user, "manage_actions")
    now = now or london_now()
    today_end = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())
    conn = session.connection()
    counts: dict[int, dict] = {a.id: {"agency_id": a.id, "agency": a.name, "overdue": 0, "due_today": 0}
                               for a in conn.execute(select(G.c.id, G.c.name).where(G.c.active.is_(True))
                                                     .order_by(G.c.name))}
    for key, where in (("overdue", A.c.due_at < now), ("due_today", (A.c.due_at >= now) & (A.c.due_at < today_end))):
        for agency, n in conn.execute(select(A.c.agency_id, func.count()).where(
                A.c.status.in_(OPEN_STATUSES), where, visible(user, "action")).group_by(A.c.agency_id)):
            if agency in counts:
                counts[agency][key] = n
    return list(counts.values())


def chase_list(session: Session | None, user: User | None, *, agency_id: int | None = None,
               now: dt.datetime | None = None, limit: int = 1000, conn=None, log_view: bool = False) -> list[dict]:
    """Open actions overdue or due today, overdue first. ``user`` None is the scheduled job (the digest), which
    audits its own read. ``log_view`` audits the list (filter, row count; once per page visit and filter)."""
    now = now or london_now()
    today_end = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())
    conn = conn if conn is not None else session.connection()
    stmt = (_select().where(A.c.status.in_(OPEN_STATUSES), A.c.due_at < today_end)
            .order_by(A.c.due_at, A.c.id).limit(limit))
    if user is not None:
        stmt = stmt.where(visible(user, "action"))
    if agency_id is not None:
        stmt = stmt.where(A.c.agency_id == agency_id)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    for r in rows:
        r["overdue"] = r["due_at"] < now
        r["bucket"] = "overdue" if r["overdue"] else "due_today"
    if log_view:
        _log_list(session, user, "chase list", rows, agency_id=agency_id)
    return rows
