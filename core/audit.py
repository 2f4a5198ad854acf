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


WITHHELD = "withheld: case record"


def withhold_case_details(user: User | None, rows: list[dict]) -> list[dict]:
    """The rows with ``details`` of events on case records replaced by ``WITHHELD`` unless ``user`` may read case
    data. An admin reads the whole log, but ``details`` of a case event holds case data (old and new text of a
    shared note, an action's description and note, a confirmed risk and its rationale, search criteria), which
    the admin may not see; who did what to which record, and when, stays visible."""
    from core.scope import CASE_ENTITIES, can

    if can(user, "read_case_audit_details"):
        return rows
    return [{**r, "details": WITHHELD} if r.get("entity") in CASE_ENTITIES and r.get("details") is not None else r
            for r in rows]


def query_events(session: Session, user: User, *, start=None, end=None, username: str | None = None,
                 action: str | None = None, entity: str | None = None, entity_id=None, limit: int = 5000,
                 log_view: bool = False) -> list[dict]:
    """Audit rows the user may read (``core.scope.visible``), newest first, ``details`` of case events withheld
    from those who may not read case data (``withhold_case_details``). ``start``/``end`` are UTC datetimes.
    ``log_view`` audits the search itself (its filters and row count): the page passes it once per distinct search
    per page visit, as the notifications list does."""
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
    rows = withhold_case_details(user, [dict(r) for r in session.connection().execute(stmt).mappings()])
    if log_view:
        filters = {"start": start, "end": end, "username": username or None, "action": action or None,
                   "entity": entity or None, "entity_id": entity_id or None}
        record(session, user, "search", "audit_event", None, filters=filters, rows=len(rows))
    return rows


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
    rows = withhold_case_details(user, rows)  # whatever the caller passed: the export never carries more
    record(session, user, "export", "audit_event", None, rows=len(rows))
    return xlsx_bytes({"Audit log": (list(AUDIT_COLUMNS), [[r[c] for c in AUDIT_COLUMNS] for r in rows])})
