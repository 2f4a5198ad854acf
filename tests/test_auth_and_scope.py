"""Accounts, lockout and the deny-by-default scope (the full role matrix grows with issue 3)."""
from __future__ import annotations

import pytest
from sqlmodel import select

from core.auth import (AuthError, PasswordRejected, authenticate, check_password_policy, create_first_coordinator,
                       create_user, load_active_user)
from core.db import session_scope
from core.models import AuditEvent, User, UserRole
from core.scope import Refused, pages_for, require
from dv.importer import import_file, import_upload
from dv.notifications import list_notifications, notification_detail, recent_batches, stream_summary
from dv.profiles import load_profile
from tests.factories import NOW, START, count, extract, records, unaudited

PASSWORD = "correct-horse-staple-7"


def make(session, username, role, **kw):
    return create_user(session, None, username=username, display_name=username, role=role, password=PASSWORD, **kw)


@pytest.fixture
def users(session):
    made = {
        "coordinator": make(session, "coord", UserRole.coordinator),
        "agency": make(session, "csc.rep", UserRole.agency, agency_id=2),  # Children's Social Care (seeded)
        "school": make(session, "dsl", UserRole.school, school_urn="123456"),
        "admin": make(session, "admin", UserRole.admin),
        "manager": make(session, "manager", UserRole.manager),
    }
    session.commit()
    return made


def test_first_coordinator_only_on_an_empty_database(session):
    create_first_coordinator(session, username="First", display_name="First", password=PASSWORD)
    session.commit()
    assert session.exec(select(User)).one().username == "first"
    with pytest.raises(ValueError, match="already has users"):
        create_first_coordinator(session, username="second", display_name="x", password=PASSWORD)


@pytest.mark.parametrize("password,username", [("short", "x"), ("password1234", "x"), ("casey-is-my-name", "casey")])
def test_weak_passwords_are_refused(password, username):
    with pytest.raises(PasswordRejected):
        check_password_policy(password, username)


def test_password_is_stored_as_argon2(session, users):
    assert users["coordinator"].password_hash.startswith("$argon2")


def test_sign_in_audits_success_and_failure_and_locks_after_repeated_failures(engine, users):
    with session_scope(engine) as s:
        assert authenticate(s, "COORD", PASSWORD).username == "coord"
    for _ in range(5):
        with pytest.raises(AuthError, match="username or password is wrong"):
            with session_scope(engine) as s:
                authenticate(s, "coord", "wrong-password-here")
    with pytest.raises(AuthError, match="locked"):
        with session_scope(engine) as s:
            authenticate(s, "coord", PASSWORD)
    with pytest.raises(AuthError, match="username or password is wrong"):
        with session_scope(engine) as s:
            authenticate(s, "nobody", PASSWORD)
    with session_scope(engine) as s:
        actions = [(e.action, e.outcome) for e in s.exec(select(AuditEvent).where(AuditEvent.action.like("login%"))
                                                       .order_by(AuditEvent.id))]
    assert actions == [("login", "ok")] + [("login_failed", "refused")] * 7


def test_a_disabled_user_is_gone_at_the_next_rerun(session, users):
    coord = users["coordinator"]
    assert load_active_user(session, coord.id) is not None
    with unaudited():
        coord.disabled = True
        session.add(coord)
        session.commit()
    assert load_active_user(session, coord.id) is None
    with pytest.raises(AuthError, match="disabled"):
        authenticate(session, "coord", PASSWORD)


def test_pages_offered_per_role(users):
    assert pages_for(users["coordinator"]) == ("notifications", "dashboard", "import", "agenda", "meeting", "actions",
                                               "overdue", "encompass", "schools", "users", "account")
    assert pages_for(users["agency"]) == ("my_actions", "account")
    assert pages_for(users["school"]) == ("alerts", "account")
    assert pages_for(users["admin"]) == ("users", "schools", "audit", "account")
    assert pages_for(users["manager"]) == ("dashboard", "account")
    assert pages_for(None) == ()


def test_without_actions_only_coordinators_see_notifications(session, users, tmp_path):
    import_file(session, extract(tmp_path, "niche_wide", records(6)), load_profile("niche_wide"), now=NOW)
    session.commit()
    start, end = START, NOW.date()
    everything = list_notifications(session, users["coordinator"], start, end)
    assert len(everything) == 6
    target = everything[0]["id"]
    assert notification_detail(session, users["coordinator"], target)["id"] == target
    for role in ("agency", "school", "admin", "manager"):
        user = users[role]
        assert list_notifications(session, user, start, end) == []
        assert stream_summary(session, user, start, end)["crime"]["total"] == 0
        assert recent_batches(session, user) == []
        assert notification_detail(session, user, target) is None  # a forged id is refused...
    session.commit()
    refused = session.exec(select(AuditEvent).where(AuditEvent.action == "view", AuditEvent.outcome == "refused")).all()
    assert sorted(e.username for e in refused) == ["admin", "csc.rep", "dsl", "manager"]  # ...and audited


def test_only_coordinators_import_and_refusals_are_audited_even_though_rolled_back(engine, users, tmp_path):
    data = extract(tmp_path, "niche_wide", records(2)).read_bytes()
    for role in ("agency", "school", "admin", "manager"):
        with pytest.raises(Refused):
            with session_scope(engine) as s:
                import_upload(s, users[role], data, "x.xlsx", load_profile("niche_wide"))
    with session_scope(engine) as s:
        refused = s.exec(select(AuditEvent).where(AuditEvent.action == "refused")).all()
        assert len(refused) == 4
        from dv.models import Notification
        assert count(s, Notification) == 0
    with pytest.raises(Refused):
        with session_scope(engine) as s:
            require(s, None, "import")


def test_the_audit_log_export_is_for_admins_and_is_itself_audited(session, users):
    import io

    import openpyxl

    from core.audit import export_events, query_events

    rows = query_events(session, users["admin"])
    data = export_events(session, users["admin"], rows)
    session.commit()
    sheet = openpyxl.load_workbook(io.BytesIO(data))["Audit log"]
    assert sheet.max_row == len(rows) + 1
    assert session.execute(select(AuditEvent).where(AuditEvent.action == "export",
                                                    AuditEvent.username == "admin")).scalars().one()
    with pytest.raises(Refused):
        export_events(session, users["coordinator"], rows)


def _refusals(s) -> list[str]:
    import json

    return [json.loads(e.details)["attempted"] for e in s.exec(select(AuditEvent).where(AuditEvent.action == "refused").order_by(AuditEvent.id))]


def test_only_a_coordinator_makes_coordinators_or_resets_their_password(engine, users):
    """An admin sees no case data: one who could create, promote or take over a coordinator account would sign in
    as that coordinator and read it all. Refusals are audited; admins still manage every other role."""
    from core.accounts import reset_password, update_user

    admin, coord, rep = users["admin"], users["coordinator"], users["agency"]
    attempts = [
        lambda s: create_user(s, admin, username="mallory", display_name="M", role=UserRole.coordinator,
                              password=PASSWORD),
        lambda s: update_user(s, admin, rep.id, rep.version, role="coordinator"),
        lambda s: update_user(s, admin, coord.id, coord.version, email="admin@northshire.example.gov.uk"),
        lambda s: reset_password(s, admin, coord.id),
        lambda s: create_user(s, users["manager"], username="m2", display_name="M", role=UserRole.manager,
                              password=PASSWORD),  # outside manage_users altogether
    ]
    for attempt in attempts:
        with pytest.raises(Refused):
            with session_scope(engine) as s:
                attempt(s)
    with session_scope(engine) as s:
        assert _refusals(s) == ["create_a_coordinator_account", "give_the_coordinator_role",
                                "change_a_coordinator_email", "reset_password", "manage_users"]
        assert s.exec(select(User).where(User.username.in_(["mallory", "m2"]))).all() == []
        stored = {u.username: u for u in s.exec(select(User))}
        assert stored["csc.rep"].role == UserRole.agency and stored["coord"].email is None
    with session_scope(engine) as s:
        assert authenticate(s, "coord", PASSWORD).id == coord.id  # the password was not reset
    with session_scope(engine) as s:  # an admin manages the other roles, and a coordinator's other fields
        create_user(s, admin, username="mo", display_name="Mo", role=UserRole.manager, password=PASSWORD)
        update_user(s, admin, rep.id, rep.version, role="manager")
        update_user(s, admin, coord.id, coord.version, display_name="Casey C")
        assert reset_password(s, admin, rep.id)
    with session_scope(engine) as s:  # a coordinator may do all of it
        create_user(s, coord, username="second.coord", display_name="C2", role=UserRole.coordinator,
                    password=PASSWORD)
        mo = s.exec(select(User).where(User.username == "mo")).one()
        update_user(s, coord, mo.id, mo.version, role="coordinator")
        assert reset_password(s, coord, mo.id)


# PostgreSQL only: SQLite begins every transaction IMMEDIATE, so sign-ins are serialised and cannot interleave
@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_parallel_wrong_passwords_each_count_towards_the_lockout(engine, users):
    """Two sign-ins with a wrong password at once: both had read the count before either wrote it. Each must add
    one (an UPDATE computed in SQL), or parallel guesses never reach the lockout."""
    from sqlmodel import Session

    uid = users["coordinator"].id
    with Session(engine) as first:
        read = first.get(User, uid)  # this sign-in has read the account (held: the identity map is weak)...
        assert read.failed_logins == 0
        with pytest.raises(AuthError):
            with session_scope(engine) as second:  # ...when another one fails and commits
                authenticate(second, "coord", "wrong-password-one")
        with pytest.raises(AuthError):
            authenticate(first, "coord", "wrong-password-two")
    with Session(engine) as s:
        assert s.get(User, uid).failed_logins == 2


def test_a_password_change_keeps_a_colleagues_version_bump(engine, users):
    """The page's user is a copy read before the change; a coordinator's edit of the account meanwhile bumps the
    version. The password change must add its own bump, so a page that saw the account before it is refused."""
    from sqlmodel import Session

    from core.accounts import StaleEdit, update_user
    from core.auth import change_password

    with Session(engine, expire_on_commit=False) as s:  # the page's copy, as current_user() gives it
        me = s.get(User, users["admin"].id)
        s.expunge(me)
    with session_scope(engine) as s:
        update_user(s, users["coordinator"], me.id, me.version, display_name="Ada Admin")
    with session_scope(engine) as s:
        s.add(me)
        change_password(s, me, PASSWORD, "another-long-passphrase-3")
    with Session(engine) as s:
        assert s.get(User, me.id).version == users["admin"].version + 2
    with pytest.raises(StaleEdit):  # a page opened before the password change
        with session_scope(engine) as s:
            update_user(s, users["coordinator"], me.id, users["admin"].version + 1, disabled=True)
