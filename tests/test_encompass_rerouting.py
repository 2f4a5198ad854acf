"""A later extract that changes where a child's Operation Encompass alert goes (dv.encompass.generate_alerts):
re-routed while no school has had it; withdrawn from the school that was shown it and raised again for the new
setting, flagged for the coordinator; withdrawn when the child is taken off the record. And the coordinator's
Encompass page: the view is audited once per visit, and a colleague's resolution made meanwhile is a conflict
shown to the second coordinator (not a submit that vanishes). Runs on SQLite and PostgreSQL (the page: SQLite)."""
from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from sqlalchemy import func, insert, select

from core.auth import create_user
from core.models import AuditEvent, UserRole
from dv import encompass as enc
from dv.models import EncompassAlert, School, SchoolAlias
from tests.factories import unaudited
from tests.test_agenda import at, victim
from tests.test_encompass import PASSWORD, SCHOOLS, hub, imported, kid  # noqa: F401  (hub: a fixture)

AVA = dt.date(2019, 5, 1)
MARYS = "St Marys CofE Primary"  # resolves to 100001 (St Mary's)
SHERWOOD = "Sherwood Academy"  # resolves to 100002 (Northshire's)


def live(session) -> list[EncompassAlert]:
    session.expire_all()
    return list(session.execute(select(EncompassAlert).order_by(EncompassAlert.id)).scalars())


def school_sees(session, user) -> list[str]:
    return [a["disclosed"]["child"] for a in enc.list_alerts(session, user)]


def test_a_queued_alert_follows_the_corrected_school(session, tmp_path, hub):  # noqa: F811
    imported(session, tmp_path, [kid("Ava", AVA, MARYS)])
    [before] = live(session)
    before_id, before_version, before_urn = before.id, before.version, before.school_urn
    assert before_urn == "100001"
    _, counts = imported(session, tmp_path, [kid("Ava", AVA, SHERWOOD)])  # the police correct the school
    assert (counts["created"], counts["rerouted"], counts["withdrawn"]) == (0, 1, 0)
    [after] = live(session)
    assert after.id == before_id and after.version == before_version + 1
    assert (after.school_urn, after.school_typed, after.status.value) == ("100002", SHERWOOD, "queued")
    assert json.loads(after.disclosed)["setting"] == "Sherwood Academy"
    assert after.child_link_id is not None
    assert school_sees(session, hub["stmarys"]) == []
    assert school_sees(session, hub["sherwood"]) == ["OKAFOR, Ava"]
    [audited] = session.execute(select(AuditEvent).where(AuditEvent.entity == "encompass_alert",
                                                         AuditEvent.entity_id == str(after.id))).scalars()
    details = json.loads(audited.details)
    assert (details["old"]["school_urn"], details["new"]["school_urn"]) == ("100001", "100002")


@pytest.mark.parametrize("how", ["shown in the portal", "acknowledged"])
def test_an_alert_a_school_had_is_withdrawn_and_raised_for_the_new_one(session, tmp_path, hub, how):  # noqa: F811
    imported(session, tmp_path, [kid("Ava", AVA, MARYS)])
    [first] = live(session)
    first_id = first.id
    marys = hub["stmarys"]
    assert school_sees(session, marys) == ["OKAFOR, Ava"]
    if how == "shown in the portal":
        enc.record_disclosure(session, marys, first_id)
    else:
        enc.acknowledge_alert(session, marys, first_id)
    session.commit()

    _, counts = imported(session, tmp_path, [kid("Ava", AVA, SHERWOOD)])
    assert (counts["created"], counts["rerouted"], counts["withdrawn"]) == (1, 0, 1)
    old, new = live(session)
    assert old.id == first_id and old.status.value == "withdrawn" and old.school_urn == "100001"  # the record
    assert old.child_link_id is None and old.withdrawn_at_utc is not None
    assert "Sherwood Academy" in old.withdrawn_why and "disregard" in old.withdrawn_why
    assert (new.school_urn, new.status.value, new.replaces_id) == ("100002", "queued", old.id)
    assert new.child_link_id is not None
    # St Mary's no longer sees (nor can act on) the child; Sherwood now has the alert
    assert school_sees(session, marys) == []
    enc.acknowledge_alert(session, marys, old.id)  # nothing to do: not refused, not changed
    session.rollback()
    assert live(session)[0].status.value == "withdrawn"
    assert school_sees(session, hub["sherwood"]) == ["OKAFOR, Ava"]
    # flagged for the coordinator, never escalated, not counted twice
    view = enc.encompass_overview(session, hub["coord"], now=at("23/11/2026 12:00"))
    assert [(a["id"], a["school_urn"]) for a in view["withdrawn"]] == [(old.id, "100001")]
    assert [a["id"] for a in view["overdue"]] == [new.id]
    assert view["figures"]["alerts"] == 1
    assert enc.escalate(session, now=at("23/11/2026 12:00"), send=False)["escalated"] == 1
    session.commit()
    assert live(session)[0].escalated_at_utc is None
    actions = [e.action for e in session.execute(select(AuditEvent).where(
        AuditEvent.entity == "encompass_alert", AuditEvent.entity_id == str(old.id))).scalars()]
    assert "withdraw" in actions
    # a further identical import changes nothing
    _, again = imported(session, tmp_path, [kid("Ava", AVA, SHERWOOD)])
    assert (again["created"], again["rerouted"], again["withdrawn"]) == (0, 0, 0)
    assert len(live(session)) == 2


def test_a_child_taken_off_the_record_leaves_the_schools_view(session, tmp_path, hub):  # noqa: F811
    imported(session, tmp_path, [kid("Ava", AVA, MARYS), kid("Zed", dt.date(2016, 3, 3), MARYS)])
    assert sorted(school_sees(session, hub["stmarys"])) == ["OKAFOR, Ava", "OKAFOR, Zed"]
    _, counts = imported(session, tmp_path, [kid("Ava", AVA, MARYS)])
    assert (counts["created"], counts["withdrawn"], counts["relinked"]) == (0, 1, 1)
    assert school_sees(session, hub["stmarys"]) == ["OKAFOR, Ava"]
    zed = [a for a in live(session) if "Zed" in a.disclosed][0]
    assert zed.status.value == "withdrawn" and "no longer list" in zed.withdrawn_why


def test_the_same_school_typed_another_way_is_not_moved(session, tmp_path, hub):  # noqa: F811
    imported(session, tmp_path, [kid("Ava", AVA, MARYS)])
    [before] = live(session)
    before_id = before.id
    _, counts = imported(session, tmp_path, [kid("Ava", AVA, "St. Mary's C of E Primary School")])
    assert (counts["created"], counts["rerouted"], counts["withdrawn"]) == (0, 0, 0)
    [after] = live(session)
    assert (after.id, after.school_urn, after.status.value) == (before_id, "100001", "queued")
    assert after.school_typed == "St. Mary's C of E Primary School"


def test_the_overview_and_timeliness_views_are_audited(session, tmp_path, hub):  # noqa: F811
    imported(session, tmp_path, [kid("Ava", AVA, MARYS)])

    def views():
        return session.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "view", AuditEvent.entity == "encompass_alert")).scalar_one()

    enc.encompass_overview(session, hub["coord"])
    session.commit()
    assert views() == 1  # one row for the lists and their figures
    enc.encompass_overview(session, hub["coord"], log_view=False)
    enc.timeliness(session, hub["coord"], at("01/11/2026 00:00"), at("30/11/2026 00:00"))
    session.commit()
    assert views() == 2


# ---------------------------------------------------------------------------------------------- the page


@pytest.fixture
def app_db(tmp_path, monkeypatch):
    from core.db import get_engine, migrate

    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DV_LOCAL_AUTHORITIES", "Northshire")
    migrate(url)
    yield url
    get_engine(url).dispose()


def _page_setup(url, tmp_path):
    """Two coordinators and one alert to resolve (a misspelt school); returns (alert id, casey id, robin)."""
    from sqlmodel import Session

    from core.db import get_engine
    from dv.schools import normalise

    with Session(get_engine(url), expire_on_commit=False) as s:
        with unaudited():
            s.execute(insert(School), [
                {"urn": u, "name": n, "name_key": normalise(n), "la_name": la, "status": st, "is_open": op,
                 "type_name": "Academy converter"} for u, n, la, st, op in SCHOOLS])
            s.commit()
        casey = create_user(s, None, username="casey", display_name="Casey", role=UserRole.coordinator,
                            password=PASSWORD)
        robin = create_user(s, None, username="robin", display_name="Robin", role=UserRole.coordinator,
                            password=PASSWORD)
        s.commit()
        imported(s, tmp_path, [kid("Hal", dt.date(2017, 2, 2), "Sherwod Acadmy")])
        alert_id = s.execute(select(EncompassAlert.id)).scalar_one()
        return alert_id, casey.id, robin


def _encompass_page(user_id):
    from streamlit.testing.v1 import AppTest

    page = AppTest.from_file("../app.py", default_timeout=60)
    now = time.time()
    page.session_state["auth"] = {"user_id": user_id, "login_at": now, "last_seen": now}
    page.run()
    page.switch_page("pages/encompass.py").run()
    assert not page.exception, page.exception
    assert page.title[0].value == "Encompass"
    return page


def _views(url) -> int:
    from core.db import get_engine, session_scope

    with session_scope(get_engine(url)) as s:
        return s.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "view", AuditEvent.entity == "encompass_alert")).scalar_one()


def _resolve_button(page):
    return page.button[[b.label for b in page.button].index("Resolve")]


def test_page_a_colleagues_resolution_meanwhile_is_shown_not_lost(app_db, tmp_path):
    from sqlmodel import Session

    from core.db import get_engine

    alert_id, casey, robin = _page_setup(app_db, tmp_path)
    page = _encompass_page(casey)
    assert _views(app_db) == 1
    page.selectbox(key="alert_to_resolve").select(alert_id).run()
    assert _views(app_db) == 1  # reruns of the same visit are not audited again
    page.selectbox[1].select("100002")
    # meanwhile Robin resolves the same alert to the other Sherwood Academy, remembering the spelling
    with Session(get_engine(app_db)) as s:
        seen = s.get(EncompassAlert, alert_id).version
        enc.resolve_alert(s, robin, alert_id, urn="200002", expected_version=seen, remember=True)
        s.commit()
    _resolve_button(page).click().run()
    assert not page.exception, page.exception
    errors = [e.value for e in page.error]
    assert errors and "changed by someone else" in errors[0], errors
    with Session(get_engine(app_db)) as s:
        alert = s.get(EncompassAlert, alert_id)
        assert (alert.school_urn, alert.version) == ("200002", seen + 1)  # Robin's, not silently overwritten
        assert s.execute(select(SchoolAlias.school_urn)).scalars().all() == ["200002"]
    page.switch_page("pages/account.py").run()
    page.switch_page("pages/encompass.py").run()
    assert _views(app_db) == 2  # a new visit, a new audit row


def test_a_spelling_a_colleague_remembered_meanwhile_is_a_conflict(session, tmp_path, hub):  # noqa: F811
    coord = hub["coord"]
    imported(session, tmp_path, [kid("Hal", dt.date(2017, 2, 2), "Sherwod Acadmy")])
    imported(session, tmp_path, [kid("Ola", dt.date(2015, 2, 2), "Sherwod Acadmy")], n=2,
             person=victim(2))
    view = enc.encompass_overview(session, coord, log_view=False)
    hal, ola = sorted(view["to_resolve"], key=lambda a: a["forename"])
    assert hal["alias_version"] is None  # nobody had remembered the spelling when the page was opened
    enc.resolve_alert(session, coord, ola["id"], urn="200002", expected_version=ola["version"], remember=True,
                      alias_version=ola["alias_version"])
    session.commit()
    with pytest.raises(enc.Conflict, match="Sherwod Acadmy"):
        enc.resolve_alert(session, coord, hal["id"], urn="100002", expected_version=hal["version"], remember=True,
                          alias_version=hal["alias_version"])
    session.rollback()
    assert session.execute(select(SchoolAlias.school_urn)).scalars().all() == ["200002"]
    assert live(session)[0].resolution.value == "to_resolve"  # nothing half-saved


def test_a_withdrawn_alert_is_outside_the_schools_scope_and_counted_once(session, tmp_path, hub):  # noqa: F811
    """The one scope function, not only list_alerts, keeps a withdrawn alert from its old school; the dashboard
    counts the child's alert once (the replacement), not twice."""
    from core.scope import visible
    from meetings.dashboard import dashboard

    imported(session, tmp_path, [kid("Ava", AVA, MARYS)])
    [first] = live(session)
    enc.record_disclosure(session, hub["stmarys"], first.id)
    session.commit()
    imported(session, tmp_path, [kid("Ava", AVA, SHERWOOD)])
    old, new = live(session)
    assert old.status.value == "withdrawn"
    E = EncompassAlert.__table__

    def readable(user) -> list[int]:
        return list(session.execute(select(E.c.id).where(visible(user, "encompass_alert")).order_by(E.c.id)).scalars())

    assert readable(hub["stmarys"]) == []
    assert readable(hub["sherwood"]) == [new.id]
    assert readable(hub["coord"]) == [old.id, new.id]  # the coordinator keeps the record of what was shown
    day = AVA.replace(year=2026, month=11, day=21)
    figures = dashboard(session, hub["coord"], day, day, record_view=False)
    assert figures["encompass"]["alerts"] == 1
