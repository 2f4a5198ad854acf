"""Who sees and changes what: every role against every resource, exact sets, and every other attempt (a forged
id included) refused and audited. Runs on SQLite and PostgreSQL. A Hypothesis state machine then checks the same
rules over random users, actions and alerts."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select
from sqlmodel import Session

from core.accounts import list_users, update_user
from core.audit import query_events
from core.auth import create_user
from core.db import get_engine, migrate
from core.models import AuditEvent, User, UserRole
from core.scope import Refused, visible
from dv.encompass import acknowledge_alert, create_alert, list_alerts
from dv.importer import import_file
from dv.models import EncompassAlert, Notification
from dv.notifications import list_notifications, notification_detail
from dv.profiles import load_profile
from meetings.actions import Conflict, create_action, list_actions, update_action
from meetings.models import Action
from tests.factories import NOW, START, drop_raised_alerts, extract, records, unaudited

PASSWORD = "correct-horse-staple-7"
CSC, PROBATION, HOUSING = 2, 6, 7  # agency ids seeded by migration 0002
SCHOOL_A, SCHOOL_B = "100001", "100002"
TABLES = {"notification": Notification.__table__, "action": Action.__table__,
          "encompass_alert": EncompassAlert.__table__, "user": User.__table__, "audit_event": AuditEvent.__table__}


def readable(session, user, resource) -> set[int]:
    t = TABLES[resource]
    return {r[0] for r in session.connection().execute(select(t.c.id).where(visible(user, resource, t)))}


@dataclass
class World:
    users: dict[str, User]
    n: list[int]  # notification ids
    actions: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def world(session, tmp_path) -> World:
    def make(name, role, **kw):
        return create_user(session, None, username=name, display_name=name, role=role, password=PASSWORD, **kw)

    users = {
        "coordinator": make("coord", UserRole.coordinator),
        "csc": make("csc.rep", UserRole.agency, agency_id=CSC),
        "probation": make("probation.rep", UserRole.agency, agency_id=PROBATION),
        "housing": make("housing.rep", UserRole.agency, agency_id=HOUSING),
        "school_a": make("dsl.a", UserRole.school, school_urn=SCHOOL_A),
        "school_b": make("dsl.b", UserRole.school, school_urn=SCHOOL_B),
        "admin": make("admin", UserRole.admin),
        "manager": make("manager", UserRole.manager),
        "disabled": make("gone", UserRole.coordinator),
    }
    with unaudited():
        users["disabled"].disabled = True
        session.add(users["disabled"])
        session.commit()
    import_file(session, extract(tmp_path, "niche_wide", records(6, seed=41)), load_profile("niche_wide"), now=NOW)
    session.commit()
    drop_raised_alerts(session)  # the world holds exactly the alerts below
    n = sorted(r[0] for r in session.connection().execute(select(Notification.__table__.c.id)))
    w = World(users, n)
    coord = users["coordinator"]
    due = dt.datetime(2026, 11, 23, 17, 0)
    w.actions["csc_n0"] = create_action(session, coord, notification_id=n[0], agency_id=CSC, description="Visit", due_at=due)
    w.actions["prob_n1"] = create_action(session, coord, notification_id=n[1], agency_id=PROBATION, description="Check", due_at=due)
    w.actions["csc_n2"] = create_action(session, coord, notification_id=n[2], agency_id=CSC, description="Call", due_at=due)
    w.actions["prob_n2"] = create_action(session, coord, notification_id=n[2], agency_id=PROBATION, description="Share", due_at=due)
    w.alerts["a_n0"] = create_alert(session, None, notification_id=n[0], school_urn=SCHOOL_A, disclosed={"child": "Amy"})
    w.alerts["b_n3"] = create_alert(session, None, notification_id=n[3], school_urn=SCHOOL_B, disclosed={"child": "Ben"})
    session.commit()
    return w


def test_reads_role_by_resource(session, world):
    u, n, a, al = world.users, world.n, world.actions, world.alerts
    everyone = set(n)
    expected = {
        "coordinator": {"notification": everyone, "action": set(a.values()), "encompass_alert": set(al.values())},
        "csc": {"notification": {n[0], n[2]}, "action": {a["csc_n0"], a["csc_n2"]}, "encompass_alert": set()},
        "probation": {"notification": {n[1], n[2]}, "action": {a["prob_n1"], a["prob_n2"]}, "encompass_alert": set()},
        "housing": {"notification": set(), "action": set(), "encompass_alert": set()},
        "school_a": {"notification": set(), "action": set(), "encompass_alert": {al["a_n0"]}},
        "school_b": {"notification": set(), "action": set(), "encompass_alert": {al["b_n3"]}},
        "admin": {"notification": set(), "action": set(), "encompass_alert": set()},
        "manager": {"notification": set(), "action": set(), "encompass_alert": set()},
        "disabled": {"notification": set(), "action": set(), "encompass_alert": set()},
    }
    for who, resources in expected.items():
        for resource, ids in resources.items():
            assert readable(session, u[who], resource) == ids, (who, resource)
    # users: coordinators and admins; the audit log: admins wholly, coordinators for case records only
    all_users = {x.id for x in u.values()}
    for who in u:
        assert readable(session, u[who], "user") == (all_users if who in ("coordinator", "admin") else set()), who
    case_rows = {r[0] for r in session.connection().execute(
        select(AuditEvent.__table__.c.id).where(AuditEvent.__table__.c.entity.in_(
            ["notification", "person", "action", "encompass_alert", "import_batch"])))}
    assert readable(session, u["coordinator"], "audit_event") == case_rows
    assert readable(session, u["admin"], "audit_event") == {
        r[0] for r in session.connection().execute(select(AuditEvent.__table__.c.id))}
    for who in ("csc", "school_a", "manager", "disabled"):
        assert readable(session, u[who], "audit_event") == set()


def test_service_reads_follow_the_scope(session, world):
    u, n = world.users, world.n
    got = {r["id"] for r in list_notifications(session, u["csc"], START, NOW.date())}
    assert got == {n[0], n[2]}
    assert notification_detail(session, u["csc"], n[0])["id"] == n[0]
    assert notification_detail(session, u["csc"], n[1]) is None  # another agency's case
    assert {r["id"] for r in list_actions(session, u["probation"])} == {world.actions["prob_n1"], world.actions["prob_n2"]}
    assert [r["disclosed"] for r in list_alerts(session, u["school_b"])] == [{"child": "Ben"}]
    assert list_alerts(session, u["csc"]) == []
    assert list_users(session, u["csc"]) == []
    assert query_events(session, u["school_a"]) == []


ACTION_EDITORS = {"coordinator": {"csc_n0", "prob_n1", "csc_n2", "prob_n2"}, "csc": {"csc_n0", "csc_n2"},
                  "probation": {"prob_n1", "prob_n2"}}


@pytest.mark.parametrize("who", ["coordinator", "csc", "probation", "housing", "school_a", "admin", "manager", "disabled"])
def test_action_updates_role_by_action(engine, world, who):
    for name, action_id in world.actions.items():
        with Session(engine, expire_on_commit=False) as s:
            user = s.get(User, world.users[who].id)
            allowed = name in ACTION_EDITORS.get(who, set())
            if allowed:
                version = s.get(Action, action_id).version
                update_action(s, user, action_id, expected_version=version, status="in_progress")
                s.commit()
            else:
                before = s.connection().execute(select(AuditEvent.__table__.c.id).where(
                    AuditEvent.__table__.c.outcome == "refused")).all()
                with pytest.raises(Refused):
                    update_action(s, user, action_id, expected_version=1, status="done", note="forged")
                after = s.connection().execute(select(AuditEvent.__table__.c.id).where(
                    AuditEvent.__table__.c.outcome == "refused")).all()
                assert len(after) == len(before) + 1
                assert s.get(Action, action_id).status != "done"


def test_a_forged_action_id_is_refused_and_audited(session, world):
    with pytest.raises(Refused):
        update_action(session, world.users["csc"], 999_999, expected_version=1, status="done", note="x")
    event = session.execute(select(AuditEvent).where(AuditEvent.outcome == "refused")).scalars().one()
    assert (event.username, event.entity, event.entity_id) == ("csc.rep", "action", "999999")


def test_a_stale_save_is_refused_with_the_current_values(engine, world):
    action_id = world.actions["csc_n0"]
    # Both reps opened the action at version 1; each save is its own request and transaction, as in the app.
    with Session(engine, expire_on_commit=False) as first:
        update_action(first, first.get(User, world.users["csc"].id), action_id, expected_version=1, status="done",
                      note="Visited, safe")
        first.commit()
    with Session(engine, expire_on_commit=False) as second:
        csc2 = second.get(User, world.users["csc"].id)
        with pytest.raises(Conflict) as exc:
            update_action(second, csc2, action_id, expected_version=1, status="not_done", note="stale page")
        assert exc.value.current["note"] == "Visited, safe" and exc.value.current["version"] == 2
    with Session(engine) as s:
        changes = s.execute(select(AuditEvent).where(AuditEvent.entity == "action", AuditEvent.entity_id == str(action_id),
                                                     AuditEvent.action == "change")).scalars().all()
        assert len(changes) == 2  # the creation and the one winning change


def test_a_note_is_needed_to_close_an_action(session, world):
    with pytest.raises(ValueError, match="note is needed"):
        update_action(session, world.users["csc"], world.actions["csc_n0"], expected_version=1, status="not_done")


@pytest.mark.parametrize("who,alert,ok", [("school_a", "a_n0", True), ("school_b", "b_n3", True),
                                          ("school_a", "b_n3", False), ("school_b", "a_n0", False),
                                          ("coordinator", "a_n0", False), ("csc", "a_n0", False),
                                          ("admin", "b_n3", False)])
def test_alert_acknowledgement_role_by_alert(session, world, who, alert, ok):
    alert_id = world.alerts[alert]
    if ok:
        acknowledge_alert(session, world.users[who], alert_id)
        session.commit()
        assert session.get(EncompassAlert, alert_id).status == "acknowledged"
    else:
        with pytest.raises(Refused):
            acknowledge_alert(session, world.users[who], alert_id)
        assert session.get(EncompassAlert, alert_id).status == "queued"
        assert session.execute(select(AuditEvent).where(AuditEvent.outcome == "refused")).scalars().one()


@pytest.mark.parametrize("who,ok", [("coordinator", True), ("admin", True), ("csc", False), ("school_a", False),
                                    ("manager", False)])
def test_managing_users(session, world, who, ok):
    target = world.users["housing"]
    if ok:
        update_user(session, world.users[who], target.id, target.version, disabled=True)
        session.commit()
        session.refresh(target)
        assert target.disabled
    else:
        with pytest.raises(Refused):
            update_user(session, world.users[who], target.id, target.version, role="coordinator")
        session.refresh(target)
        assert target.role == UserRole.agency


def test_a_failed_write_leaves_neither_change_nor_audit_row(engine, world, monkeypatch):
    import meetings.actions as actions

    def broken(*a, **k):
        raise RuntimeError("database went away")

    with Session(engine, expire_on_commit=False) as s:
        audit_rows = len(s.execute(select(AuditEvent)).scalars().all())
        monkeypatch.setattr(actions.audit, "record", broken)
        with pytest.raises(RuntimeError):
            update_action(s, s.get(User, world.users["csc"].id), world.actions["csc_n0"], expected_version=1,
                          status="in_progress")
        s.rollback()
    with Session(engine) as s:
        assert s.get(Action, world.actions["csc_n0"]).status == "open"
        assert len(s.execute(select(AuditEvent)).scalars().all()) == audit_rows


def test_admin_reads_every_audit_event_but_not_the_case_data_in_them(session, world):
    """The admin's whole audit log: every event, but ``details`` of events on case records (an action's
    description and note, a shared note's text, ...) withheld, in the list and in the export; coordinators keep
    reading them."""
    import io

    import openpyxl

    from core.audit import WITHHELD, export_events

    u = world.users
    update_action(session, u["csc"], world.actions["csc_n0"], expected_version=1, status="done",
                  note="Secret note: victim moved to 4 Elm Road")
    session.commit()
    admin_rows = query_events(session, u["admin"])
    assert {r["id"] for r in admin_rows} == readable(session, u["admin"], "audit_event")  # every event still
    case = [r for r in admin_rows if r["entity"] == "action"]
    assert case and all(r["details"] == WITHHELD for r in case)
    assert all(r["entity_id"] is not None for r in case)  # who did what to which record stays visible
    users_created = [r for r in admin_rows if r["entity"] == "user"]
    assert users_created and all(r["details"] != WITHHELD for r in users_created)
    coord_details = " ".join(r["details"] or "" for r in query_events(session, u["coordinator"], entity="action"))
    assert "Secret note" in coord_details and "Visit" in coord_details

    # the export withholds too, whatever rows the caller hands it
    raw = [dict(r) for r in session.connection().execute(select(AuditEvent.__table__)).mappings()]
    for rows in (admin_rows, raw):
        book = openpyxl.load_workbook(io.BytesIO(export_events(session, u["admin"], rows)))
        text = " ".join(str(c.value) for row in book.active.iter_rows() for c in row if c.value is not None)
        assert "Secret note" not in text and "Visit" not in text and WITHHELD in text
    session.commit()


def test_a_search_of_the_audit_log_is_itself_audited(session, world):
    admin = world.users["admin"]
    before = query_events(session, admin)  # not logged: record_history and other callers do not ask for it
    session.commit()
    assert session.execute(select(AuditEvent).where(AuditEvent.entity == "audit_event")).first() is None
    rows = query_events(session, admin, username="csc.rep", log_view=True)
    session.commit()
    event = session.execute(select(AuditEvent).where(AuditEvent.entity == "audit_event")).scalars().one()
    assert (event.username, event.action) == ("admin", "search")
    details = json.loads(event.details)
    assert details["filters"]["username"] == "csc.rep" and details["rows"] == len(rows) < len(before)


def test_lists_of_actions_are_audited_with_filter_and_row_count(session, world):
    from meetings.actions import chase_list

    def listed():
        return [json.loads(e.details) | {"by": e.username} for e in session.execute(
            select(AuditEvent).where(AuditEvent.action == "view", AuditEvent.entity == "action")
            .order_by(AuditEvent.id)).scalars()]

    u = world.users
    list_actions(session, u["coordinator"], agency_id=CSC)
    chase_list(session, u["coordinator"])
    session.commit()
    assert listed() == []  # only when the caller asks (a page: once per visit and filter)
    coord_rows = list_actions(session, u["coordinator"], agency_id=CSC, log_view=True)
    rep_rows = list_actions(session, u["probation"], include_closed=False, log_view=True)
    chase = chase_list(session, u["coordinator"], agency_id=PROBATION, now=dt.datetime(2026, 11, 24), log_view=True)
    session.commit()
    got = listed()
    assert [(g["by"], g["listed"], g["agency_id"], g["rows"]) for g in got] == [
        ("coord", "actions list", CSC, 2), ("probation.rep", "actions list", None, 2),
        ("coord", "chase list", PROBATION, 2)]
    assert [g["ids"] for g in got] == [[r["id"] for r in rows] for rows in (coord_rows, rep_rows, chase)]
    assert got[1]["include_closed"] is False


# ------------------------------------------------------------------ Hypothesis: random users, actions and alerts


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    """A migrated SQLite file with six imported notifications, copied for each Hypothesis example."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    url = f"sqlite:///{path}"
    migrate(url)
    with Session(get_engine(url)) as s:
        import_file(s, extract(path.parent, "niche_wide", records(6, seed=42)), load_profile("niche_wide"), now=NOW)
        s.commit()
        drop_raised_alerts(s)
    get_engine(url).dispose()
    return path


class ScopeMachine(RuleBasedStateMachine):
    """Random users, actions and alerts; after every step each user reads exactly what the rules allow, and every
    update attempt succeeds exactly when the rules allow it."""

    template = None
    counter = 0

    @initialize()
    def setup(self):
        ScopeMachine.counter += 1
        path = self.template.parent / f"machine{ScopeMachine.counter}.sqlite3"
        shutil.copy(self.template, path)
        self.url = f"sqlite:///{path}"
        self.session = Session(get_engine(self.url), expire_on_commit=False)
        self.notifications = sorted(r[0] for r in self.session.connection().execute(select(Notification.__table__.c.id)))
        self.coord = create_user(self.session, None, username="coord", display_name="c", role=UserRole.coordinator,
                                 password=PASSWORD)
        self.users: list[User] = [self.coord]
        self.actions: dict[int, int] = {}  # action id -> agency id
        self.action_notification: dict[int, int] = {}
        self.alerts: dict[int, str] = {}  # alert id -> urn
        self.session.commit()

    def teardown(self):
        self.session.close()
        get_engine(self.url).dispose()

    @rule(role=st.sampled_from(list(UserRole)), agency=st.sampled_from([CSC, PROBATION, HOUSING]),
          urn=st.sampled_from([SCHOOL_A, SCHOOL_B]), disabled=st.booleans())
    def add_user(self, role, agency, urn, disabled):
        user = create_user(self.session, None, username=f"u{len(self.users)}", display_name="u", role=role,
                           password=PASSWORD, agency_id=agency if role == UserRole.agency else None,
                           school_urn=urn if role == UserRole.school else None)
        with unaudited():
            user.disabled = disabled
            self.session.add(user)
            self.session.commit()
        self.users.append(user)

    @rule(which=st.integers(0, 5), agency=st.sampled_from([CSC, PROBATION, HOUSING]))
    def add_action(self, which, agency):
        nid = self.notifications[which]
        action_id = create_action(self.session, self.coord, notification_id=nid, agency_id=agency, description="x")
        self.session.commit()
        self.actions[action_id] = agency
        self.action_notification[action_id] = nid

    @rule(which=st.integers(0, 5), urn=st.sampled_from([SCHOOL_A, SCHOOL_B]))
    def add_alert(self, which, urn):
        alert_id = create_alert(self.session, None, notification_id=self.notifications[which], school_urn=urn,
                                disclosed={})
        self.session.commit()
        self.alerts[alert_id] = urn

    @rule(data=st.data())
    def try_update(self, data):
        if not self.actions:
            return
        user = data.draw(st.sampled_from(self.users))
        action_id = data.draw(st.sampled_from(sorted(self.actions) + [10_000]))
        allowed = (not user.disabled and action_id in self.actions and
                   (user.role == UserRole.coordinator or
                    (user.role == UserRole.agency and user.agency_id == self.actions[action_id])))
        version = self.session.get(Action, action_id).version if action_id in self.actions else 1
        try:
            update_action(self.session, user, action_id, expected_version=version, status="in_progress")
            self.session.commit()
            assert allowed
        except Refused:
            assert not allowed

    @invariant()
    def everyone_reads_exactly_their_share(self):
        if not hasattr(self, "session"):
            return
        for user in self.users:
            active = not user.disabled
            want_actions = {a for a, ag in self.actions.items() if active and (
                user.role == UserRole.coordinator or (user.role == UserRole.agency and ag == user.agency_id))}
            want_alerts = {a for a, urn in self.alerts.items() if active and (
                user.role == UserRole.coordinator or (user.role == UserRole.school and urn == user.school_urn))}
            if user.role == UserRole.coordinator and active:
                want_notifications = set(self.notifications)
            else:
                want_notifications = {self.action_notification[a] for a in want_actions}
            assert readable(self.session, user, "action") == want_actions
            assert readable(self.session, user, "encompass_alert") == want_alerts
            assert readable(self.session, user, "notification") == want_notifications


def test_scope_state_machine(template_db):
    ScopeMachine.template = template_db
    ScopeMachine.TestCase.settings = settings(max_examples=12, stateful_step_count=12, deadline=None,
                                              suppress_health_check=list(HealthCheck))
    ScopeMachine.TestCase().runTest()
