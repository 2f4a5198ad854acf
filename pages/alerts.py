"""Operation Encompass alerts for a school's key adult: only this school's pupils, only the disclosed fields."""
import streamlit as st

from core.db import session_scope
from core.scope import Refused
from dv.encompass import ALERT_FIELDS, FIELD_LABELS, acknowledge_alert, list_alerts, record_disclosure
from pages.common import current_user, enter_page, mark_viewed, md_escape

user = current_user()
enter_page("alerts")
st.title("Operation Encompass alerts")
with session_scope() as session:
    alerts = list_alerts(session, user)
    for alert in alerts:
        if mark_viewed("encompass_alert", alert["id"]):
            record_disclosure(session, user, alert["id"])
if not alerts:
    st.info("There are no alerts for your school.")
for alert in alerts:
    with st.container(border=True):
        d = alert["disclosed"]
        st.subheader(md_escape(d.get("child") or "A pupil"))
        if alert["due_at"]:
            st.caption(f"To be read by {alert['due_at']:%H:%M on %A %d/%m/%Y}")
        for key in ALERT_FIELDS[1:]:  # exactly the fields that were disclosed, as plain text
            if d.get(key) is not None:
                st.caption(FIELD_LABELS[key])
                st.text(str(d[key]))
        if alert["status"].value == "acknowledged":
            st.success(f"Acknowledged {alert['acknowledged_at_utc']:%d/%m/%Y %H:%M} (UTC)")
        elif st.button("Acknowledge", key=f"ack_{alert['id']}"):
            try:
                with session_scope() as session:
                    acknowledge_alert(session, user, alert["id"])
            except Refused as exc:
                st.error(str(exc))
            else:
                st.rerun()
