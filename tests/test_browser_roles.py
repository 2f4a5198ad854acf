"""Roles in a real browser: a school key adult sees only its own pupils' alerts and cannot reach a page it is
not given by typing its URL; an agency representative updates its own agency's action and never sees another's."""
from __future__ import annotations

import dataclasses

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session, select

from core.auth import create_user
from core.db import get_engine
from core.models import UserRole
from dv.encompass import create_alert
from dv.importer import import_file
from dv.models import AlertStatus, EncompassAlert, Notification
from dv.profiles import load_profile
from meetings.actions import create_action
from meetings.models import Action, ActionStatus
from tests.factories import NOW, drop_raised_alerts, extract, records
from tests.test_browser_import import sign_in

pytestmark = pytest.mark.browser
PASSWORD = "a-long-test-passphrase-9"
CSC, PROBATION = 2, 6


@pytest.fixture(scope="module")
def seeded(streamlit_app, tmp_path_factory):
    """Two schools with one alert each, two agencies with one action each, in the running app's database."""
    engine = get_engine(streamlit_app.database_url)
    tmp = tmp_path_factory.mktemp("roles")
    with Session(engine, expire_on_commit=False) as s:
        import_file(s, extract(tmp, "niche_wide", records(3, seed=51)), load_profile("niche_wide"), now=NOW)
        s.commit()
        drop_raised_alerts(s)  # this world holds exactly the two alerts below
        ids = sorted(s.execute(select(Notification.id)).scalars().all())
        coord = create_user(s, None, username="roles.coord", display_name="Roles Coord", role=UserRole.coordinator,
                            password=PASSWORD)
        for name, role, kw in [("dsl.north", UserRole.school, {"school_urn": "200001"}),
                               ("dsl.south", UserRole.school, {"school_urn": "200002"}),
                               ("csc.rep", UserRole.agency, {"agency_id": CSC})]:
            create_user(s, None, username=name, display_name=name, role=role, password=PASSWORD, **kw)
        create_alert(s, None, notification_id=ids[0], school_urn="200001",
                     disclosed={"child": "Poppy Northcott", "police_ref": "NP/26/000001", "present": "yes"})
        create_alert(s, None, notification_id=ids[1], school_urn="200002",
                     disclosed={"child": "Sid Southgate", "police_ref": "NP/26/000002", "present": "no"})
        csc_action = create_action(s, coord, notification_id=ids[0], agency_id=CSC,
                                   description="Visit the family and see the children")
        probation_action = create_action(s, coord, notification_id=ids[1], agency_id=PROBATION,
                                         description="Check the suspect's licence conditions")
        s.commit()
    return {"csc_action": csc_action, "probation_action": probation_action, "engine": engine}


def as_user(app, username):
    return dataclasses.replace(app, username=username, password=PASSWORD) if dataclasses.is_dataclass(app) else \
        type("App", (), {"url": app.url, "username": username, "password": PASSWORD})()


def test_school_sees_only_its_own_pupils_and_acknowledges(page: Page, streamlit_app, seeded):
    sign_in(page, as_user(streamlit_app, "dsl.north"))
    expect(page.get_by_role("heading", name="Operation Encompass alerts", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Poppy Northcott")).to_be_visible()
    expect(page.get_by_text("Sid Southgate")).to_have_count(0)
    page.get_by_role("button", name="Acknowledge", exact=True).click()
    expect(page.get_by_text("Acknowledged", exact=False)).to_be_visible()
    with Session(seeded["engine"]) as s:
        statuses = {a.school_urn: a.status for a in s.execute(select(EncompassAlert)).scalars()}
    assert statuses == {"200001": AlertStatus.acknowledged, "200002": AlertStatus.queued}


def test_a_second_school_sees_nothing_of_the_first(page: Page, streamlit_app, seeded):
    sign_in(page, as_user(streamlit_app, "dsl.south"))
    expect(page.get_by_role("heading", name="Sid Southgate")).to_be_visible()
    expect(page.get_by_text("Poppy Northcott")).to_have_count(0)


@pytest.mark.parametrize("path", ["notifications", "import", "my-actions", "users", "audit"])
def test_a_school_cannot_open_other_pages_by_url(page: Page, streamlit_app, seeded, path):
    sign_in(page, as_user(streamlit_app, "dsl.north"))
    expect(page.get_by_role("heading", name="Operation Encompass alerts", exact=True)).to_be_visible()
    page.goto(f"{streamlit_app.url}/{path}")
    expect(page.get_by_text("Page not found")).to_be_visible()
    for heading in ("Notifications", "Import", "My actions", "Users and agencies", "Audit log"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_have_count(0)


def test_agency_updates_its_own_action_and_never_sees_another(page: Page, streamlit_app, seeded):
    sign_in(page, as_user(streamlit_app, "csc.rep"))
    expect(page.get_by_role("heading", name="My actions", exact=True)).to_be_visible()
    page.get_by_role("combobox", name="Action to update").click()
    options = page.get_by_role("option")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Visit the family")
    options.first.click()
    page.get_by_role("combobox", name="Status").click()
    page.get_by_role("option", name="done", exact=True).click()
    page.get_by_role("textbox", name="Note (needed for done, not possible and not done)").fill("Visited; children seen")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Check the suspect's licence conditions")).to_have_count(0)
    def stored(action_id):
        with Session(seeded["engine"]) as s:  # a new session each time: a held read transaction would not see it
            action = s.get(Action, action_id)
            return action.status, action.note

    for _ in range(200):  # the save is a server round trip after the click
        if stored(seeded["csc_action"])[0] == ActionStatus.done:
            break
        page.wait_for_timeout(100)
    assert stored(seeded["csc_action"]) == (ActionStatus.done, "Visited; children seen")
    assert stored(seeded["probation_action"])[0] == ActionStatus.open
    page.goto(f"{streamlit_app.url}/notifications")
    expect(page.get_by_text("Page not found")).to_be_visible()
