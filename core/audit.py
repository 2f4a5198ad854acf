"""The audit log: one function, called inside the transaction of the thing it records."""
from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from core.models import Agency, AuditEvent, User


def _agency_name(session: Session, user: User | None) -> str | None:
    if user is None or user.agency_id is None:
        return None
    agency = session.get(Agency, user.agency_id)
    return agency.name if agency else None


def record(
    session: Session,
    user: User | None,
    action: str,
    entity: str | None = None,
    entity_id: Any = None,
    outcome: str = "ok",
    **details: Any,
) -> AuditEvent:
    """Add an audit row to ``session``; it commits or rolls back with the change it describes."""
    event = AuditEvent(
        user_id=user.id if user else None,
        username=user.username if user else details.pop("username", None),
        role=user.role.value if user else None,
        agency=_agency_name(session, user),
        school_urn=user.school_urn if user else None,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        outcome=outcome,
        details=json.dumps(details, default=str, sort_keys=True) if details else None,
    )
    session.add(event)
    return event


def query_events(session: Session, user: User, *, start=None, end=None, username: str | None = None,
                 action: str | None = None, entity: str | None = None, entity_id=None, limit: int = 5000) -> list[dict]:
    """Audit rows the user may read (``core.scope.visible``), newest first. ``start``/``end`` are UTC datetimes."""
    from sqlalchemy import select

    from core.scope import visible

    t = AuditEvent.__table__
    stmt = select(t).where(visible(user, "audit_event")).order_by(t.c.id.desc()).limit(limit)
    if start is not None:
        stmt = stmt.where(t.c.at_utc >= start)
    if end is not None:
        stmt = stmt.where(t.c.at_utc < end)
    if username:
        stmt = stmt.where(t.c.username == username.strip().lower())
    if action:
        stmt = stmt.where(t.c.action == action)
    if entity:
        stmt = stmt.where(t.c.entity == entity)
    if entity_id is not None and entity_id != "":
        stmt = stmt.where(t.c.entity_id == str(entity_id))
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


def record_history(session: Session, user: User, entity: str, entity_id) -> list[dict]:
    """Who viewed or changed this record, and when."""
    return query_events(session, user, entity=entity, entity_id=entity_id, limit=1000)


AUDIT_COLUMNS = ("id", "at_utc", "username", "role", "agency", "school_urn", "action", "entity", "entity_id",
                 "outcome", "details")


def export_events(session: Session, user: User, rows: list[dict]) -> bytes:
    """The rows as a formula-safe workbook; the export itself is audited."""
    from core.exports import xlsx_bytes
    from core.scope import require

    require(session, user, "export_audit")
    record(session, user, "export", "audit_event", None, rows=len(rows))
    return xlsx_bytes({"Audit log": (list(AUDIT_COLUMNS), [[r[c] for c in AUDIT_COLUMNS] for r in rows])})
