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


def act(fn, *args, **kwargs) -> None:
    """One change, one transaction; a refusal, a broken rule or a colleague's newer save is shown, not raised.
    Most changes run as widget callbacks, before the page does, so the page then shows them in one run, not two
    (under load each run costs the server and every browser); the user is re-read for each change."""
    try:
        with session_scope() as session:
            fn(session, current_user(), *args, **kwargs)
    except (ValueError, Refused, mt.Conflict, ActionConflict) as exc:
        st.session_state["meeting_error"] = str(exc)


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
    chair = st.text_input("Chair", value=user.display_name, key="chair")
    if st.button("Open the meeting", type="primary", key="open_meeting"):
        act(mt.open_meeting, mid, chair=chair, expected_version=meeting["version"])
        st.rerun()
    st.stop()

st.caption(f"Chair: {meeting['chair']} – meeting {status}" + (" (locked: changes are recorded as amendments)"
                                                                if status == "closed" else ""))
top = st.columns(3)
if status == "open" and top[0].button("Close the meeting", key="close_meeting"):
    act(mt.close_meeting, mid, expected_version=meeting["version"])
    st.rerun()
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
# and each save passes the version seen when editing began, so a colleague's save meanwhile is never overwritten.
risks = ["high", "medium", "standard", "not_assessed"]
case_seen = seen_version(f"case_{chosen}", case["case_version"])


def save_case(item: int, seen: int | None) -> None:
    forget_version(f"case_{item}")
    act(mt.save_case, mid, item, expected_version=seen, confirmed_risk=st.session_state[f"confirmed_risk_{item}"],
        risk_rationale=st.session_state[f"rationale_{item}"], decisions=st.session_state[f"decisions_{item}"])


with st.form(f"case_{chosen}"):
    st.selectbox("Confirmed risk", risks, index=risks.index(case["confirmed_risk"] or case["risk"]),
                 format_func=label, key=f"confirmed_risk_{chosen}")
    st.text_area("Rationale (needed when it differs from the police grade)", value=case["risk_rationale"] or "",
                 key=f"rationale_{chosen}")
    st.multiselect("Decisions", [d.value for d in Decision], default=case["decisions"],
                   format_func=lambda d: mt.DECISION_LABELS[Decision(d)], key=f"decisions_{chosen}")
    st.form_submit_button("Save risk and decisions", on_click=save_case, args=(chosen, case_seen))

share_seen = {a: seen_version(f"share_{chosen}_{a}", case["shares"].get(a, {}).get("version")) for a in agencies}
with st.form(f"shares_{chosen}"):
    st.caption("What each agency shared")
    notes = {a: st.text_area(name, value=case["shares"].get(a, {}).get("note", ""), height=68,
                             key=f"share_{chosen}_{a}") for a, name in agencies.items()}
    if st.form_submit_button("Save shared notes"):
        for a, note in notes.items():
            old = case["shares"].get(a)
            forget_version(f"share_{chosen}_{a}")
            if note.strip() != (old["note"] if old else "") or share_seen[a] != (old["version"] if old else None):
                act(mt.save_share, mid, chosen, a, note, expected_version=share_seen[a])
        st.rerun()

st.caption("Actions")
statuses = [s.value for s in ActionStatus]


def change_status(action_id: int, seen: int | None) -> None:
    """One interaction: choosing the status saves it (with the note as typed)."""
    forget_version(f"action_{action_id}")
    act(update_action, action_id, expected_version=seen, status=st.session_state[f"status_{action_id}"],
        note=st.session_state.get(f"note_{action_id}"))
    if "meeting_error" in st.session_state:  # refused: the box shows the stored status again
        st.session_state.pop(f"status_{action_id}", None)


for action in case["actions"]:
    row = st.columns([5, 2, 2])
    row[0].text(f"{action['agency']}: {action['description']} (due {action['due_at']:%d/%m/%Y %H:%M})"
                + (f" – {action['owner']}" if action["owner"] else ""))
    action_seen = seen_version(f"action_{action['id']}", action["version"])
    row[2].text_input("Note", value=action["note"] or "", key=f"note_{action['id']}")
    row[1].selectbox("Status", statuses, index=statuses.index(action["status"]), format_func=label,
                     key=f"status_{action['id']}", on_change=change_status, args=(action["id"], action_seen))


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
