"""The coordinator's morning in a real browser: after an import, open the Agenda, see the sections in order, add a
case with a reason, export the xlsx, and the downloaded workbook matches the screen."""
from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session

from core.db import get_engine
from core.timeutil import london_now
from dv.importer import import_file
from dv.profiles import load_profile
from meetings.agenda import agenda_window, next_meeting_day
from tests.factories import extract, records
from tests.test_browser_import import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def morning(streamlit_app, tmp_path_factory):
    """Notifications inside the next meeting's window: a high-risk crime with children, a high-risk crime without,
    a medium non-crime with children, a standard non-crime without (information only), and one from last month
    that the coordinator adds by hand."""
    day = next_meeting_day(london_now().date())
    start, _ = agenda_window(day)
    recs = records(5, seed=71, repeat_share=0.0, start=start.date() - dt.timedelta(days=40), days=1)
    kid = {"surname": "Tester", "forename": "Ivy", "dob": dt.date(2017, 3, 1), "gender": "F",
           "school": "Kexley Primary", "present": True}
    shapes = [("crime", "high", 16, [kid]), ("crime", "high", 15, []), ("non_crime", "medium", 11, [kid]),
              ("non_crime", "standard", 2, []), ("non_crime", "standard", 3, [])]
    for i, (rec, (cls, risk, score, kids)) in enumerate(zip(recs, shapes)):
        rec.update(classification=cls, risk=risk, dash_score=score, children=kids, flag_pregnancy=False,
                   crime_ref=f"CR/{9000 + i}/26" if cls == "crime" else None, ho_code="8N" if cls == "crime" else None)
        rec["incident_at"] = start + dt.timedelta(hours=1 + i)
        rec["reported_at"] = rec["incident_at"]
    old = recs[4]
    old["incident_at"] = old["reported_at"] = start - dt.timedelta(days=30)
    with Session(get_engine(streamlit_app.database_url)) as s:
        import_file(s, extract(tmp_path_factory.mktemp("agenda"), "niche_wide", recs), load_profile("niche_wide"))
        s.commit()
    return {"day": day, "refs": [r["police_ref"] for r in recs]}


def test_agenda_sections_add_a_case_and_export(page: Page, streamlit_app, morning):
    refs = morning["refs"]
    sign_in(page, streamlit_app)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Agenda", exact=True).click()
    expect(page.get_by_role("heading", name="Agenda", exact=True)).to_be_visible()
    page.get_by_role("button", name="Build the agenda", exact=True).click()
    cases = page.get_by_test_id("stMarkdown")  # the case headings
    expect(cases.get_by_text(f"1. {refs[0]}", exact=False)).to_be_visible()
    headings = [t.strip() for t in page.get_by_role("heading", level=3).all_inner_texts()]
    sections = [t for t in headings if t.endswith(")")]
    assert sections[:4] == ["New high risk with children (1)", "Other high risk (1)", "Medium risk with children (1)",
                            "Information only (1)"], headings
    order = [cases.get_by_text(f"{n}. {ref}", exact=False) for n, ref in ((1, refs[0]), (2, refs[1]), (3, refs[2]))]
    for locator in order:
        expect(locator).to_be_visible()

    page.get_by_role("textbox", name="Police reference").fill(refs[4])
    page.get_by_role("textbox", name="Why it should be discussed").fill("Health visitor raised a new concern")
    page.get_by_role("button", name="Add to the agenda", exact=True).click()
    expect(page.get_by_test_id("stText").filter(has_text="Health visitor raised a new concern").first).to_be_visible()

    page.get_by_role("button", name="Prepare the export (xlsx)").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the agenda (xlsx)").click()
    book = openpyxl.load_workbook(io.BytesIO(open(info.value.path(), "rb").read()))
    assert book.sheetnames == ["Agenda", "Overdue actions"]
    rows = list(book["Agenda"].iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    ref_col = header.index(next(h for h in header if h and "police" in str(h).lower()))
    exported = [r[ref_col] for r in body if r[ref_col]]
    assert exported[:3] == refs[:3] and refs[4] in exported and refs[3] not in exported[:4]
