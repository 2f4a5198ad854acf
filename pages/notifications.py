"""Notifications: the crime and non-crime streams for a date range, with a detail view."""
import datetime as dt

import pandas as pd
import streamlit as st

from core.db import session_scope
from core.scope import can
from core.timeutil import london_now
from dv.demo import load_demo
from core.audit import record_history
from dv.notifications import (RISKS, has_notifications, list_notifications, log_search, notification_detail,
                              stream_summary)
from pages.common import current_user, enter_page, mark_viewed, md_escape, show_text

user = current_user()
enter_page("notifications")
st.title("Notifications")
today = london_now().date()  # the UK date, not the server's (UTC: yesterday from 00:00 to 01:00 BST)
c1, c2, c3 = st.columns([2, 2, 1])
dates = c1.date_input("Incident dates", (today - dt.timedelta(days=2), today), format="DD/MM/YYYY")
start, end = (dates[0], dates[-1]) if isinstance(dates, (tuple, list)) and dates else (today, today)
risks = c2.multiselect("Risk", RISKS, format_func=lambda r: r.replace("_", " "))
children = c3.selectbox("Children", ["any", "with children", "no children"])
kids = {"any": None, "with children": True, "no children": False}[children]

with session_scope() as session:
    empty = not has_notifications(session, user)
if empty and can(user, "load_demo"):
    st.info("There are no notifications yet. Import the police extract on the Import page, or try DA Daily "
            "with made-up data.")
    if st.button("Load the synthetic demo data set", key="load_demo"):
        with session_scope() as session:
            load_demo(session, user)
        st.rerun()  # outside the transaction: st.rerun() raises, and would roll it back

criteria = {"start": start.isoformat(), "end": end.isoformat(), "risks": sorted(risks), "children": children}
with session_scope() as session:
    if mark_viewed("search", repr(criteria)):  # audited once per distinct search per page visit
        log_search(session, user, **criteria)
    summary = stream_summary(session, user, start, end)
    tabs = st.tabs([f"Crime stream ({summary['crime']['total']})", f"Non-crime stream ({summary['non_crime']['total']})"])
    selected = None
    for tab, stream in zip(tabs, ("crime", "non_crime")):
        with tab:
            s = summary[stream]
            m = st.columns(5)
            m[0].metric("Notifications", s["total"])
            m[1].metric("High risk", s["risk"]["high"])
            m[2].metric("Medium risk", s["risk"]["medium"])
            m[3].metric("With children", s["with_children"])
            m[4].metric("Children", s["children"])
            rows = list_notifications(session, user, start, end, stream=stream, risks=tuple(risks) or None,
                                      with_children=kids)
            frame = pd.DataFrame(rows, columns=["id", "police_ref", "incident_at", "risk", "dash_score", "victim",
                                                "prior_incidents_12m", "children", "offence", "stream_reason"])
            event = st.dataframe(frame, hide_index=True, width="stretch", on_select="rerun",
                                 selection_mode="single-row", key=f"table_{stream}",
                                 column_config={"id": None, "incident_at": st.column_config.DatetimeColumn(
                                     "Incident", format="DD/MM/YYYY HH:mm"),
                                     "prior_incidents_12m": "Earlier incidents (12 m)"})
            if event.selection.rows:
                selected = int(frame.iloc[event.selection.rows[0]]["id"])

    if selected is not None:
        detail = notification_detail(session, user, selected, log_view=mark_viewed("notification", selected))
        if detail is None:
            st.error("That notification is not available to you.")
        else:
            st.divider()
            st.subheader(md_escape(f"{detail['police_ref']} – {detail['stream'].value.replace('_', '-')}"))
            show_text("Why this stream", detail["stream_reason"])
            a, b, c = st.columns(3)
            with a:
                show_text("Incident", f"{detail['incident_at']:%d/%m/%Y %H:%M}")
                show_text("Risk", f"{detail['risk'].value} (DASH {detail['dash_score'] if detail['dash_score'] is not None else '–'})")
                show_text("Earlier incidents of the victim (12 months)", detail["prior_incidents_12m"])
            with b:
                show_text("Offence", f"{detail['offence'] or '–'} {detail['ho_code'] or ''}")
                show_text("Location", f"{detail['location'] or ''} {detail['postcode'] or ''}")
                show_text("Crime reference", detail["crime_ref"] or "–")
            with c:
                flags = [n for n in ("pregnancy", "strangulation", "weapons") if detail[f"flag_{n}"]]
                show_text("Flags", ", ".join(flags + ([detail["flags_other"]] if detail["flags_other"] else [])) or "none")
                show_text("Relationship", detail["relationship"])
                show_text("Officer", detail["officer"])
            show_text("Circumstances", detail["circumstances"])
            st.markdown("**People**")
            st.dataframe(pd.DataFrame(detail["people"], columns=["role", "surname", "forename", "dob", "gender", "address"]),
                         hide_index=True)
            st.markdown("**Children**")
            st.dataframe(pd.DataFrame(detail["children"], columns=["surname", "forename", "dob", "school_name", "present"]),
                         hide_index=True)
            st.markdown("**Earlier incidents (12 months) of anyone in this notification**")
            st.dataframe(pd.DataFrame(detail["earlier"], columns=["police_ref", "incident_at", "stream", "risk", "role",
                                                                  "surname", "forename"]), hide_index=True)
            st.markdown("**Change history**")
            st.dataframe(pd.DataFrame(detail["history"], columns=["changed_at_utc", "batch_id", "field", "old_value",
                                                                  "new_value"]), hide_index=True)
            st.markdown("**Source**")
            st.dataframe(pd.DataFrame(detail["batches"], columns=["id", "file_name", "profile_name", "imported_by",
                                                                  "started_at_utc"]), hide_index=True)
            with st.expander("Who viewed or changed this record"):
                st.dataframe(pd.DataFrame(record_history(session, user, "notification", selected),
                                          columns=["at_utc", "username", "role", "agency", "action", "outcome", "details"]),
                             hide_index=True, width="stretch")
