"""Operation Encompass alerts for a school's key adult: only this school's pupils, only the disclosed fields."""
import streamlit as st

from core.db import session_scope
from core.scope import Refused
from dv.encompass import acknowledge_alert, list_alerts, record_disclosure
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
        st.subheader(md_escape(d.get("child", "A pupil")))
        for label, key in (("Date of birth", "child_dob"), ("Police reference", "police_ref"),
                           ("Date and time", "incident_at"), ("Place", "place"), ("Child present", "present"),
                           ("What happened", "circumstances"), ("Risk", "risk")):
            if key in d:
                st.caption(label)
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
