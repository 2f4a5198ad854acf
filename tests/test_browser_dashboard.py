"""The Dashboard in a real browser: a manager signs in, lands on the Dashboard, narrows the date range and the
figures change; the manager cannot reach any record-level page by its URL."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session

from core.auth import create_user
from core.db import get_engine
from core.models import UserRole
from core.timeutil import london_now
from dv.models import Notification
from tests.factories import unaudited
from tests.test_browser_import import metric, sign_in

pytestmark = pytest.mark.browser
PASSWORD = "a-long-test-passphrase-9"
TODAY = london_now().date()


@pytest.fixture(scope="module")
def manager(streamlit_app):
    """A manager account and five notifications: three in the last fortnight, two about 200 days ago."""
    engine = get_engine(streamlit_app.database_url)
    with Session(engine) as s:
        create_user(s, None, username="mo.manager", display_name="Mo Manager", role=UserRole.manager,
                    password=PASSWORD)
        with unaudited():
            for k, days_ago in enumerate((2, 5, 9, 200, 210)):
                s.add(Notification(force="Dash Police", police_ref=f"DASH-{k}", stream="crime" if k % 2 else "non_crime",
                                   stream_reason="test", risk="high",
                                   incident_at=dt.datetime.combine(TODAY - dt.timedelta(days=days_ago), dt.time(12))))
            s.commit()
    return dataclasses.replace(streamlit_app, username="mo.manager", password=PASSWORD)


def set_range(page: Page, start: dt.date, end: dt.date) -> None:
    """Type both dates of the range input, as a user does (day, month and year are spin buttons)."""
    field = page.get_by_test_id("stDateInput")
    field.get_by_role("spinbutton").first.click()
    page.keyboard.type(f"{start:%d%m%Y}{end:%d%m%Y}")
    page.keyboard.press("Escape")
    page.locator("h1").first.click()


def test_manager_lands_on_the_dashboard_and_the_range_changes_the_figures(page: Page, manager):
    sign_in(page, manager)
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    expect(metric(page, "Notifications")).to_have_text("5")
    set_range(page, TODAY - dt.timedelta(days=13), TODAY)
    expect(metric(page, "Notifications")).to_have_text("3")
    # the numbers behind a chart are one click away, and nothing record-level is on the page
    page.get_by_text("Show the numbers").first.click()
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(page.get_by_text("DASH-0")).to_have_count(0)


@pytest.mark.parametrize("path", ["notifications", "agenda", "meeting", "actions", "overdue", "my-actions", "alerts",
                                  "encompass", "schools", "import", "users", "audit"])
def test_manager_cannot_reach_record_level_pages(page: Page, streamlit_app, manager, path):
    sign_in(page, manager)
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    page.goto(f"{streamlit_app.url}/{path}")
    expect(page.get_by_text("Page not found")).to_be_visible()
    for heading in ("Notifications", "Agenda", "Meeting", "My actions", "Encompass alerts", "Overdue actions"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_have_count(0)
