"""The audit log: one function, called inside the transaction of the thing it records."""
from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from core.models import AuditEvent, User


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
        agency=user.agency if user else None,
        school_urn=user.school_urn if user else None,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        outcome=outcome,
        details=json.dumps(details, default=str, sort_keys=True) if details else None,
    )
    session.add(event)
    return event
