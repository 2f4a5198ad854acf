"""Agenda: today's cases in the order the meeting takes them, with why each is there and each person's history."""
import pandas as pd
import streamlit as st

from core.db import session_scope
from core.scope import Refused
from dv.matching import case_history, confirm_match, reject_match, suggest_matches, undo_match
from dv.notifications import log_export
from core.timeutil import london_now
from meetings.agenda import (add_case, agenda_text, agenda_view, agenda_workbook, build_agenda, move_item,
                             next_meeting_day, publish_agenda, remove_case)
from pages.common import (current_user, enter_page, forget_version, label, mark_viewed, md_escape, page_visit,
                          seen_version)

user = current_user()
enter_page("agenda")
st.title("Agenda")
# On a weekend or bank holiday the coordinator is preparing the next meeting's agenda.
day = st.date_input("Meeting date", next_meeting_day(london_now().date()), format="DD/MM/YYYY", key="agenda_date")


def act(fn, *args, **kwargs) -> None:
    """Run a change in its own transaction; show refusals and stale-page errors (``Conflict``) instead of failing.
    Changes run as widget callbacks, before the page does, so the page then shows the result in the same run."""
    try:
        with session_scope() as session:
            fn(session, current_user(), *args, **kwargs)
    except (ValueError, Refused) as exc:
        st.session_state["agenda_error"] = str(exc)


def version_key(meeting_id: int) -> str:
    return f"agenda_{page_visit()}_{meeting_id}"


def change(meeting_id: int, fn, *args, **kwargs) -> None:
    """A change to the agenda, checked against the version the page first showed (passed in ``kwargs`` through the
    widget's ``args``). Saved or refused, the next change is checked against the agenda as the page shows it next."""
    forget_version(version_key(meeting_id))
    act(fn, *args, **kwargs)


def remove(meeting_id: int, item_id: int, seen: int) -> None:
    change(meeting_id, remove_case, item_id, st.session_state.get("remove_reason", ""), expected_version=seen)


def add(meeting_id: int, seen: int) -> None:
    change(meeting_id, add_case, meeting_id, st.session_state["add_ref"], st.session_state["add_reason"],
           expected_version=seen)


try:
    with session_scope() as session:
        view = agenda_view(session, user, day, log_view=mark_viewed("meeting", day.isoformat()))
except (ValueError, Refused) as exc:  # e.g. the agenda rules file is invalid
    st.error(md_escape(exc))
    st.stop()
if err := st.session_state.pop("agenda_error", None):
    st.error(md_escape(err))
if view.get("meeting_day") is False:
    st.info(md_escape(view.get("note") or "There is no meeting on this date."))
    st.stop()
if view.get("meeting_id") is None:
    st.info("There is no agenda for this date yet.")
    st.button("Build the agenda", type="primary", key="build", on_click=act, args=(build_agenda, day))
    st.stop()

mid = view["meeting_id"]
# The version when the page first showed this agenda (this visit), kept until the user's next change. Read on a
# click's own rerun it would already include a colleague's change or a new import, so the check could never fire:
# Publish would publish cases never seen, Up would move a case a colleague had just moved a second time.
seen = seen_version(version_key(mid), view["version"])
status = label(view["status"])
st.caption(f"{status.capitalize()} – notifications from {view['window_start']:%a %d/%m/%Y %H:%M} "
           f"to {view['window_end']:%a %d/%m/%Y %H:%M}")
c1, c2, c3 = st.columns(3)
c1.button("Refresh from the latest import", key="refresh", on_click=change, args=(mid, build_agenda, day))
if status == "draft":
    c2.button("Publish", key="publish", on_click=change, args=(mid, publish_agenda, mid, seen))
# The workbook is built only when asked for: building it on every rerun would slow the page for everyone.
if c3.button("Prepare the export (xlsx)", key="prepare_export"):
    with session_scope() as session:
        st.session_state["agenda_export"] = (day, agenda_workbook(view))
        log_export(session, user, "meeting", meeting_id=view["meeting_id"])
if (ready := st.session_state.get("agenda_export")) and ready[0] == day:
    c3.download_button("Download the agenda (xlsx)", ready[1], file_name=f"agenda-{day:%Y-%m-%d}.xlsx",
                       key="export")

# Two elements a case: a large county's agenda has a few hundred, and every element costs render time.
positions = {}
for section in view["sections"]:
    items = section["items"]
    if not items:
        continue
    st.subheader(f"{section['title']} ({sum(not i['removed'] for i in items)})")
    for item in items:
        positions[item["item_id"]] = item
        head = f"{item['position']}. {item['police_ref']} – {label(item['stream'])}, {label(item['risk'])} risk"
        st.markdown(f"**{md_escape(head)}**" if not item["removed"] else f"~~{md_escape(head)}~~")
        lines = ["Why: " + "; ".join(item["reasons"])]
        if item.get("added_reason"):
            lines.append(f"Added: {item['added_reason']}")
        if item["marac_flags"]:
            lines.append("MARAC: " + "; ".join(item["marac_flags"]))
        lines.append(f"Victim: {item.get('victim') or '–'} · earlier incidents (12 months): "
                     f"{item['prior_incidents_12m']} · children: {item.get('children', 0)}")
        if item["removed"]:
            lines.append(f"Removed: {item['removed_reason']}")
        st.text("\n".join(lines))

with st.expander("Move or remove a case"):
    live = [i for i, it in positions.items() if not it["removed"]]
    pick = st.selectbox("Case to change", live, index=None, placeholder="Choose a case", key="change_case",
                        format_func=lambda i: f"{positions[i]['position']}. {positions[i]['police_ref']}")
    if pick is not None:
        b = st.columns([1, 1, 4, 1])
        b[0].button("Up", key="up", on_click=change, args=(mid, move_item, pick, -1),
                    kwargs={"expected_version": seen})
        b[1].button("Down", key="down", on_click=change, args=(mid, move_item, pick, 1),
                    kwargs={"expected_version": seen})
        b[2].text_input("Reason to remove", key="remove_reason", label_visibility="collapsed",
                        placeholder="Reason to remove this case")
        b[3].button("Remove", key="remove", on_click=remove, args=(mid, pick, seen))

if view["information_only"]:
    st.subheader(f"Information only ({len(view['information_only'])})")
    st.dataframe(pd.DataFrame(view["information_only"], columns=["police_ref", "stream", "risk", "incident_at"]),
                 hide_index=True, width="stretch")
st.subheader(f"Actions overdue or due today ({len(view['overdue_actions'])})")
st.dataframe(pd.DataFrame(view["overdue_actions"], columns=["police_ref", "agency", "description", "due_at"]),
             hide_index=True, width="stretch")

with st.form("add_case", clear_on_submit=True):
    st.subheader("Add a case")
    st.text_input("Police reference", key="add_ref")
    st.text_input("Why it should be discussed", key="add_reason")
    st.form_submit_button("Add to the agenda", on_click=add, args=(mid, seen))

st.subheader("Person history and possible matches")
choice = st.selectbox("Case", list(positions), index=None, placeholder="Choose a case", key="agenda_case",
                      format_func=lambda i: f"{positions[i]['police_ref']} ({positions[i].get('victim') or ''})")
if choice is not None:
    with session_scope() as session:
        history = case_history(session, user, positions[choice]["notification_id"],
                               log_view=mark_viewed("case_history", choice))
        people = [p["person_id"] for p in history["people"]]
        matches = suggest_matches(session, user, people)
    for person in history["people"]:
        st.markdown(f"**{md_escape(label(person['role']).capitalize() + ': ' + str(person['name']))}**")
        st.dataframe(pd.DataFrame(person["earlier"], columns=["police_ref", "incident_at", "stream", "risk", "role"]),
                     hide_index=True, width="stretch")
        if person["decisions"]:
            st.dataframe(pd.DataFrame(person["decisions"], columns=["meeting_date", "police_ref", "section", "reasons"]),
                         hide_index=True, width="stretch")
        if person["open_actions"]:
            st.dataframe(pd.DataFrame(person["open_actions"], columns=["police_ref", "agency", "description", "due_at"]),
                         hide_index=True, width="stretch")
    if history["children"]:
        st.markdown("**Children and their schools**")
        st.dataframe(pd.DataFrame(history["children"], columns=["name", "dob", "school_name"]), hide_index=True)
    for m in matches:
        with st.container(border=True):
            st.text(f"Possible match: {m['a_name']} and {m['b_name']} ({label(m['status'])})")
            st.text("Why: " + "; ".join(m["why"]))
            k = st.columns(3)
            if m["status"] == "suggested" or getattr(m["status"], "value", None) == "suggested":
                k[0].button("Same person", key=f"confirm_{m['id']}", on_click=act,
                            args=(confirm_match, m["id"], m["version"]))
                k[1].button("Not the same", key=f"reject_{m['id']}", on_click=act,
                            args=(reject_match, m["id"], m["version"]))
            else:
                k[2].button("Undo the link", key=f"undo_{m['id']}", on_click=act,
                            args=(undo_match, m["id"], m["version"]))

if st.toggle("Print-friendly view", key="print_view"):
    st.text(agenda_text(view))
