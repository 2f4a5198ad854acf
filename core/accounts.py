"""Managing accounts and agencies (coordinators and admins). Every change is version-checked and audited with
its old and new values."""
from __future__ import annotations

import secrets

from sqlalchemy import select, true, update
from sqlmodel import Session

from core import audit
from core.auth import hash_password, manages_coordinators
from core.models import Agency, AgencyKind, User, UserRole
from core.scope import changeable, refuse, require, visible

U = User.__table__
G = Agency.__table__
EDITABLE = ("display_name", "email", "role", "agency_id", "school_urn", "disabled")


class StaleEdit(Exception):
    def __init__(self, current: dict):
        super().__init__("This account was changed by someone else after you opened it; their version is shown.")
        self.current = current


def list_users(session: Session, actor: User) -> list[dict]:
    stmt = (select(U.c.id, U.c.username, U.c.display_name, U.c.email, U.c.role, U.c.agency_id,
                   G.c.name.label("agency"), U.c.school_urn, U.c.disabled, U.c.must_change_password,
                   U.c.last_login_utc, U.c.version)
            .outerjoin(G, G.c.id == U.c.agency_id).where(visible(actor, "user")).order_by(U.c.username))
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


def list_agencies(session: Session, actor: User) -> list[dict]:
    stmt = select(G).where(visible(actor, "agency")).order_by(G.c.name)
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


def agency_by_name(session: Session, name: str) -> Agency | None:
    return session.execute(select(Agency).where(Agency.name == name.strip())).scalars().first()


def add_agency(session: Session, actor: User | None, name: str, kind: str = "other", email: str | None = None) -> int:
    if actor is not None:
        require(session, actor, "manage_users")
    name = name.strip()
    if not name:
        raise ValueError("An agency needs a name.")
    if agency_by_name(session, name):
        raise ValueError(f"There is already an agency called {name}.")
    agency = Agency(name=name, kind=AgencyKind(kind), email=email or None)
    session.add(agency)
    session.flush()
    audit.record(session, actor, "change", "agency", agency.id, new={"name": name, "kind": kind, "email": email})
    return agency.id


def update_user(session: Session, actor: User, user_id: int, expected_version: int, **changes) -> dict:
    """Change role, agency, school, name, email or disabled. Refused outside ``manage_users``; StaleEdit when the
    account changed since ``expected_version``. A user cannot disable or demote themselves (no lock-out). Only a
    coordinator may give the coordinator role or change a coordinator's email (``manages_coordinators``)."""
    require(session, actor, "manage_users")
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"Cannot change {', '.join(sorted(unknown))}.")
    if "role" in changes:
        changes["role"] = UserRole(changes["role"])
    old = session.connection().execute(select(U).where(U.c.id == user_id, visible(actor, "user"))).mappings().first()
    if old is None:
        raise refuse(session, actor, "update_user", "user", user_id)
    if not manages_coordinators(actor):
        # The email is how a council sign-in finds the account. The role read here cannot change before the
        # UPDATE below: any change to it bumps the version that UPDATE checks.
        was_coordinator = UserRole(old["role"]) == UserRole.coordinator
        if changes.get("role") == UserRole.coordinator and not was_coordinator:
            raise refuse(session, actor, "give_the_coordinator_role", "user", user_id)
        if was_coordinator and "email" in changes and changes["email"] != old["email"]:
            raise refuse(session, actor, "change_a_coordinator_email", "user", user_id)
    merged = {**{k: old[k] for k in EDITABLE}, **changes}
    if user_id == actor.id and (merged["disabled"] or merged["role"] != actor.role):
        raise ValueError("You cannot disable your own account or change your own role.")
    if merged["role"] == UserRole.agency and not merged["agency_id"]:
        raise ValueError("An agency representative must belong to an agency.")
    if merged["role"] == UserRole.school and not merged["school_urn"]:
        raise ValueError("A school key adult must belong to a school (URN).")
    if merged["role"] != UserRole.agency:
        changes["agency_id"] = None
    if merged["role"] != UserRole.school:
        changes["school_urn"] = None
    result = session.connection().execute(
        update(U).where(U.c.id == user_id, U.c.version == expected_version, changeable(actor, "user"))
        .values(**changes, version=U.c.version + 1))
    if result.rowcount != 1:
        current = dict(session.connection().execute(select(U).where(U.c.id == user_id)).mappings().first())
        session.rollback()
        raise StaleEdit({k: current[k] for k in EDITABLE + ("version",)})
    diff_old = {k: _plain(old[k]) for k in changes if old[k] != changes[k]}
    diff_new = {k: _plain(changes[k]) for k in diff_old}
    audit.record(session, actor, "change", "user", user_id, old=diff_old, new=diff_new)
    return diff_new


def reset_password(session: Session, actor: User, user_id: int) -> str:
    """A one-time temporary password the user must change at next sign-in; shown once, stored only as a hash.
    Only a coordinator may reset a coordinator's password (``manages_coordinators``)."""
    require(session, actor, "manage_users")
    temporary = secrets.token_urlsafe(12)
    # In the UPDATE's WHERE: an account made coordinator meanwhile matches nothing and the reset is refused.
    not_coordinator = true() if manages_coordinators(actor) else U.c.role != UserRole.coordinator
    result = session.connection().execute(
        update(U).where(U.c.id == user_id, changeable(actor, "user"), not_coordinator)
        .values(password_hash=hash_password(temporary), must_change_password=True, failed_logins=0,
                locked_until_utc=None, version=U.c.version + 1))
    if result.rowcount != 1:
        raise refuse(session, actor, "reset_password", "user", user_id)
    audit.record(session, actor, "change", "user", user_id, new={"password": "reset (temporary)"})
    return temporary


def _plain(value):
    return value.value if hasattr(value, "value") else value
