"""Meeting: run the daily meeting from its agenda – chair, attendance, then each case in order: shared notes,
confirmed risk, decisions and actions. Every button saves at once; the page only shows what is stored."""
import datetime as dt
import time

import pandas as pd
import streamlit as st

from core.db import session_scope
from core.scope import Refused
from core.timeutil import london_now
from meetings import meeting as mt
from meetings.actions import Conflict as ActionConflict
from meetings.actions import update_action
from meetings.agenda import next_meeting_day
from meetings.models import ActionStatus, Attendance, Decision
from pages.common import current_user, enter_page, forget_version, label, mark_viewed, md_escape, seen_version

user = current_user()
enter_page("meeting")
st.title("Meeting")
day = st.date_input("Meeting date", next_meeting_day(london_now().date()), format="DD/MM/YYYY", key="meeting_date")


def act(fn, *args, **kwargs) -> Exception | None:
    """One change, one transaction; a refusal, a broken rule or a colleague's newer save is shown, not raised (and
    returned, so the caller can tell a conflict from a refusal). Most changes run as widget callbacks, before the
    page does, so the page then shows them in one run, not two (under load each run costs the server and every
    browser); the user is re-read for each change."""
    try:
        with session_scope() as session:
            fn(session, current_user(), *args, **kwargs)
    except (ValueError, Refused, mt.Conflict, ActionConflict) as exc:
        st.session_state["meeting_error"] = str(exc)
        return exc
    return None


def started(key: str, version: int | None, values: dict) -> tuple[int | None, dict]:
    """The version and the widget values (by widget key) a record had when the user began editing it. A keyed widget
    keeps what the user typed across reruns whatever value=/index=/default= say, so a save must compare the boxes
    with this starting point, never with what is stored now (an untouched box would then "change" a colleague's
    newer save back), and pass this version. Widgets missing from session state are created again from the stored
    values, so then the starting point is what is stored now (all of them: one box left with the user's value and
    a new starting point would look changed)."""
    if not all(k in st.session_state for k in values):
        forget(key, values)
    return seen_version(key, version), st.session_state.setdefault("started_values", {}).setdefault(key, values)


def forget(key: str, widgets=()) -> None:
    """After a save or a conflict the next run starts again from what is stored; after a conflict the widgets are
    dropped too, so that what is stored is really shown (and a second save cannot write the stale values back)."""
    forget_version(key)
    st.session_state.get("started_values", {}).pop(key, None)
    for k in widgets:
        st.session_state.pop(k, None)


def settled(key: str, widgets, error: Exception | None) -> None:
    """A save's outcome: saved or conflicting, start again (showing the stored values after a conflict); refused for
    a broken rule, keep the starting point so the corrected save is still checked against it."""
    if error is None or isinstance(error, (mt.Conflict, ActionConflict)):
        forget(key, widgets if error is not None else ())


with session_scope() as session:
    view = mt.meeting_view(session, user, day, log_view=mark_viewed("meeting_record", day.isoformat()))
if err := st.session_state.pop("meeting_error", None):
    st.error(md_escape(err))
meeting = view["meeting"]
if meeting is None:
    st.info("There is no agenda for this date yet: build it on the Agenda page first.")
    st.stop()
mid, status = meeting["id"], meeting["status"]
if status in ("draft", "published"):
    st.caption(f"Agenda {status}: {len(view['cases'])} cases.")
    st.text_input("Chair", value=user.display_name, key="chair")
    # Opening and closing pass the version this run shows (bound as callback args now, not re-read on the click's
    # run), so a click on a page that is out of date is refused with the current state shown.
    st.button("Open the meeting", type="primary", key="open_meeting", on_click=lambda seen: act(
        mt.open_meeting, mid, chair=st.session_state["chair"], expected_version=seen), args=(meeting["version"],))
    st.stop()

st.caption(f"Chair: {md_escape(meeting['chair'])} – meeting {status}"
           + (" (locked: changes are recorded as amendments)" if status == "closed" else ""))
top = st.columns(3)
if status == "open":
    top[0].button("Close the meeting", key="close_meeting", on_click=act,
                  args=(mt.close_meeting, mid), kwargs={"expected_version": meeting["version"]})
if top[1].button("Prepare the minutes (xlsx)", key="prepare_minutes"):
    with session_scope() as session:
        st.session_state["minutes"] = (day, mt.export_minutes(session, user, day))
if (ready := st.session_state.get("minutes")) and ready[0] == day:
    top[2].download_button("Download the minutes", ready[1], file_name=f"minutes-{day:%Y-%m-%d}.xlsx",
                           key="download_minutes")

agencies = {a["id"]: a["name"] for a in view["agencies"]}
if st.toggle("Attendance", value=not view["attendees"], key="show_attendance"):
    st.dataframe(pd.DataFrame(mt.agency_attendance(view), columns=["agency", "attendance", "names"]),
                 hide_index=True, width="stretch")
    st.caption(view["confidentiality_statement"])
    with st.form("attendee", clear_on_submit=True):
        cols = st.columns([2, 2, 2, 2])
        agency = cols[0].selectbox("Agency", list(agencies), format_func=agencies.get, key="att_agency")
        name = cols[1].text_input("Name", key="att_name")
        attendance = cols[2].selectbox("Attendance", [a.value for a in Attendance], format_func=label,
                                       key="att_status")
        accepted = cols[3].checkbox("Accepts the confidentiality statement", key="att_accept")
        if st.form_submit_button("Add attendee"):
            act(mt.add_attendee, mid, agency_id=agency, name=name, attendance=attendance,
                confidentiality_accepted=accepted)
            st.rerun()

cases = view["cases"]
if not cases:
    st.info("No cases on this agenda.")
    st.stop()
by_item = {c["item_id"]: c for c in cases}
order = [c["item_id"] for c in cases]
current = next((c["item_id"] for c in cases if c["current"]), None)
nav = st.columns([6, 1, 1])
case_key = f"case_{current}"  # a new key when the case on screen changes, so the box shows it


def pick() -> None:
    """Choosing a case in the box puts it on screen (a callback: it runs once per choice, never in a loop)."""
    act(mt.go_to_case, mid, st.session_state[case_key])


chosen = nav[0].selectbox("Case", order, index=order.index(current) if current in order else 0, key=case_key,
                          on_change=pick if status == "open" else None,
                          format_func=lambda i: f"{by_item[i]['position']}. {by_item[i]['police_ref']} – "
                                                f"{label(by_item[i]['risk'])}" + (" ✓" if by_item[i]['discussed'] else ""))
if status == "open":
    if current is None and not st.session_state.get(f"timer_started_{mid}"):
        st.session_state[f"timer_started_{mid}"] = True  # once: the first case goes on screen, its timer starts
        act(mt.go_to_case, mid, chosen)
        st.rerun()
    at = order.index(chosen)
    nav[1].button("Previous", disabled=at == 0, key="prev_case", on_click=act,
                  args=(mt.go_to_case, mid, order[max(0, at - 1)]))
    nav[2].button("Next case", type="primary", disabled=at == len(order) - 1, key="next_case", on_click=act,
                  args=(mt.go_to_case, mid, order[min(len(order) - 1, at + 1)]))
case = by_item[chosen]

st.subheader(md_escape(f"{case['position']}. {case['police_ref']} – {label(case['stream'])}, "
                       f"police risk {label(case['risk'])}" + (f", DASH {case['dash_score']}"
                                                               if case["dash_score"] else "")))
st.text("Why: " + "; ".join(case["reasons"]) + (f"\nMARAC: {'; '.join(case['marac_flags'])}"
                                               if case["marac_flags"] else ""))
rendered_at = time.monotonic()


@st.fragment(run_every=15 if status == "open" and case["current"] else None)
def timer() -> None:
    """Time on this case against the target; ticks in the browser without re-reading anything."""
    running = status == "open" and case["current"]
    minutes = (case["seconds_spent"] + (time.monotonic() - rendered_at if running else 0)) / 60
    target = view["target_seconds"] / 60
    st.progress(min(1.0, minutes / target) if target else 0.0,
                text=f"{minutes:.0f} of {target:.0f} minutes" + (" – over time" if minutes > target else ""))


timer()

# Widget keys are fixed per case (what the chair typed survives a rerun; the next case starts from its own values)
# and each save passes the version seen when editing began (see `started`), so a colleague's save meanwhile is never
# overwritten; after a conflict the widgets are dropped, so their version is what the boxes then show.
risks = ["high", "medium", "standard", "not_assessed"]
case_widgets = {f"confirmed_risk_{chosen}": case["confirmed_risk"] or case["risk"],
                f"rationale_{chosen}": case["risk_rationale"] or "", f"decisions_{chosen}": case["decisions"]}
case_seen, _ = started(f"case_{chosen}", case["case_version"], case_widgets)


def save_case(item: int, seen: int | None) -> None:
    error = act(mt.save_case, mid, item, expected_version=seen,
                confirmed_risk=st.session_state[f"confirmed_risk_{item}"],
                risk_rationale=st.session_state[f"rationale_{item}"], decisions=st.session_state[f"decisions_{item}"])
    settled(f"case_{item}", [f"confirmed_risk_{item}", f"rationale_{item}", f"decisions_{item}"], error)


with st.form(f"case_{chosen}"):
    st.selectbox("Confirmed risk", risks, index=risks.index(case_widgets[f"confirmed_risk_{chosen}"]),
                 format_func=label, key=f"confirmed_risk_{chosen}")
    st.text_area("Rationale (needed when it differs from the police grade)", value=case["risk_rationale"] or "",
                 key=f"rationale_{chosen}")
    st.multiselect("Decisions", [d.value for d in Decision], default=case["decisions"],
                   format_func=lambda d: mt.DECISION_LABELS[Decision(d)], key=f"decisions_{chosen}")
    st.form_submit_button("Save risk and decisions", on_click=save_case, args=(chosen, case_seen))

# One note per agency, each with its own starting point: only the boxes the user changed are saved.
share_start = {a: started(f"share_{chosen}_{a}", case["shares"].get(a, {}).get("version"),
                          {f"share_{chosen}_{a}": case["shares"].get(a, {}).get("note", "")}) for a in agencies}
with st.form(f"shares_{chosen}"):
    st.caption("What each agency shared")
    notes = {a: st.text_area(md_escape(name), value=case["shares"].get(a, {}).get("note", ""), height=68,
                             key=f"share_{chosen}_{a}") for a, name in agencies.items()}
    if st.form_submit_button("Save shared notes"):
        for a, note in notes.items():
            key = f"share_{chosen}_{a}"
            seen, start = share_start[a]
            if note.strip() == start[key].strip():
                # untouched: never saved (it would undo a colleague's note); if theirs is newer, show it now
                if (case["shares"].get(a) or {}).get("version") != seen:
                    forget(key, [key])
                continue
            settled(key, [key], act(mt.save_share, mid, chosen, a, note, expected_version=seen))
        st.rerun()

st.caption("Actions")
statuses = [s.value for s in ActionStatus]


def change_status(action_id: int, seen: int | None, start: dict) -> None:
    """One interaction: choosing the status saves it, with the note if the user changed it (an untouched note box
    is left out, so it cannot write an older note back)."""
    status_key, note_key = f"status_{action_id}", f"note_{action_id}"
    note = st.session_state.get(note_key)
    error = act(update_action, action_id, expected_version=seen, status=st.session_state[status_key],
                note=None if note is None or note.strip() == start[note_key].strip() else note)
    settled(f"action_{action_id}", [status_key, note_key], error)
    if error is not None and status_key in st.session_state:  # refused for a rule: the status it started from
        st.session_state[status_key] = start[status_key]


for action in case["actions"]:
    row = st.columns([5, 2, 2])
    row[0].text(f"{action['agency']}: {action['description']} (due {action['due_at']:%d/%m/%Y %H:%M})"
                + (f" – {action['owner']}" if action["owner"] else ""))
    action_seen, action_start = started(f"action_{action['id']}", action["version"],
                                        {f"note_{action['id']}": action["note"] or "",
                                         f"status_{action['id']}": action["status"]})
    row[2].text_input("Note", value=action["note"] or "", key=f"note_{action['id']}")
    row[1].selectbox("Status", statuses, index=statuses.index(action["status"]), format_func=label,
                     key=f"status_{action['id']}", on_change=change_status,
                     args=(action["id"], action_seen, action_start))


def add_action(item: int) -> None:
    due = st.session_state["action_due"]
    act(mt.add_case_action, mid, item, agency_id=st.session_state["action_agency"],
        description=st.session_state["action_text"], owner=st.session_state["action_owner"],
        due_at=dt.datetime.combine(due, dt.time(17, 0)) if due else None, now=london_now())


with st.form(f"new_action_{chosen}", clear_on_submit=True):
    cols = st.columns([2, 4, 2])
    cols[0].selectbox("Agency", list(agencies), format_func=agencies.get, key="action_agency")
    cols[1].text_input("Action", key="action_text")
    cols[2].text_input("Named owner (optional)", key="action_owner")
    st.date_input("Due date (leave empty: by the confirmed risk's working hours)", value=None, format="DD/MM/YYYY",
                  key="action_due")
    st.form_submit_button("Add action", on_click=add_action, args=(chosen,))
if view["amendments"]:
    st.caption("Amendments after the meeting")
    st.dataframe(pd.DataFrame(view["amendments"])[["at_utc", "by", "entity", "summary"]], hide_index=True)
