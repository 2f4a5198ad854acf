"""Encompass (coordinator): alerts due next, overdue, waiting for their school to be resolved, escalated and
acknowledged, with the last 28 days' timeliness. Resolving a school is a choice from the candidates."""
import pandas as pd
import streamlit as st

from core.db import session_scope
from core.scope import Refused
from dv.encompass import Conflict, encompass_overview, resolve_alert
from pages.common import current_user, enter_page, label

user = current_user()
enter_page("encompass")
st.title("Encompass")
with session_scope() as session:
    view = encompass_overview(session, user)
if message := st.session_state.pop("encompass_message", None):
    (st.error if message[0] == "error" else st.success)(message[1])

figures = view["figures"]
cols = st.columns(5)
cols[0].metric("Alerts (28 days)", figures["alerts"])
cols[1].metric("Notified before the deadline", "–" if figures["notified_on_time_pct"] is None
               else f"{figures['notified_on_time_pct']}%")
cols[2].metric("Acknowledged", "–" if figures["acknowledged_pct"] is None else f"{figures['acknowledged_pct']}%")
cols[3].metric("Median hours to notification", "–" if figures["median_hours_to_notification"] is None
               else figures["median_hours_to_notification"])
cols[4].metric("To resolve", len(view["to_resolve"]))

COLUMNS = ["police_ref", "child", "school", "due_at", "status", "notified_at_utc", "acknowledged_at_utc"]


def table(rows: list[dict]) -> None:
    if not rows:
        st.caption("None.")
        return
    frame = pd.DataFrame(rows)
    frame["child"] = frame["surname"].fillna("") + ", " + frame["forename"].fillna("")
    frame["school"] = frame["school_name"].fillna(frame["school_typed"]).fillna("")
    frame["status"] = frame["status"].map(label)
    st.dataframe(frame[COLUMNS], hide_index=True, width="stretch",
                 column_config={"due_at": st.column_config.DatetimeColumn("Due", format="DD/MM/YYYY HH:mm")})


tabs = st.tabs([f"To resolve ({len(view['to_resolve'])})", f"Overdue ({len(view['overdue'])})",
                f"Due next ({len(view['due_next'])})", f"Escalated ({len(view['escalated'])})", "Acknowledged"])
with tabs[0]:
    table(view["to_resolve"])
    by_id = {a["id"]: a for a in view["to_resolve"]}
    chosen = st.selectbox("Alert to resolve", list(by_id), index=None, placeholder="Choose an alert",
                          key="alert_to_resolve",  # keyed: the choice survives the list changing (an import)
                          format_func=lambda i: f"{by_id[i]['police_ref']}: {by_id[i]['forename'] or ''} "
                                                f"{by_id[i]['surname'] or ''} – typed “{by_id[i]['school_typed'] or ''}”")
    if chosen is not None:
        alert = by_id[chosen]
        found = alert.get("candidates") or {}
        st.text(f"Why it needs you: {found.get('why') or 'not certain'}")
        candidates = {c["urn"]: c for c in found.get("candidates", [])}
        with st.form(f"resolve_{chosen}"):
            urn = st.selectbox("Setting", list(candidates), index=None, accept_new_options=True,
                               placeholder="Choose a candidate or type a URN",
                               format_func=lambda u: f"{candidates[u]['name']} ({u}, {candidates[u].get('la') or ''},"
                                                     f" {candidates[u].get('status') or ''}) – "
                                                     f"{candidates[u].get('why') or ''}" if u in candidates else u)
            remember = st.checkbox("Remember this spelling for next time", value=True)
            if st.form_submit_button("Resolve"):
                try:
                    with session_scope() as session:
                        resolve_alert(session, user, chosen, urn=str(urn or "").strip(),
                                      expected_version=alert["version"], remember=remember)
                except (ValueError, Refused, Conflict) as exc:
                    st.session_state["encompass_message"] = ("error", str(exc))
                else:
                    st.session_state["encompass_message"] = ("ok", "Resolved: the alert is queued for its setting.")
                st.rerun()
with tabs[1]:
    table(view["overdue"])
with tabs[2]:
    table(view["due_next"])
with tabs[3]:
    table(view["escalated"])
with tabs[4]:
    table(view["acknowledged"])
