"""What a user may read and do: one deny-by-default place.

``visible(user, resource)`` returns the WHERE clause every read of that resource adds; anything not listed
here is invisible (``false()``). ``can(user, action)`` answers whether a user may perform an action at all.
Pages are offered per role from ``PAGES_BY_ROLE``; a page not offered is not reachable by URL either
(st.navigation only routes to the pages it was given).

Agency representatives will see the notifications their agency was asked to act on once actions exist
(issue 5); school key adults their own pupils' alerts (issue 6). Until then they see no case data at all.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, false, true
from sqlmodel import Session

from core import audit

from core.models import User, UserRole

# action -> roles allowed
ACTIONS: dict[str, frozenset[UserRole]] = {
    "import": frozenset({UserRole.coordinator}),
    "manage_profiles": frozenset({UserRole.coordinator}),
    "read_notifications": frozenset({UserRole.coordinator}),
    "load_demo": frozenset({UserRole.coordinator}),
    "manage_users": frozenset({UserRole.coordinator, UserRole.admin}),
}

# role -> page keys, in menu order (app.py maps keys to st.Page objects)
PAGES_BY_ROLE: dict[UserRole, tuple[str, ...]] = {
    UserRole.coordinator: ("notifications", "import", "account"),
    UserRole.agency: ("account",),
    UserRole.school: ("account",),
    UserRole.admin: ("account",),
    UserRole.manager: ("account",),
}


def is_active(user: User | None) -> bool:
    return user is not None and not user.disabled


def can(user: User | None, action: str) -> bool:
    return is_active(user) and user.role in ACTIONS.get(action, frozenset())


def visible(user: User | None, resource: str) -> ColumnElement[bool]:
    """The filter for every read of ``resource`` (a table name) by ``user``. Deny by default."""
    if not is_active(user):
        return false()
    if user.role == UserRole.coordinator and resource in {
        "notification", "person", "notification_person", "field_change", "import_batch", "row_error",
    }:
        return true()
    return false()


def pages_for(user: User | None) -> tuple[str, ...]:
    return PAGES_BY_ROLE.get(user.role, ()) if is_active(user) else ()


class Refused(PermissionError):
    """The user may not do this; the attempt has been audited."""


def require(session: Session, user: User | None, action: str) -> None:
    """Raise Refused unless ``user`` may perform ``action``. The refusal is audited in its own transaction, so
    it is kept even though the caller's transaction will roll back."""
    if can(user, action):
        return
    with Session(session.get_bind()) as own:
        audit.record(own, user, "refused", None, None, outcome="refused", attempted=action)
        own.commit()
    raise Refused(f"You are not allowed to {action.replace('_', ' ')}.")
