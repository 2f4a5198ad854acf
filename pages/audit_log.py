"""The audit log (admin): filter by date, user, action and record; export the result."""
import datetime as dt

import pandas as pd
import streamlit as st

from core.audit import AUDIT_COLUMNS, export_events, query_events
from core.db import session_scope
from core.timeutil import london_now
from pages.common import current_user, enter_page, mark_viewed

user = current_user()
enter_page("audit")
st.title("Audit log")
today = london_now().date()  # the UK date, not the server's (UTC: yesterday from 00:00 to 01:00 BST)
c = st.columns(5)
dates = c[0].date_input("Dates (UTC)", (today - dt.timedelta(days=7), today), format="DD/MM/YYYY")
start, end = (dates[0], dates[-1]) if isinstance(dates, (tuple, list)) and dates else (today, today)
username = c[1].text_input("User")
action = c[2].selectbox("What", ["", "login", "login_failed", "view", "search", "import", "export", "change",
                                  "acknowledge", "disclosure", "refused", "retention"])
entity = c[3].selectbox("Record type", ["", "notification", "person", "action", "encompass_alert", "import_batch",
                                         "user", "agency", "audit_event"])
entity_id = c[4].text_input("Record id")
criteria = {"start": dt.datetime.combine(start, dt.time()),
            "end": dt.datetime.combine(end + dt.timedelta(days=1), dt.time()), "username": username or None,
            "action": action or None, "entity": entity or None, "entity_id": entity_id or None}
with session_scope() as session:  # the search is audited once per distinct search per page visit
    rows = query_events(session, user, **criteria, log_view=mark_viewed("search", repr(criteria)))
st.caption(f"{len(rows)} events (newest first; at most 5,000)")
st.dataframe(pd.DataFrame(rows, columns=list(AUDIT_COLUMNS)), hide_index=True, width="stretch")
if rows and st.button("Prepare an export (xlsx)", key="prepare_export"):
    with session_scope() as session:
        st.session_state["audit_export"] = export_events(session, user, rows)
if data := st.session_state.get("audit_export"):
    st.download_button("Download the audit log export", data, file_name=f"audit-{start:%Y%m%d}-{end:%Y%m%d}.xlsx")
