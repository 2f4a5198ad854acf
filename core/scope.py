"""What a user may read and change: one deny-by-default place.

* ``visible(user, resource)`` is the WHERE clause every read of ``resource`` adds. A resource or role not named
  here gets ``false()``: nothing.
* ``changeable(user, resource)`` is the WHERE clause every UPDATE of ``resource`` adds, so a crafted id or a stale
  page can never reach another agency's action or another school's alert: the UPDATE simply matches no row.
* ``can(user, action)`` answers whether a role may do something at all; ``require`` refuses and audits.
* Pages are offered per role from ``PAGES_BY_ROLE``; a page not offered is not registered with ``st.navigation``,
  so its URL does not reach it either.

| role | reads | changes |
|---|---|---|
| coordinator | everything in the hub | imports, actions of any agency, users, agencies |
| agency | notifications its agency has an action on, their people, its own actions | its own agency's actions |
| school | Encompass alerts for its own URN | acknowledges its own alerts |
| admin | users, agencies, the audit log (details of case events withheld); no case data | users, agencies |
| manager | aggregate figures only (dashboard, issue 7) | nothing |

The case tables are imported inside the functions: ``core`` is otherwise free of the app's packages, but the
scope must name the tables it guards.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, FromClause, and_, false, select, true
from sqlmodel import Session

from core import audit
from core.models import User, UserRole

C, A, S, AD, M = UserRole.coordinator, UserRole.agency, UserRole.school, UserRole.admin, UserRole.manager

# action -> roles allowed
ACTIONS: dict[str, frozenset[UserRole]] = {
    "import": frozenset({C}),
    "manage_profiles": frozenset({C}),
    "read_notifications": frozenset({C, A}),
    "load_demo": frozenset({C}),
    "manage_actions": frozenset({C}),  # create actions for any agency, amend any
    "update_own_actions": frozenset({C, A}),
    "acknowledge_alerts": frozenset({S}),
    "manage_users": frozenset({C, AD}),
    "read_audit": frozenset({C, AD}),
    # ``details`` of audit rows on case records (CASE_ENTITIES) are case data: an admin reads the rest of the row
    "read_case_audit_details": frozenset({C}),
    "export_audit": frozenset({AD}),
    "view_dashboard": frozenset({C, M}),
    "manage_agenda": frozenset({C}),  # build, publish, add, remove and reorder the daily meeting's agenda
    "read_agenda": frozenset({C}),  # the agenda, its export and print view
    "manage_matches": frozenset({C}),  # confirm, reject or undo possible matches between person records
    "record_meeting": frozenset({C}),  # open, run and close the meeting; amend a closed one
    "read_meeting": frozenset({C}),  # the meeting record and its minutes
    "import_schools": frozenset({C, AD}),  # load the GIAS establishments download
    "manage_schools": frozenset({C}),  # key adults, resolving typed school names, remembered spellings
    "manage_alerts": frozenset({C}),  # the Encompass queue: resolve, send, escalations
}

# role -> page keys, in menu order (app.py maps keys to st.Page objects)
PAGES_BY_ROLE: dict[UserRole, tuple[str, ...]] = {
    C: ("notifications", "dashboard", "import", "agenda", "meeting", "actions", "overdue", "encompass", "schools",
        "users", "account"),
    A: ("my_actions", "account"),
    S: ("alerts", "account"),
    AD: ("users", "schools", "audit", "account"),
    M: ("dashboard", "account"),
}

CASE_ENTITIES = ("notification", "person", "action", "encompass_alert", "import_batch", "person_match", "meeting",
                 "agenda_item", "case_record", "agency_share", "meeting_attendee")


class Refused(PermissionError):
    """The user may not do this; the attempt has been audited."""


def is_active(user: User | None) -> bool:
    return user is not None and not user.disabled


def can(user: User | None, action: str) -> bool:
    return is_active(user) and user.role in ACTIONS.get(action, frozenset())


def pages_for(user: User | None) -> tuple[str, ...]:
    return PAGES_BY_ROLE.get(user.role, ()) if is_active(user) else ()


def _agency_notifications(user: User):
    """Ids of the notifications the user's agency has an action on."""
    from meetings.models import Action

    t = Action.__table__
    return select(t.c.notification_id).where(t.c.agency_id == user.agency_id)


def _agency_cases(user: User):
    """Ids of the meeting case records the user's agency has an action on: what the meeting recorded for those
    cases (all agencies' shared notes, confirmed risk, decisions) was shared with that agency."""
    from meetings.models import Action

    t = Action.__table__
    return select(t.c.case_id).where(t.c.agency_id == user.agency_id, t.c.case_id.is_not(None))


def visible(user: User | None, resource: str, table: FromClause | None = None) -> ColumnElement[bool]:
    """The filter for every read of ``resource`` by ``user``; ``table`` when the query uses an alias."""
    if not is_active(user):
        return false()
    role = user.role
    if role == C and resource in {"notification", "person", "notification_person", "field_change", "import_batch",
                                  "row_error", "action", "encompass_alert", "agency", "user",
                                  "person_match", "meeting", "agenda_item", "case_record", "case_decision",
                                  "agency_share", "action_change", "meeting_attendee", "meeting_amendment",
                                  "school", "key_adult", "school_alias"}:
        return true()
    if role == C and resource == "audit_event":
        from core.models import AuditEvent

        t = table if table is not None else AuditEvent.__table__
        return t.c.entity.in_(CASE_ENTITIES)  # "who viewed or changed this record"; the full log is the admin's
    if role == AD and resource in {"user", "agency", "audit_event", "school", "key_adult"}:
        return true()
    if role == A and user.agency_id is not None:
        if resource == "notification":
            from dv.models import Notification

            t = table if table is not None else Notification.__table__
            return t.c.id.in_(_agency_notifications(user))
        if resource == "notification_person":
            from dv.models import NotificationPerson

            t = table if table is not None else NotificationPerson.__table__
            return t.c.notification_id.in_(_agency_notifications(user))
        if resource == "action":
            from meetings.models import Action

            t = table if table is not None else Action.__table__
            return t.c.agency_id == user.agency_id
        if resource == "agency":
            from core.models import Agency

            t = table if table is not None else Agency.__table__
            return t.c.id == user.agency_id
        if resource == "action_change":
            from meetings.models import Action, ActionChange

            t = table if table is not None else ActionChange.__table__
            a = Action.__table__
            return t.c.action_id.in_(select(a.c.id).where(a.c.agency_id == user.agency_id))
        if resource in {"case_record", "case_decision", "agency_share"}:
            from meetings.models import AgencyShare, CaseDecision, CaseRecord

            model = {"case_record": CaseRecord, "case_decision": CaseDecision, "agency_share": AgencyShare}[resource]
            t = table if table is not None else model.__table__
            return (t.c.id if resource == "case_record" else t.c.case_id).in_(_agency_cases(user))
    if role == S and user.school_urn and resource == "encompass_alert":
        from dv.models import AlertStatus, EncompassAlert

        t = table if table is not None else EncompassAlert.__table__
        # a withdrawn alert (the child moved to another setting, or taken off the record) is no longer the school's
        return and_(t.c.school_urn == user.school_urn, t.c.status != AlertStatus.withdrawn.value)
    return false()


def changeable(user: User | None, resource: str, table: FromClause | None = None) -> ColumnElement[bool]:
    """The filter every UPDATE of ``resource`` by ``user`` carries. Deny by default."""
    if not is_active(user):
        return false()
    if resource == "action":
        from meetings.models import Action

        t = table if table is not None else Action.__table__
        if user.role == C:
            return true()
        if user.role == A and user.agency_id is not None:
            return t.c.agency_id == user.agency_id
    if resource == "encompass_alert" and user.role == S and user.school_urn:
        from dv.models import EncompassAlert

        t = table if table is not None else EncompassAlert.__table__
        return t.c.school_urn == user.school_urn
    if resource in {"user", "agency"} and user.role in {C, AD}:
        return true()
    if resource in {"key_adult", "school_alias"} and user.role == C:
        return true()
    return false()


def refuse(session: Session, user: User | None, attempted: str, entity: str | None = None, entity_id=None) -> Refused:
    """Undo whatever the refused attempt started, commit an audit row of the refusal (so it survives the caller's
    rollback), and return the exception for the caller to raise."""
    session.rollback()
    audit.record(session, user, "refused", entity, entity_id, outcome="refused", attempted=attempted)
    session.commit()
    return Refused(f"You are not allowed to {attempted.replace('_', ' ')}.")


def require(session: Session, user: User | None, action: str) -> None:
    """Raise Refused (audited) unless ``user`` may perform ``action``."""
    if not can(user, action):
        raise refuse(session, user, action)
