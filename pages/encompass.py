"""Encompass (coordinator): alerts due next, overdue, waiting for their school to be resolved, escalated,
acknowledged and withdrawn, with the last 28 days' timeliness. Resolving a school is a choice from the candidates."""
import pandas as pd
import streamlit as st

from core.db import session_scope
from core.scope import Refused
from dv.encompass import Conflict, encompass_overview, resolve_alert
from pages.common import current_user, enter_page, forget_version, label, mark_viewed, seen_version

user = current_user()
enter_page("encompass")
st.title("Encompass")
with session_scope() as session:  # the lists name children: the view is audited once per page visit
    view = encompass_overview(session, user, log_view=mark_viewed("encompass_overview", None))
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
                f"Due next ({len(view['due_next'])})", f"Escalated ({len(view['escalated'])})", "Acknowledged",
                f"Withdrawn ({len(view['withdrawn'])})"])
with tabs[0]:
    table(view["to_resolve"])
    by_id = {a["id"]: a for a in view["to_resolve"]}
    # The alert as the coordinator opened it stays choosable when a colleague resolves it meanwhile (it leaves
    # this list), so their submit is answered with the conflict instead of the form silently vanishing.
    opened = st.session_state.get("alert_opened")
    if opened is not None and opened["id"] == st.session_state.get("alert_to_resolve") and opened["id"] not in by_id:
        by_id[opened["id"]] = opened
    chosen = st.selectbox("Alert to resolve", list(by_id), index=None, placeholder="Choose an alert",
                          key="alert_to_resolve",  # keyed: the choice survives the list changing (an import)
                          format_func=lambda i: f"{by_id[i]['police_ref']}: {by_id[i]['forename'] or ''} "
                                                f"{by_id[i]['surname'] or ''} – typed “{by_id[i]['school_typed'] or ''}”")
    if chosen is not None:
        alert = by_id[chosen]
        if opened is None or opened["id"] != chosen:
            st.session_state["alert_opened"] = alert
        # the versions the coordinator was shown (the list is re-read on every rerun, the click's own included)
        seen = seen_version(f"alert_{chosen}", alert["version"])
        alias_seen = seen_version(f"alert_alias_{chosen}", alert.get("alias_version"))
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
                        resolve_alert(session, user, chosen, urn=str(urn or "").strip(), expected_version=seen,
                                      remember=remember, alias_version=alias_seen)
                except (ValueError, Refused) as exc:  # nothing saved: the versions seen still stand
                    st.session_state["encompass_message"] = ("error", str(exc))
                    done = False
                except Conflict as exc:  # shown; the alert is opened afresh (as it is now) when chosen again
                    st.session_state["encompass_message"] = ("error", str(exc))
                    done = True
                else:
                    st.session_state["encompass_message"] = ("ok", "Resolved: the alert is queued for its setting.")
                    done = True
                if done:
                    forget_version(f"alert_{chosen}")
                    forget_version(f"alert_alias_{chosen}")
                    st.session_state.pop("alert_opened", None)
                    st.session_state.pop("alert_to_resolve", None)
                st.rerun()
with tabs[1]:
    table(view["overdue"])
with tabs[2]:
    table(view["due_next"])
with tabs[3]:
    table(view["escalated"])
with tabs[4]:
    table(view["acknowledged"])
with tabs[5]:
    st.caption("Taken out of a setting's view because a later extract moved the child to another setting (the new "
               "setting has its own alert) or no longer lists the child. Where the reason says the setting had "
               "already been sent or shown it, tell that setting to disregard it.")
    if view["withdrawn"]:
        frame = pd.DataFrame(view["withdrawn"])
        frame["child"] = frame["surname"].fillna("") + ", " + frame["forename"].fillna("")
        frame["school"] = frame["school_name"].fillna(frame["school_urn"]).fillna("")
        st.dataframe(frame[["police_ref", "child", "school", "withdrawn_at_utc", "withdrawn_why"]], hide_index=True,
                     width="stretch", column_config={"withdrawn_at_utc": "withdrawn (UTC)", "withdrawn_why": "why"})
    else:
        st.caption("None.")
