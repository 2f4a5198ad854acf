"""Agency actions: create (coordinator), list (scoped), update status (own agency, version-checked).

Every UPDATE carries both the user's scope (``core.scope.changeable``) and the version the editor last saw, so a
forged id touches nothing and a stale page never overwrites a colleague's save."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import case, insert, select, update
from sqlmodel import Session

from core import audit
from core.db import checked_update
from core.models import Agency, User
from core.scope import can, changeable, refuse, require, visible
from core.timeutil import london_now, utcnow
from dv.models import Notification
from meetings.models import Action, ActionStatus

A = Action.__table__
N = Notification.__table__
G = Agency.__table__
NEEDS_NOTE = {ActionStatus.done, ActionStatus.not_possible, ActionStatus.not_done}
CLOSED = {ActionStatus.done, ActionStatus.not_possible, ActionStatus.not_done}


class Conflict(Exception):
    """Someone saved this action after the editor loaded it. ``current`` holds the values now stored."""

    def __init__(self, current: dict):
        super().__init__("This action was changed by someone else after you opened it. Their version is shown; "
                         "make your change again if it is still needed.")
        self.current = current


def create_action(session: Session, user: User | None, *, notification_id: int, agency_id: int, description: str,
                  due_at: dt.datetime | None = None, owner: str | None = None) -> int:
    require(session, user, "manage_actions")
    if not description.strip():
        raise ValueError("Describe the action.")
    found = session.connection().execute(
        select(N.c.id).where(N.c.id == notification_id, visible(user, "notification"))).first()
    if found is None or session.get(Agency, agency_id) is None:
        raise refuse(session, user, "create_action", "notification", notification_id)
    now = utcnow()
    values = dict(notification_id=notification_id, agency_id=agency_id, description=description.strip(),
                  due_at=due_at, owner=owner, status=ActionStatus.open, created_by_id=user.id if user else None,
                  created_at_utc=now, updated_at_utc=now, version=1)
    action_id = session.connection().execute(insert(A).values(**values)).inserted_primary_key[0]
    audit.record(session, user, "change", "action", action_id, new={k: v for k, v in values.items() if k != "status"}
                 | {"status": ActionStatus.open.value})
    return action_id


def _columns():
    return (A.c.id, A.c.notification_id, A.c.agency_id, G.c.name.label("agency"), A.c.owner, A.c.description,
            A.c.due_at, A.c.status, A.c.note, A.c.version, A.c.updated_at_utc, N.c.police_ref, N.c.incident_at,
            N.c.risk, N.c.stream)


def list_actions(session: Session, user: User, *, statuses: tuple[str, ...] | None = None,
                 agency_id: int | None = None, now: dt.datetime | None = None, limit: int = 2000) -> list[dict]:
    """Actions the user may see: overdue first, then due today, then the rest (by due date)."""
    now = now or london_now()
    today_end = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())
    open_ = A.c.status.in_([ActionStatus.open.value, ActionStatus.in_progress.value])
    bucket = case((open_ & (A.c.due_at < now), 0), (open_ & (A.c.due_at < today_end), 1), else_=2)
    stmt = (select(*_columns(), bucket.label("bucket"))
            .join(N, N.c.id == A.c.notification_id).join(G, G.c.id == A.c.agency_id)
            .where(visible(user, "action"))
            .order_by(bucket, A.c.due_at.is_(None), A.c.due_at, A.c.id).limit(limit))
    if statuses:
        stmt = stmt.where(A.c.status.in_(statuses))
    if agency_id is not None:
        stmt = stmt.where(A.c.agency_id == agency_id)
    rows = [dict(r) for r in session.connection().execute(stmt).mappings()]
    for r in rows:
        r["overdue"] = r.pop("bucket") == 0
    return rows


def get_action(session: Session, user: User, action_id: int) -> dict | None:
    row = session.connection().execute(
        select(*_columns()).join(N, N.c.id == A.c.notification_id).join(G, G.c.id == A.c.agency_id)
        .where(A.c.id == action_id, visible(user, "action"))).mappings().first()
    return dict(row) if row else None


def update_action(session: Session, user: User | None, action_id: int, *, expected_version: int,
                  status: str | ActionStatus, note: str | None = None) -> dict:
    """Change an action's status and note. Refused (and audited) outside the user's scope; Conflict when the
    action changed since ``expected_version``. Returns the stored values."""
    if not can(user, "update_own_actions"):
        raise refuse(session, user, "update_action", "action", action_id)
    status = ActionStatus(status)
    note = (note or "").strip() or None
    if status in NEEDS_NOTE and not note:
        raise ValueError(f"Say why: a note is needed for '{status.value.replace('_', ' ')}'.")
    old = get_action(session, user, action_id)
    if old is None:
        raise refuse(session, user, "update_action", "action", action_id)
    now = utcnow()
    if not checked_update(session, update(A).where(A.c.id == action_id, A.c.version == expected_version,
                                                    changeable(user, "action"))
                          .values(status=status, note=note, version=A.c.version + 1, updated_at_utc=now,
                                  completed_at_utc=now if status in CLOSED else None)):
        current = get_action(session, user, action_id)
        session.rollback()
        if current is None:
            raise refuse(session, user, "update_action", "action", action_id)
        raise Conflict(current)
    audit.record(session, user, "change", "action", action_id,
                 old={"status": old["status"].value, "note": old["note"]}, new={"status": status.value, "note": note})
    return get_action(session, user, action_id)
