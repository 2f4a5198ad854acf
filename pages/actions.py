"""Actions (coordinator): every agency's actions, overdue first; agree a new action on a notification."""
import datetime as dt

import pandas as pd
import streamlit as st

from core.accounts import list_agencies
from core.db import session_scope
from core.scope import Refused
from dv.notifications import find_notification
from meetings.actions import create_action, list_actions
from pages.common import current_user, enter_page, label, mark_viewed

user = current_user()
enter_page("actions")
st.title("Actions")
with session_scope() as session:
    agencies = {a["id"]: a["name"] for a in list_agencies(session, user)}
    agency = st.selectbox("Agency", [None, *agencies], format_func=lambda i: "All agencies" if i is None else agencies[i])
    # a list of case records: audited once per page visit and agency chosen
    actions = list_actions(session, user, agency_id=agency, log_view=mark_viewed("action_list", agency))
frame = pd.DataFrame(actions, columns=["bucket", "due_at", "agency", "status", "description", "police_ref", "owner",
                                       "note"])
frame["bucket"] = frame["bucket"].map(label)
frame["status"] = frame["status"].map(label)
st.dataframe(frame, hide_index=True, width="stretch")

with st.expander("Agree a new action"):
    with st.form("new_action", clear_on_submit=True):
        ref = st.text_input("Police reference")
        who = st.selectbox("Agency", list(agencies), format_func=agencies.get, key="new_action_agency")
        description = st.text_area("Action")
        owner = st.text_input("Named owner (optional)")
        due = st.date_input("Due date (leave empty: by the notification's risk, in working hours)", value=None,
                            format="DD/MM/YYYY")
        if st.form_submit_button("Add action"):
            try:
                with session_scope() as session:
                    notification = find_notification(session, user, ref)
                    if notification is None:
                        raise ValueError(f"No notification {ref}.")
                    create_action(session, user, notification_id=notification, agency_id=who, description=description,
                                  owner=owner or None,
                                  due_at=dt.datetime.combine(due, dt.time(17, 0)) if due else None)
            except (ValueError, Refused) as exc:
                st.error(str(exc))
            else:
                st.rerun()
