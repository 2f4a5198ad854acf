"""Operation Encompass in a real browser: alerts raised by an import; the coordinator resolves a school the police
misspelt; each school's key adult sees only their own pupils and acknowledges; the other school sees nothing of it."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import insert, select
from sqlmodel import Session

from core.auth import create_user
from core.db import get_engine
from core.models import UserRole
from dv.importer import import_file
from dv.models import AlertStatus, EncompassAlert, KeyAdult, School
from dv.profiles import load_profile
from dv.schools import normalise
from tests.factories import extract, records, unaudited
from tests.test_browser_import import go_to, sign_in

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-staple-7"


@pytest.fixture(scope="module")
def alerts(streamlit_app, tmp_path_factory):
    engine = get_engine(streamlit_app.database_url)
    recs = records(2, seed=97, repeat_share=0.0, days=1)
    recs[0]["children"] = [{"surname": "Northcott", "forename": "Poppy", "dob": dt.date(2018, 4, 4), "gender": "F",
                            "school": "St Marys CofE Primary", "present": True}]
    recs[1]["children"] = [{"surname": "Southgate", "forename": "Sid", "dob": dt.date(2015, 9, 9), "gender": "M",
                            "school": "Sherwod Acadmy", "present": False}]
    with Session(engine, expire_on_commit=False) as s:
        with unaudited():
            s.execute(insert(School), [
                {"urn": u, "name": n, "name_key": normalise(n), "la_name": "Northshire", "status": "Open",
                 "is_open": True} for u, n in (("100001", "St Mary's Church of England Primary School"),
                                              ("100002", "Sherwood Academy"))])
            s.execute(insert(KeyAdult), [{"school_urn": "100001", "name": "Dee", "email": "dsl@stmarys.example",
                                          "active": True, "version": 1}])
            s.commit()
        for name, urn in (("dsl.stmarys", "100001"), ("dsl.sherwood", "100002")):
            create_user(s, None, username=name, display_name=name, role=UserRole.school, school_urn=urn,
                        password=PASSWORD)
        result = import_file(s, extract(tmp_path_factory.mktemp("enc"), "niche_wide", recs),
                             load_profile("niche_wide"))
        s.commit()
        assert result.created == 2 and result.alerts["created"] == 2  # raised by the import itself
    return {"engine": engine}


def as_user(app, username):
    return dataclasses.replace(app, username=username, password=PASSWORD)


def status_of(engine, forename):
    with Session(engine) as s:
        for alert in s.execute(select(EncompassAlert)).scalars():
            if forename in (alert.disclosed or ""):
                return alert.school_urn, alert.status
    return None


def test_resolve_then_each_school_sees_and_acknowledges_only_its_own(page: Page, browser, streamlit_app, alerts):
    engine = alerts["engine"]
    assert status_of(engine, "Sid") == (None, AlertStatus.queued)  # misspelt: waiting to be resolved
    sign_in(page, streamlit_app)
    go_to(page, "Encompass", "encompass")
    expect(page.get_by_role("tab", name="To resolve (1)")).to_be_visible()
    page.get_by_role("combobox", name="Alert to resolve").click()
    page.get_by_role("option").filter(has_text="Sherwod Acadmy").click()
    page.get_by_role("combobox", name="Setting").click()
    page.get_by_role("option").filter(has_text="Sherwood Academy (100002").first.click()
    page.get_by_role("button", name="Resolve", exact=True).click()
    expect(page.get_by_text("Resolved: the alert is queued for its setting.")).to_be_visible()
    expect(page.get_by_role("tab", name="To resolve (0)")).to_be_visible()
    assert status_of(engine, "Sid")[0] == "100002"

    for username, mine, theirs in (("dsl.stmarys", "NORTHCOTT, Poppy", "Southgate"),
                                   ("dsl.sherwood", "SOUTHGATE, Sid", "Northcott")):
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB",
                                      timezone_id="Europe/London")
        try:
            school = context.new_page()
            sign_in(school, as_user(streamlit_app, username))
            expect(school.get_by_role("heading", name="Operation Encompass alerts", exact=True)).to_be_visible()
            expect(school.get_by_role("heading", name=mine)).to_be_visible()
            expect(school.get_by_text(theirs, exact=False)).to_have_count(0)
            school.get_by_role("button", name="Acknowledge", exact=True).click()
            expect(school.get_by_text("Acknowledged", exact=False)).to_be_visible()
        finally:
            context.close()
    assert status_of(engine, "Poppy") == ("100001", AlertStatus.acknowledged)
    assert status_of(engine, "Sid") == ("100002", AlertStatus.acknowledged)
