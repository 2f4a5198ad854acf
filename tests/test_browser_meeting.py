"""A whole meeting in a real browser: the coordinator opens the meeting from the agenda, records attendance, takes
two cases with decisions and actions across three agencies, closes it and exports the minutes; then an agency
representative signs in and completes an action, and the coordinator's Overdue view and the next day's agenda
reflect it."""
from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re

import openpyxl
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlmodel import Session

from core.auth import create_user
from core.db import get_engine
from core.models import User, UserRole
from core.timeutil import london_now
from dv.importer import import_file
from dv.profiles import load_profile
from meetings.agenda import agenda_window, build_agenda, next_meeting_day
from meetings.models import Action, ActionChange, Meeting
from tests.factories import extract, records
from tests.test_browser_import import go_to, sign_in

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-staple-7"
CSC = 2


@pytest.fixture(scope="module")
def agenda(streamlit_app, tmp_path_factory):
    """The next meeting's agenda with two cases (high-risk crime with a child, medium non-crime) and a CSC rep."""
    day = next_meeting_day(london_now().date())
    start, _ = agenda_window(day)
    recs = records(2, seed=83, repeat_share=0.0, start=start.date(), days=1)
    kid = {"surname": "Tester", "forename": "Ivy", "dob": dt.date(2017, 3, 1), "gender": "F",
           "school": "Kexley Primary", "present": True}
    for i, (rec, (cls, risk, score, kids)) in enumerate(zip(recs, [("crime", "high", 16, [kid]),
                                                                  ("non_crime", "medium", 11, [])])):
        rec.update(classification=cls, risk=risk, dash_score=score, children=kids, flag_pregnancy=False,
                   crime_ref="CR/7100/26" if cls == "crime" else None, ho_code="8N" if cls == "crime" else None,
                   incident_at=start + dt.timedelta(hours=2 + i), reported_at=start + dt.timedelta(hours=2 + i))
    engine = get_engine(streamlit_app.database_url)
    with Session(engine, expire_on_commit=False) as s:
        import_file(s, extract(tmp_path_factory.mktemp("meeting"), "niche_wide", recs), load_profile("niche_wide"))
        coord = s.execute(select(User).where(User.username == streamlit_app.username)).scalar_one()
        build_agenda(s, coord, day)
        create_user(s, None, username="csc.rep", display_name="Sam CSC", role=UserRole.agency, agency_id=CSC,
                    password=PASSWORD)
        s.commit()
    return {"day": day, "refs": [r["police_ref"] for r in recs], "engine": engine}


def choose(page: Page, label: str, option: str, scope=None) -> None:
    box = (scope or page).get_by_role("combobox", name=label)
    for _ in range(5):  # a click landing while the page re-renders does not open the list: click again
        box.click()
        try:
            expect(page.get_by_role("option").first).to_be_visible(timeout=3_000)
            break
        except AssertionError:
            page.keyboard.press("Escape")
    page.keyboard.type(option)  # long lists are virtualised: filter first
    page.get_by_role("option", name=option, exact=True).click()


def pick(page: Page, box, option: str) -> None:
    """A multiselect: type to filter the options, then take the one named exactly."""
    box.click()
    page.keyboard.type(option[:12])
    page.get_by_role("option").filter(has_text=option).first.click()
    page.keyboard.press("Escape")


def set_date(field, day: dt.date) -> None:
    """Type a date into a date input as a user does: its day, month and year are separate spin buttons."""
    field.get_by_role("spinbutton").first.click()
    field.page.keyboard.type(f"{day:%d%m%Y}")
    field.page.keyboard.press("Escape")  # close the calendar; the value is taken when the field loses focus
    field.page.locator("h1").first.click()
    expect(field.get_by_role("spinbutton").last).to_have_text(f"{day:%Y}")


def form(page: Page, button: str):
    return page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name=button, exact=True))


def add_action(page: Page, agency: str, text: str, due: dt.date | None = None) -> None:
    f = form(page, "Add action")
    choose(page, "Agency", agency, f)
    f.get_by_role("textbox", name="Action", exact=True).fill(text)
    if due:
        set_date(f.get_by_test_id("stDateInput"), due)
    f.get_by_role("button", name="Add action", exact=True).click()
    expect(page.get_by_test_id("stText").filter(has_text=text)).to_be_visible()


def test_a_whole_meeting_then_an_agency_completes_its_action(page: Page, browser, streamlit_app, agenda):
    refs, day = agenda["refs"], agenda["day"]
    sign_in(page, streamlit_app)
    go_to(page, "Meeting", "meeting")
    page.get_by_role("textbox", name="Chair", exact=True).fill("Casey Chair")
    page.get_by_role("button", name="Open the meeting", exact=True).click()
    expect(page.get_by_text("Chair: Casey Chair – meeting open")).to_be_visible()

    attendance = form(page, "Add attendee")
    for agency, name, state in [("Children's Social Care", "Sam Social", "present"), ("Health", "Hal Health",
                                                                                      "apologies"),
                                ("IDVA", "Ida Advocate", "present")]:
        choose(page, "Agency", agency, attendance)
        attendance.get_by_role("textbox", name="Name", exact=True).fill(name)
        choose(page, "Attendance", state, attendance)
        if state == "present":
            attendance.get_by_text("Accepts the confidentiality statement").click()
        attendance.get_by_role("button", name="Add attendee", exact=True).click()
        expect(page.get_by_test_id("stDataFrame").first).to_contain_text(name)

    # case 1: decisions and two actions (one already overdue, for the chasing below)
    expect(page.get_by_role("heading", name=f"1. {refs[0]}", exact=False)).to_be_visible()
    decisions = form(page, "Save risk and decisions")
    for option in ("Children's social care referral", "MARAC referral"):
        pick(page, decisions.get_by_test_id("stMultiSelect"), option)
    decisions.get_by_role("button", name="Save risk and decisions", exact=True).click()
    page.get_by_role("textbox", name="Children's Social Care", exact=True).fill("Open case; allocated social worker")
    page.get_by_role("button", name="Save shared notes", exact=True).click()
    overdue_due = london_now().date() - dt.timedelta(days=2)
    add_action(page, "Children's Social Care", "Joint visit with police", due=overdue_due)
    add_action(page, "Health", "Health visitor to contact mother")

    # case 2: a raised grade with its rationale, and an IDVA action
    page.get_by_role("button", name="Next case", exact=True).click()
    expect(page.get_by_role("heading", name=f"2. {refs[1]}", exact=False)).to_be_visible()
    case2 = form(page, "Save risk and decisions")
    choose(page, "Confirmed risk", "high", case2)
    case2.get_by_role("textbox", name="Rationale (needed when it differs from the police grade)").fill(
        "Third incident this month; escalating")
    pick(page, case2.get_by_test_id("stMultiSelect"), "IDVA referral")
    case2.get_by_role("button", name="Save risk and decisions", exact=True).click()
    expect(page.get_by_role("combobox", name="Case")).to_have_value(re.compile("✓"))
    add_action(page, "IDVA", "IDVA to offer support")

    page.get_by_role("button", name="Close the meeting", exact=True).click()
    expect(page.get_by_text("meeting closed", exact=False)).to_be_visible()
    page.get_by_role("button", name="Prepare the minutes (xlsx)").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the minutes").click()
    book = openpyxl.load_workbook(io.BytesIO(open(info.value.path(), "rb").read()))
    attendance_rows = {r[0]: r[1] for r in book["Attendance"].iter_rows(min_row=2, values_only=True)}
    assert (attendance_rows["Children's Social Care"], attendance_rows["Health"], attendance_rows["Probation"]) == (
        "present", "apologies", "absent")
    cases = list(book["Cases"].iter_rows(values_only=True))
    by_ref = {r[1]: dict(zip(cases[0], r)) for r in cases[1:]}
    assert by_ref[refs[0]]["Decisions"] == "Children's social care referral; MARAC referral"
    assert by_ref[refs[0]]["Shared: Children's Social Care"] == "Open case; allocated social worker"
    assert (by_ref[refs[1]]["Confirmed risk"], by_ref[refs[1]]["Decisions"]) == ("high", "IDVA referral")
    actions = {(r[1], r[3]) for r in book["Actions"].iter_rows(min_row=2, values_only=True)}
    assert actions == {("Children's Social Care", "Joint visit with police"),
                       ("Health", "Health visitor to contact mother"), ("IDVA", "IDVA to offer support")}
    with Session(agenda["engine"]) as s:
        assert s.execute(select(Meeting.status)).scalar_one().value == "closed"
        visit = s.execute(select(Action).where(Action.description == "Joint visit with police")).scalar_one()
        assert visit.due_at == dt.datetime.combine(overdue_due, dt.time(17, 0))

    # the Overdue view lists the CSC action
    go_to(page, "Overdue actions", "overdue")
    expect(page.get_by_test_id("stDataFrame").last).to_contain_text("Joint visit with police")

    # the CSC representative completes it, in their own browser session
    rep_context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB",
                                      timezone_id="Europe/London")
    try:
        rep = rep_context.new_page()
        sign_in(rep, dataclasses.replace(streamlit_app, username="csc.rep", password=PASSWORD))
        expect(rep.get_by_role("heading", name="My actions", exact=True)).to_be_visible()
        rep.get_by_role("combobox", name="Action to update").click()
        rep.get_by_role("option").filter(has_text="overdue").first.click()
        expect(rep.get_by_text("Open case; allocated social worker")).to_be_visible()  # shared at the meeting
        expect(rep.get_by_text("Health visitor to contact mother")).to_have_count(0)  # another agency's action
        choose(rep, "Status", "done")
        rep.get_by_role("textbox", name="Note (needed for done, not possible and not done)").fill(
            "Visited with police; children seen")
        rep.get_by_role("button", name="Save", exact=True).click()
        expect(rep.get_by_text("Saved.")).to_be_visible()
    finally:
        rep_context.close()
    with Session(agenda["engine"]) as s:
        assert s.execute(select(Action.status).where(Action.id == visit.id)).scalar_one().value == "done"
        assert s.execute(select(ActionChange.field).where(ActionChange.action_id == visit.id)
                         .order_by(ActionChange.id)).scalars().all() == ["created", "status", "note"]

    # the coordinator's Overdue view and the next day's agenda no longer list it; Health's is in the review
    go_to(page, "Agenda", "agenda")
    go_to(page, "Overdue actions", "overdue")
    counts = page.get_by_test_id("stDataFrame").first
    expect(counts).to_contain_text("Children's Social Care00")  # none overdue, none due today
    expect(page.get_by_test_id("stDataFrame").filter(has_text="Joint visit with police")).to_have_count(0)
    go_to(page, "Agenda", "agenda")
    next_day = next_meeting_day(day + dt.timedelta(days=1))
    set_date(page.get_by_test_id("stDateInput"), next_day)
    page.get_by_role("button", name="Build the agenda", exact=True).click()
    expect(page.get_by_text(f"to {next_day:%a %d/%m/%Y} 09:00", exact=False)).to_be_visible()
    review = page.get_by_test_id("stDataFrame").last  # "Actions overdue or due today"
    expect(review).to_contain_text("Health visitor to contact mother")
    expect(review).not_to_contain_text("Joint visit with police")
