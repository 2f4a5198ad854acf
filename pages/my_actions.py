"""My actions: an agency representative's own agency's actions, overdue first; update status and note."""
import pandas as pd
import streamlit as st

from core.db import session_scope
from core.scope import Refused
from meetings.actions import Conflict, list_actions, update_action
from meetings.models import ActionStatus
from pages.common import current_user, enter_page, label, md_escape

user = current_user()
enter_page("my_actions")
st.title("My actions")
with session_scope() as session:
    actions = list_actions(session, user)
if not actions:
    st.info("Your agency has no actions.")
    st.stop()
frame = pd.DataFrame(actions)
frame["status"] = frame["status"].map(label)
frame["risk"] = frame["risk"].map(label)
st.dataframe(
    frame[["overdue", "due_at", "status", "description", "police_ref", "incident_at", "risk", "owner", "note"]],
    hide_index=True, width="stretch",
    column_config={"due_at": st.column_config.DatetimeColumn("Due", format="DD/MM/YYYY HH:mm"),
                   "incident_at": st.column_config.DatetimeColumn("Incident", format="DD/MM/YYYY HH:mm")})
by_id = {a["id"]: a for a in actions}
chosen = st.selectbox("Action to update", list(by_id), index=None, placeholder="Choose an action",
                      format_func=lambda i: f"{by_id[i]['police_ref']}: {by_id[i]['description'][:80]}")
if chosen is None:
    st.stop()
action = by_id[chosen]
st.subheader(md_escape(f"Action on {action['police_ref']}"))
st.text(action["description"])
statuses = [s.value for s in ActionStatus]
with st.form(f"update_{action['id']}"):
    status = st.selectbox("Status", statuses, index=statuses.index(action["status"].value),
                          format_func=lambda s: s.replace("_", " "))
    note = st.text_area("Note (needed for done, not possible and not done)", value=action["note"] or "")
    saved = st.form_submit_button("Save")
if saved:
    try:
        with session_scope() as session:
            update_action(session, user, action["id"], expected_version=action["version"], status=status, note=note)
    except Conflict as exc:
        st.error(str(exc))
        st.text(f"Now: {exc.current['status'].value.replace('_', ' ')} – {exc.current['note'] or ''}")
    except (ValueError, Refused) as exc:
        st.error(str(exc))
    else:
        st.success("Saved.")
        st.rerun()
