"""AppTest checks that a page's save carries the version the user was looking at, not the one re-read on the click's
own rerun (which already includes a colleague's change, so the check could never fire): the Agenda page (publish,
move, remove, add) and the Users and agencies page."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import Session

from core.db import get_engine, session_scope
from core.models import User, UserRole
from meetings.agenda import agenda_view, move_item
from meetings.models import AgendaItem, Meeting
from tests.test_agenda import MON, at as wall, build_and_view, load, rec, ref
from tests.test_pages import _signed_in, _user, app_db  # noqa: F401  (fixture)

CSC = 2
CONFLICT = "The agenda was changed by someone else"


@pytest.fixture
def agenda_db(app_db, tmp_path):
    """A draft agenda for Monday with two cases in one section (both high risk, no children)."""
    coord = _user(app_db, "coord", UserRole.coordinator)
    colleague = _user(app_db, "colleague", UserRole.coordinator)
    with Session(get_engine(app_db), expire_on_commit=False) as s:
        sat = wall("21/11/2026 22:00")
        load(s, tmp_path, [rec(1, sat, crime=True, risk="high", score=15),
                           rec(2, sat, crime=True, risk="high", score=14),
                           rec(3, wall("10/11/2026 10:00"), risk="standard")], "pages")
        view = build_and_view(s, s.get(User, coord), MON)
    assert [i["police_ref"] for i in view["items"]][:2] == [ref(1), ref(2)]
    return app_db, coord, colleague


def agenda_page(uid):
    at = _signed_in(uid).run()
    at.switch_page("pages/agenda.py").run()
    at.date_input(key="agenda_date").set_value(MON).run()
    assert not at.exception, at.exception
    return at


def colleague_moves(url, colleague, police_ref, direction):
    """A colleague's change, made while the page is on screen (no version: theirs is the first save)."""
    with session_scope(get_engine(url)) as s:
        who = s.get(User, colleague)
        item = next(i for i in agenda_view(s, who, MON, log_view=False)["items"] if i["police_ref"] == police_ref)
        assert move_item(s, who, item["item_id"], direction)


def stored(url):
    with Session(get_engine(url)) as s:
        meeting = s.execute(select(Meeting)).scalar_one()
        order = s.execute(select(AgendaItem.notification_id, AgendaItem.removed)
                          .where(AgendaItem.meeting_id == meeting.id).order_by(AgendaItem.position)).all()
        return meeting.status, meeting.version, order


def test_publish_after_a_colleagues_change_is_refused(agenda_db):
    url, coord, colleague = agenda_db
    at = agenda_page(coord)
    colleague_moves(url, colleague, ref(2), "up")  # the agenda the coordinator reviewed is no longer the one stored
    at.toggle(key="print_view").set_value(True).run()  # any rerun meanwhile: the version first shown is kept
    at.button(key="publish").click().run()
    assert CONFLICT in at.error[0].value
    assert stored(url)[0] == "draft"
    at.button(key="publish").click().run()  # the page now shows the current agenda: publishing it works
    assert not at.error and stored(url)[0] == "published"


def test_up_after_a_colleague_moved_the_case_moves_it_once(agenda_db):
    url, coord, colleague = agenda_db
    at = agenda_page(coord)
    item = next(i for i in agenda_view_of(url, coord)["items"] if i["police_ref"] == ref(2))["item_id"]
    at.selectbox(key="change_case").set_value(item).run()
    before = stored(url)[2]
    colleague_moves(url, colleague, ref(2), "up")
    moved = stored(url)[2]
    assert moved != before
    at.button(key="up").click().run()
    assert CONFLICT in at.error[0].value
    assert stored(url)[2] == moved  # not moved a second time
    at.button(key="down").click().run()  # the user's own changes, one after another, are checked in turn
    assert not at.error and stored(url)[2] == before
    at.button(key="up").click().run()
    assert not at.error and stored(url)[2] == moved


def test_remove_and_add_carry_the_version_seen(agenda_db):
    url, coord, colleague = agenda_db
    at = agenda_page(coord)
    item = next(i for i in agenda_view_of(url, coord)["items"] if i["police_ref"] == ref(1))["item_id"]
    at.selectbox(key="change_case").set_value(item).run()
    at.text_input(key="remove_reason").input("Discussed yesterday").run()
    colleague_moves(url, colleague, ref(2), "up")
    at.button(key="remove").click().run()
    assert CONFLICT in at.error[0].value
    assert not any(removed for _, removed in stored(url)[2])
    at.button(key="remove").click().run()  # now on the current agenda
    assert not at.error and sum(removed for _, removed in stored(url)[2]) == 1

    colleague_moves(url, colleague, ref(2), "down")
    at.text_input(key="add_ref").input(ref(3))
    at.text_input(key="add_reason").input("Health visitor raised a concern")
    at.button[[b.label for b in at.button].index("Add to the agenda")].click().run()
    assert CONFLICT in at.error[0].value
    assert len(stored(url)[2]) == 2
    at.text_input(key="add_ref").input(ref(3))
    at.text_input(key="add_reason").input("Health visitor raised a concern")
    at.button[[b.label for b in at.button].index("Add to the agenda")].click().run()
    assert not at.error and len(stored(url)[2]) == 3


def agenda_view_of(url, uid):
    with session_scope(get_engine(url)) as s:
        return agenda_view(s, s.get(User, uid), MON, log_view=False)


# ------------------------------------------------------------------------------------------ Users and agencies


def users_page(uid):
    at = _signed_in(uid).run()
    at.switch_page("pages/users.py").run()
    assert not at.exception, at.exception
    return at


def button(at, label):
    return at.button[[b.label for b in at.button].index(label)]


def account(url, uid):
    with Session(get_engine(url)) as s:
        return s.get(User, uid)


def test_a_users_save_after_another_admins_change_is_refused_and_keeps_theirs(app_db):
    from core.accounts import update_user

    admin = _user(app_db, "ada.admin", UserRole.admin)
    other = _user(app_db, "bo.admin", UserRole.admin)
    rep = _user(app_db, "csc.rep", UserRole.agency, agency_id=CSC)

    def role(at):  # found by label (the edit form comes before the add-user form)
        return next(b for b in at.selectbox if b.label == "Role")

    def school(at):
        return next(t for t in at.text_input if t.label == "School URN (school key adults)")

    at = users_page(admin)
    at.selectbox(key="account_to_change").set_value(rep).run()
    role(at).set_value("school")  # Ada makes the account a school key adult...
    school(at).input("123456")
    with session_scope(get_engine(app_db)) as s:  # ...while Bo makes it a manager
        update_user(s, s.get(User, other), rep, 1, role="manager")
    button(at, "Save").click().run()
    assert "changed by someone else" in at.error[0].value
    assert account(app_db, rep).role == UserRole.manager  # Bo's change stands
    assert role(at).value == "manager"  # and the form now shows it
    role(at).set_value("school")
    school(at).input("123456")
    button(at, "Save").click().run()
    assert not at.error and at.success[0].value == "Saved."
    assert (account(app_db, rep).role, account(app_db, rep).school_urn) == (UserRole.school, "123456")


def test_an_admin_is_offered_neither_the_coordinator_role_nor_a_coordinators_reset(app_db):
    admin = _user(app_db, "ada.admin", UserRole.admin)
    coord = _user(app_db, "coord", UserRole.coordinator)
    rep = _user(app_db, "csc.rep", UserRole.agency, agency_id=CSC)
    at = users_page(admin)
    assert "coordinator" not in at.selectbox(key="new_role").options
    at.selectbox(key="account_to_change").set_value(rep).run()
    assert "coordinator" not in at.selectbox(key=f"user_role_{rep}").options
    assert [b.label for b in at.button].count("Reset password") == 1
    at.selectbox(key="account_to_change").set_value(coord).run()
    assert at.selectbox(key=f"user_role_{coord}").value == "coordinator"  # shown as it is, to keep
    assert "Reset password" not in [b.label for b in at.button]
    at = users_page(coord)  # a coordinator is offered both
    assert "coordinator" in at.selectbox(key="new_role").options
    at.selectbox(key="account_to_change").set_value(coord).run()
    assert "Reset password" in [b.label for b in at.button]


def test_typed_names_reach_markdown_inert(app_db):
    from core.auth import create_user

    with session_scope(get_engine(app_db)) as s:
        admin = create_user(s, None, username="ada", display_name="Ada [click](https://evil.example) **now**",
                            role=UserRole.admin, password="correct-horse-staple-7").id
        odd = create_user(s, None, username="x*y_[z]", display_name="x", role=UserRole.manager,
                          password="correct-horse-staple-7").id
    at = _signed_in(admin).run()  # (AppTest leaves the sidebar out after switch_page)
    assert at.sidebar.caption[0].value == r"Signed in as Ada \[click\]\(https://evil\.example\) \*\*now\*\* (admin)"
    at.switch_page("pages/users.py").run()
    at.selectbox(key="account_to_change").set_value(odd).run()
    assert at.subheader[0].value == r"Edit x\*y\_\[z\]"
    form = [t for t in at.text_input if t.label in ("Username", "Name", "Temporary password (they must change it)")]
    form[0].input("m*n")
    form[1].input("M")
    form[2].input("another-long-passphrase-3")
    at.selectbox(key="new_role").set_value("manager")
    button(at, "Add user").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.success[0].value == r"Added m\*n."


def test_a_password_change_on_my_account_bumps_the_stored_version(app_db):
    """The page passes its own detached copy of the user to ``change_password``, which now bumps the version in
    SQL and refreshes that copy: the page still works, and another admin's bump is kept with its own on top (the
    race itself is tests/test_auth_and_scope.py::test_a_password_change_keeps_a_colleagues_version_bump)."""
    from core.accounts import update_user
    from core.auth import authenticate

    admin = _user(app_db, "ada.admin", UserRole.admin)
    other = _user(app_db, "bo.admin", UserRole.admin)
    at = users_page(admin)
    at.switch_page("pages/account.py").run()
    with session_scope(get_engine(app_db)) as s:
        update_user(s, s.get(User, other), admin, 1, display_name="Ada A")
    new = "another-long-passphrase-3"
    for box, value in zip(at.text_input, ("correct-horse-staple-7", new, new)):
        box.input(value)
    button(at, "Change password").click().run()
    assert not at.error and at.success[0].value == "Password changed."
    assert account(app_db, admin).version == 3
    with session_scope(get_engine(app_db)) as s:
        assert authenticate(s, "ada.admin", new).display_name == "Ada A"
