"""Operation Encompass alerts as a school sees them (issue 6 creates and sends them from the import).

A school key adult sees only its own URN's alerts, and only the fields that were disclosed."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import insert, select, update
from sqlmodel import Session

from core import audit
from core.models import User
from core.scope import changeable, refuse, require, visible
from core.timeutil import utcnow
from dv.models import AlertStatus, EncompassAlert

E = EncompassAlert.__table__


def create_alert(session: Session, user: User | None, *, notification_id: int, school_urn: str | None,
                 disclosed: dict, due_at: dt.datetime | None = None, child_link_id: int | None = None) -> int:
    """Queue an alert with exactly what will be disclosed. ``user`` None is the import job."""
    if user is not None:
        require(session, user, "manage_actions")
    alert_id = session.connection().execute(insert(E).values(
        notification_id=notification_id, child_link_id=child_link_id, school_urn=school_urn, due_at=due_at,
        status=AlertStatus.queued, disclosed=json.dumps(disclosed, sort_keys=True, default=str),
        created_at_utc=utcnow(), version=1)).inserted_primary_key[0]
    audit.record(session, user, "change", "encompass_alert", alert_id, new={"school_urn": school_urn})
    return alert_id


def list_alerts(session: Session, user: User) -> list[dict]:
    """The alerts the user may see, newest first, with only the disclosed fields."""
    stmt = (select(E.c.id, E.c.school_urn, E.c.due_at, E.c.status, E.c.disclosed, E.c.notified_at_utc,
                   E.c.acknowledged_at_utc, E.c.version)
            .where(visible(user, "encompass_alert")).order_by(E.c.due_at.desc(), E.c.id.desc()))
    rows = []
    for r in session.connection().execute(stmt).mappings():
        row = dict(r)
        row["disclosed"] = json.loads(row["disclosed"] or "{}")
        rows.append(row)
    return rows


def acknowledge_alert(session: Session, user: User | None, alert_id: int) -> None:
    """The key adult confirms they have read the alert. Another school's alert is refused and audited."""
    result = session.connection().execute(
        update(E).where(E.c.id == alert_id, changeable(user, "encompass_alert"),
                        E.c.status != AlertStatus.acknowledged.value)
        .values(status=AlertStatus.acknowledged, acknowledged_at_utc=utcnow(),
                acknowledged_by_id=user.id if user else None, version=E.c.version + 1))
    if result.rowcount == 1:
        audit.record(session, user, "acknowledge", "encompass_alert", alert_id)
        return
    mine = session.connection().execute(
        select(E.c.status).where(E.c.id == alert_id, changeable(user, "encompass_alert"))).first()
    if mine is None:  # not this user's school's alert (or no such alert): refused, whatever the id

        raise refuse(session, user, "acknowledge_alert", "encompass_alert", alert_id)
    # already acknowledged: nothing to do


def record_disclosure(session: Session, user: User, alert_id: int) -> None:
    """The alert's content was shown to this school user (audited once per alert per page visit)."""
    audit.record(session, user, "disclosure", "encompass_alert", alert_id)
