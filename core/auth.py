"""Local accounts: argon2 password hashes, a minimum length and a common-password check, lockout after repeated
failures, and the first coordinator. Every sign-in attempt is audited in the same transaction."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, update
from sqlmodel import Session, func, select

from core import audit
from core.models import Agency, User, UserRole
from core.scope import refuse, require
from core.settings import ROOT, get_settings
from core.timeutil import utcnow

_hasher = PasswordHasher()  # stateless and thread-safe: parameters only
COMMON_PASSWORDS_FILE = ROOT / "data" / "common_passwords.txt"
# A hash to verify against when the user does not exist, so a wrong username costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password-dummy")
U = User.__table__


class AuthError(Exception):
    """Sign-in refused; the message is safe to show (it never says whether the username exists)."""


class PasswordRejected(ValueError):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _common_passwords(path: Path = COMMON_PASSWORDS_FILE) -> frozenset[str]:
    try:
        return frozenset(line.strip().casefold() for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#"))
    except FileNotFoundError:
        return frozenset()


def check_password_policy(password: str, username: str = "") -> None:
    settings = get_settings()
    if len(password) < settings.password_min_length:
        raise PasswordRejected(f"Use at least {settings.password_min_length} characters.")
    lowered = password.casefold()
    if lowered in _common_passwords() or (username and username.casefold() in lowered):
        raise PasswordRejected("That password is too common or contains the username; choose another.")


def count_users(session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)).one()


def manages_coordinators(actor: User | None) -> bool:
    """Only a coordinator may create a coordinator account, give anyone the coordinator role, or reset or change a
    coordinator's password or email; admins manage every other role. An admin who could would sign in as a
    coordinator and read the case data an admin must never see. ``None`` is the server's operator (the CLI, the
    first-run screen), who has no acting user."""
    return actor is None or actor.role == UserRole.coordinator


def create_user(session: Session, actor: User | None, *, username: str, display_name: str, role: UserRole,
                password: str, email: str | None = None, agency_id: int | None = None, school_urn: str | None = None,
                must_change_password: bool = False) -> User:
    """``actor`` is the user creating the account (refused outside ``manage_users``), or None for the server's
    operator (``python -m dv user add``, the first-run screen)."""
    if actor is not None:
        require(session, actor, "manage_users")
        if UserRole(role) == UserRole.coordinator and not manages_coordinators(actor):
            raise refuse(session, actor, "create_a_coordinator_account", "user")
    username = username.strip().lower()
    if not username:
        raise ValueError("A username is required.")
    if session.exec(select(User).where(User.username == username)).first():
        raise ValueError(f"The username {username} is taken.")
    if role == UserRole.agency and (agency_id is None or session.get(Agency, agency_id) is None):
        raise ValueError("An agency representative must belong to an agency.")
    if role == UserRole.school and not school_urn:
        raise ValueError("A school key adult must belong to a school (URN).")
    check_password_policy(password, username)
    user = User(username=username, display_name=display_name.strip() or username, role=role, email=email,
                agency_id=agency_id if role == UserRole.agency else None,
                school_urn=school_urn if role == UserRole.school else None,
                password_hash=hash_password(password), must_change_password=must_change_password)
    session.add(user)
    session.flush()
    audit.record(session, actor, "user_create", "user", user.id, new={"username": username, "role": role.value,
                                                                       "agency_id": user.agency_id,
                                                                       "school_urn": user.school_urn})
    return user


def create_first_coordinator(session: Session, *, username: str, display_name: str, password: str,
                             email: str | None = None) -> User:
    """Only while there are no users at all: the first-run screen and ``python -m dv user add`` use this."""
    if count_users(session):
        raise ValueError("DA Daily already has users; ask a coordinator or admin to create your account.")
    return create_user(session, None, username=username, display_name=display_name, role=UserRole.coordinator,
                       password=password, email=email)


def authenticate(session: Session, username: str, password: str) -> User:
    """The user, or AuthError. Failed attempts count towards a lockout; all attempts are audited.

    A refusal is recorded in its own transaction before AuthError is raised, so the failure counter and the
    audit row survive the caller's rollback."""
    try:
        return _authenticate(session, username, password)
    except AuthError:
        session.commit()
        raise


def _authenticate(session: Session, username: str, password: str) -> User:
    settings = get_settings()
    username = (username or "").strip().lower()
    user = session.exec(select(User).where(User.username == username)).first()
    now = utcnow()
    if user is None:
        try:
            _hasher.verify(_DUMMY_HASH, password or "")
        except VerificationError:
            pass
        audit.record(session, None, "login_failed", "user", None, outcome="refused", username=username,
                     reason="unknown user")
        raise AuthError("The username or password is wrong.")
    if user.disabled:
        audit.record(session, user, "login_failed", "user", user.id, outcome="refused", reason="disabled")
        raise AuthError("This account is disabled. Ask an administrator.")
    if user.locked_until_utc and user.locked_until_utc > now:
        audit.record(session, user, "login_failed", "user", user.id, outcome="refused", reason="locked")
        raise AuthError("Too many failed attempts: this account is locked for a while. Try later or ask an administrator.")
    try:
        ok = bool(user.password_hash) and _hasher.verify(user.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        # Counted in SQL, in one UPDATE: a count read into Python and written back would let parallel wrong
        # passwords overwrite each other's increment (PostgreSQL), so the lockout would never be reached.
        failures = U.c.failed_logins + 1
        locks = failures >= settings.max_failed_logins
        session.execute(update(U).where(U.c.id == user.id).values(
            failed_logins=case((locks, 0), else_=failures),
            locked_until_utc=case((locks, now + dt.timedelta(minutes=settings.lockout_minutes)),
                                  else_=U.c.locked_until_utc)))
        audit.record(session, user, "login_failed", "user", user.id, outcome="refused", reason="wrong password")
        raise AuthError("The username or password is wrong.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until_utc = None
    user.last_login_utc = now
    session.add(user)
    audit.record(session, user, "login", "user", user.id)
    return user


def change_password(session: Session, user: User, current: str, new: str) -> None:
    try:
        _hasher.verify(user.password_hash or "", current)
    except (VerificationError, InvalidHashError):
        audit.record(session, user, "password_change", "user", user.id, outcome="refused")
        session.commit()  # keep the refusal's audit row though the caller rolls back
        raise AuthError("The current password is wrong.") from None
    check_password_policy(new, user.username)
    # ``user`` is the page's copy, read before this transaction: the version is bumped in SQL, so a colleague's
    # change to the account meanwhile (its own bump) is kept and a page still showing the old version is refused.
    session.execute(update(U).where(U.c.id == user.id).values(
        password_hash=hash_password(new), must_change_password=False, version=U.c.version + 1))
    if user in session:
        session.refresh(user)  # the caller's copy as now stored
    audit.record(session, user, "password_change", "user", user.id)


def load_active_user(session: Session, user_id: int | None) -> User | None:
    """Re-read on every rerun, so a disabled account or a changed role takes effect at once."""
    if user_id is None:
        return None
    user = session.get(User, user_id)
    if user is None or user.disabled:
        return None
    return user
