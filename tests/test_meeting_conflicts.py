"""Lost updates on the Meeting page: a colleague's save made while a page was open must never be overwritten or
deleted by that page, and after a conflict the page must really show what is stored (a keyed Streamlit widget
keeps its own value whatever value=/index=/default= say). Service tests run on SQLite and PostgreSQL; page tests
drive pages/meeting.py with AppTest, the colleague being a second page or a direct service call."""
from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlmodel import Session

from core.accounts import add_agency
from core.db import get_engine, session_scope
from core.models import User, UserRole
from meetings import meeting as mt
from meetings.actions import update_action
from meetings.agenda import publish_agenda
from meetings.models import Action, AgencyShare, CaseDecision, CaseRecord, Meeting
from pages.common import md_escape
from tests.test_agenda import MON, ref
from tests.test_meeting import hub, opened  # noqa: F401  (fixture)
from tests.test_pages import _user, app_db  # noqa: F401  (fixture)
from tests.test_pages_meeting import agenda_db, meeting_page  # noqa: F401  (fixture)

CSC, HEALTH = 2, 4

# ------------------------------------------------------------------------------------------------ the service


def test_a_case_never_recorded_is_not_overwritten_by_a_second_editor(engine, session, hub):
    """Two coordinators both saw case 2 with no record (version None): the second save is refused, not a silent
    replacement of the first one's risk and decisions."""
    coord, item, mid = hub["coord"], hub["items"][ref(2)], hub["meeting_id"]
    opened(session, hub)
    assert {c["police_ref"]: c for c in mt.meeting_view(session, coord, MON)["cases"]}[ref(2)]["case_version"] is None
    session.commit()
    with Session(engine, expire_on_commit=False) as a, Session(engine, expire_on_commit=False) as b:
        mt.save_case(a, a.get(User, coord.id), mid, item, expected_version=None, confirmed_risk="high",
                     risk_rationale="A: escalating", decisions=["marac_referral"])
        a.commit()
        with pytest.raises(mt.Conflict):
            mt.save_case(b, b.get(User, coord.id), mid, item, expected_version=None, confirmed_risk="medium",
                         decisions=["csc_referral"])
        b.rollback()
    record = session.execute(select(CaseRecord).where(CaseRecord.agenda_item_id == item)).scalar_one()
    assert (record.confirmed_risk.value, record.risk_rationale, record.version) == ("high", "A: escalating", 2)
    assert session.execute(select(CaseDecision.decision).where(CaseDecision.case_id == record.id)).scalars().all() \
        == ["marac_referral"]


def test_a_record_created_by_putting_the_case_on_screen_is_still_no_record_seen(session, hub):
    """Going to a case creates its record (version 1, nothing recorded): an editor who saw no record may save."""
    coord, item, mid = hub["coord"], hub["items"][ref(1)], hub["meeting_id"]
    opened(session, hub)
    mt.go_to_case(session, coord, mid, item)
    session.commit()
    case = mt.save_case(session, coord, mid, item, expected_version=None, confirmed_risk="high")
    session.commit()
    assert case["version"] == 2


# PostgreSQL only: on SQLite, IMMEDIATE transactions queue the colleague's save instead of interleaving it
@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_removing_a_note_a_colleague_changed_meanwhile_is_a_conflict(engine, session, hub):
    """PostgreSQL (read committed): a colleague's save between save_share's read and its DELETE made the DELETE
    match nothing, yet the removal was reported and audited as done."""
    coord, item, mid = hub["coord"], hub["items"][ref(2)], hub["meeting_id"]
    opened(session, hub)
    mt.save_share(session, coord, mid, item, CSC, "First", expected_version=None)
    session.commit()
    fired = []

    def colleague_first(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("DELETE FROM AGENCY_SHARE") and not fired:
            fired.append(True)
            with Session(engine, expire_on_commit=False) as other:
                mt.save_share(other, other.get(User, coord.id), mid, item, CSC, "Colleague's", expected_version=1)
                other.commit()

    event.listen(engine, "before_cursor_execute", colleague_first)
    try:
        with Session(engine, expire_on_commit=False) as mine:
            with pytest.raises(mt.Conflict):
                mt.save_share(mine, mine.get(User, coord.id), mid, item, CSC, "", expected_version=1)
            mine.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", colleague_first)
    assert fired
    assert session.execute(select(AgencyShare.note)).scalars().all() == ["Colleague's"]


# ------------------------------------------------------------------------------------------------ the page


def click(at, label: str):
    return at.button[[b.label for b in at.button].index(label)].click().run()


@pytest.fixture
def meeting_open(agenda_db):
    """The agenda_db meeting opened by its coordinator, a second coordinator (the chair), the first case's item."""
    url, coord, _ = agenda_db
    chair = _user(url, "chair", UserRole.coordinator)
    with session_scope(get_engine(url)) as s:
        c = s.get(User, coord)
        view = mt.meeting_view(s, c, MON)
        mt.open_meeting(s, c, view["meeting_id"], chair="Casey", expected_version=view["version"])
    return url, coord, chair, view["meeting_id"], view["cases"][0]["item_id"]


def as_user(url, uid, fn, *args, **kwargs):
    with session_scope(get_engine(url)) as s:
        return fn(s, s.get(User, uid), *args, **kwargs)


def shares(url, item) -> dict[int, str]:
    with session_scope(get_engine(url)) as s:
        case_id = s.execute(select(CaseRecord.id).where(CaseRecord.agenda_item_id == item)).scalar_one()
        return dict(s.execute(select(AgencyShare.agency_id, AgencyShare.note)
                              .where(AgencyShare.case_id == case_id)).all())


def test_an_untouched_note_box_never_deletes_a_colleague_s_note(meeting_open):
    """The review's scenario, two pages: the minute-taker has the case open (Health has no note), the chair adds
    Health's note, the minute-taker edits CSC's note and saves, then saves again."""
    url, coord, chair, _, item = meeting_open
    minutes = meeting_page(coord)  # puts the first case on screen
    chairs = meeting_page(chair)
    chairs.text_area(key=f"share_{item}_{HEALTH}").input("X: known to the GP")
    click(chairs, "Save shared notes")
    assert not chairs.error, [e.value for e in chairs.error]
    minutes.text_area(key=f"share_{item}_{CSC}").input("Open case, allocated SW")
    click(minutes, "Save shared notes")
    assert not minutes.error, [e.value for e in minutes.error]  # Health's box was not touched: nothing to refuse
    assert minutes.text_area(key=f"share_{item}_{HEALTH}").value == "X: known to the GP"  # and theirs is shown
    click(minutes, "Save shared notes")
    assert shares(url, item) == {CSC: "Open case, allocated SW", HEALTH: "X: known to the GP"}


def test_an_edited_note_in_conflict_shows_the_colleague_s_note(meeting_open):
    url, coord, chair, mid, item = meeting_open
    at = meeting_page(coord)
    as_user(url, chair, mt.save_share, mid, item, HEALTH, "X", expected_version=None)
    at.text_area(key=f"share_{item}_{HEALTH}").input("Y")
    click(at, "Save shared notes")
    assert "changed by someone else" in at.error[0].value
    assert at.text_area(key=f"share_{item}_{HEALTH}").value == "X"  # "their version is shown" is true
    click(at, "Save shared notes")
    assert shares(url, item) == {HEALTH: "X"}


def test_risk_and_decisions_in_conflict_show_the_stored_values(meeting_open):
    url, coord, chair, mid, item = meeting_open
    at = meeting_page(coord)
    case = as_user(url, chair, mt.meeting_view, MON)["cases"][0]
    as_user(url, chair, mt.save_case, mid, item, expected_version=case["case_version"], confirmed_risk="high",
            decisions=["csc_referral"])
    at.multiselect(key=f"decisions_{item}").set_value(["marac_referral"])
    click(at, "Save risk and decisions")
    assert "changed by someone else" in at.error[0].value
    assert at.multiselect(key=f"decisions_{item}").value == ["csc_referral"]
    click(at, "Save risk and decisions")
    with session_scope(get_engine(url)) as s:
        assert s.execute(select(CaseDecision.decision)).scalars().all() == ["csc_referral"]


def test_an_action_note_in_conflict_is_shown_and_not_written_back(meeting_open):
    url, coord, chair, mid, item = meeting_open
    action_id = as_user(url, coord, mt.add_case_action, mid, item, agency_id=CSC, description="Visit")
    at = meeting_page(coord)
    as_user(url, chair, update_action, action_id, expected_version=1, status="in_progress", note="On it")
    at.selectbox(key=f"status_{action_id}").set_value("done").run()
    assert "changed by someone else" in at.error[0].value
    assert at.text_input(key=f"note_{action_id}").value == "On it"
    assert at.selectbox(key=f"status_{action_id}").value == "in_progress"
    at.selectbox(key=f"status_{action_id}").set_value("open").run()  # the note box was left as shown
    assert not at.error, [e.value for e in at.error]
    with session_scope(get_engine(url)) as s:
        action = s.get(Action, action_id)
        assert (action.status.value, action.note) == ("open", "On it")


def test_opening_from_a_stale_page_is_a_conflict(agenda_db):
    url, coord, _ = agenda_db
    at = meeting_page(coord)
    view = as_user(url, coord, mt.meeting_view, MON)
    as_user(url, coord, publish_agenda, view["meeting_id"], view["version"])  # a colleague, meanwhile
    at.button(key="open_meeting").click().run()
    assert "changed by someone else" in at.error[0].value
    with session_scope(get_engine(url)) as s:
        assert s.execute(select(Meeting.status)).scalar_one().value == "published"
    at.button(key="open_meeting").click().run()  # the page now shows the published agenda
    assert not at.error and "meeting open" in at.caption[0].value


def test_closing_from_a_stale_page_is_a_conflict(meeting_open):
    url, coord, chair, mid, _ = meeting_open
    at = meeting_page(coord)
    as_user(url, chair, mt.set_chair, mid, "Chris Chair")  # a colleague, meanwhile
    at.button(key="close_meeting").click().run()
    assert "changed by someone else" in at.error[0].value
    assert "Chair: Chris Chair – meeting open" in at.caption[0].value
    at.button(key="close_meeting").click().run()
    assert not at.error and "closed" in at.caption[0].value


def test_chair_and_agency_names_are_not_markdown(agenda_db):
    url, coord, _ = agenda_db
    name = "Team *A* [more](http://evil.test)"
    agency = as_user(url, coord, add_agency, name)
    at = meeting_page(coord)
    chair = "**Boss** ![x](http://evil.test/x.png)"
    at.text_input(key="chair").set_value(chair)
    at.button(key="open_meeting").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.caption[0].value.startswith(f"Chair: {md_escape(chair)} – meeting open")
    item = as_user(url, coord, mt.meeting_view, MON)["cases"][0]["item_id"]
    assert at.text_area(key=f"share_{item}_{agency}").label == md_escape(name)
