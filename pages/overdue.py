"""Overdue (coordinator): per agency, open actions overdue and due today, then the list to chase."""
import pandas as pd
import streamlit as st

from core.db import session_scope
from meetings.actions import chase_list, overdue_by_agency
from pages.common import current_user, enter_page, label, mark_viewed

user = current_user()
enter_page("overdue")
st.title("Overdue actions")
with session_scope() as session:
    counts = overdue_by_agency(session, user)
    agencies = {c["agency_id"]: c["agency"] for c in counts}
    st.dataframe(pd.DataFrame(counts, columns=["agency", "overdue", "due_today"]), hide_index=True,
                 column_config={"due_today": "due today"})
    agency = st.selectbox("Agency", [None, *agencies], format_func=lambda i: "All agencies" if i is None else agencies[i],
                          key="overdue_agency")
    # a list of case records: audited once per page visit and agency chosen
    rows = chase_list(session, user, agency_id=agency, log_view=mark_viewed("chase_list", agency))
if not rows:
    st.success("Nothing overdue or due today.")
    st.stop()
frame = pd.DataFrame(rows)
frame["status"] = frame["status"].map(label)
frame["when"] = frame["bucket"].map(label)
st.dataframe(frame[["when", "due_at", "agency", "police_ref", "description", "owner", "status"]], hide_index=True,
             width="stretch",
             column_config={"due_at": st.column_config.DatetimeColumn("Due", format="DD/MM/YYYY HH:mm")})
