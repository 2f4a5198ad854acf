"""My actions: an agency representative's own agency's actions, overdue first, then due today, then the rest;
update status, note and named owner; the case context the meeting recorded as shared, and the action's history."""
import pandas as pd
import streamlit as st

from core.db import session_scope
from core.scope import Refused
from meetings.actions import (
    Conflict,
    action_context,
    action_history,
    list_actions,
    update_action,
)
from meetings.meeting import DECISION_LABELS
from meetings.models import ActionStatus, Decision
from pages.common import (
    current_user,
    enter_page,
    forget_version,
    label,
    mark_viewed,
    md_escape,
    seen_version,
)

user = current_user()
enter_page("my_actions")
st.title("My actions")
show_closed = st.toggle("Show completed actions too", key="show_closed")
with session_scope() as session:
    # a list of case records: audited once per page visit and filter
    actions = list_actions(session, user, include_closed=show_closed, limit=300,
                           log_view=mark_viewed("action_list", show_closed))
if conflict := st.session_state.pop("action_conflict", None):
    st.error(conflict[0])
    st.text(conflict[1])
if refused := st.session_state.pop("action_refused", None):
    st.error(refused)
if saved := st.session_state.pop("action_saved", None):
    st.success(saved)
if not actions:
    st.info("Your agency has no open actions.")
    st.stop()
frame = pd.DataFrame(actions)
frame["when"] = frame["bucket"].map(label)
frame["status"] = frame["status"].map(label)
frame["risk"] = frame["risk"].map(label)
st.dataframe(
    frame[["when", "due_at", "status", "description", "police_ref", "incident_at", "risk", "owner", "note"]],
    hide_index=True, width="stretch",
    column_config={"when": st.column_config.TextColumn("when", width=80),
                   "due_at": st.column_config.DatetimeColumn("Due", format="DD/MM/YYYY HH:mm", width=120),
                   "status": st.column_config.TextColumn("status", width=90),
                   "description": st.column_config.TextColumn("description", width=300),
                   "police_ref": st.column_config.TextColumn("police ref", width=120),
                   "incident_at": st.column_config.DatetimeColumn("Incident", format="DD/MM/YYYY HH:mm", width=120),
                   "risk": st.column_config.TextColumn("risk", width=90),
                   "owner": st.column_config.TextColumn("owner", width=120),
                   "note": st.column_config.TextColumn("note", width=250)})
by_id = {a["id"]: a for a in actions}
# Keyed: the list changes under the user (the meeting adds an action for the agency; a colleague closes one), and an
# unkeyed box would then be a new widget, dropping the choice and what was being typed.
chosen = st.selectbox("Action to update", list(by_id), index=None, placeholder="Choose an action", key="chosen_action",
                      format_func=lambda i: f"{label(by_id[i]['bucket'])}: {by_id[i]['police_ref']} – "
                                            f"{by_id[i]['description'][:80]}")
if chosen is None:
    st.stop()
with session_scope() as session:
    context = action_context(session, user, chosen, log_view=mark_viewed("action", chosen))
    history = action_history(session, user, chosen)
if context is None:
    st.stop()
action = context["action"]
st.subheader(md_escape(f"Action on {action['police_ref']}"))  # an extract's text: never Markdown
st.text(action["description"])
facts = [f"Incident {action['incident_at']:%d/%m/%Y %H:%M}, {label(action['stream'])}, police risk "
         f"{label(action['risk'])}"]
if context["confirmed_risk"]:
    facts.append(f"Confirmed risk at the meeting of {context['meeting_date']:%d/%m/%Y}: {label(context['confirmed_risk'])}")
if context["decisions"]:
    facts.append("Decisions: " + "; ".join(DECISION_LABELS[Decision(d)] for d in context["decisions"]))
st.text("\n".join(facts))
for share in context["shared"]:
    st.caption(md_escape(f"Shared by {share['agency']}"))
    st.text(share["note"])
statuses = [s.value for s in ActionStatus]
version_key = f"action_{action['id']}"
# Keys fixed per action: what the user typed survives a rerun, and the version they started from is kept.
expected = seen_version(version_key, action["version"])


def save(action_id: int, expected: int | None, version_key: str) -> None:
    """Runs before the page does (a callback), so the page then shows the list as saved in one run, not two."""
    forget_version(version_key)
    try:
        with session_scope() as session:
            update_action(session, current_user(), action_id, expected_version=expected,
                          status=st.session_state[f"status_{action_id}"],
                          note=st.session_state[f"note_{action_id}"], owner=st.session_state[f"owner_{action_id}"])
    except Conflict as exc:
        for field in ("status", "note", "owner"):  # show the stored values from now on
            st.session_state.pop(f"{field}_{action_id}", None)
        now = exc.current
        st.session_state["action_conflict"] = (str(exc), f"Now: {label(now['status'])} – {now['note'] or ''} "
                                                         f"(owner {now['owner'] or 'none'})")
    except (ValueError, Refused) as exc:
        st.session_state["action_refused"] = str(exc)
    else:
        st.session_state["action_saved"] = "Saved."


with st.form(f"update_{action['id']}"):
    st.selectbox("Status", statuses, index=statuses.index(ActionStatus(action["status"]).value),
                 format_func=label, key=f"status_{action['id']}")
    st.text_area("Note (needed for done, not possible and not done)", value=action["note"] or "",
                 key=f"note_{action['id']}")
    st.text_input("Named owner", value=action["owner"] or "", key=f"owner_{action['id']}")
    st.form_submit_button("Save", on_click=save, args=(action["id"], expected, version_key))
if history:
    st.caption("History")
    st.dataframe(pd.DataFrame(history)[["changed_at_utc", "by", "field", "old_value", "new_value"]],
                 hide_index=True, column_config={"changed_at_utc": st.column_config.DatetimeColumn("when (UTC)", width=160), "by": st.column_config.TextColumn("by", width=150), "field": st.column_config.TextColumn("field", width=90), "old_value": st.column_config.TextColumn("old value", width=250), "new_value": st.column_config.TextColumn("new value", width=250)})
