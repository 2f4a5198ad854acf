"""Dashboard (coordinator, manager): the hub's figures for a date range, charted, each chart's numbers one toggle
away, and a formula-safe xlsx export. Aggregates only: no names, no police references. The figures come from
``meetings.dashboard`` (tested without Streamlit)."""
import datetime as dt

import pandas as pd
import streamlit as st

from core.db import read_scope, session_scope
from core.scope import Refused
from core.settings import get_settings
from core.timeutil import london_now
from meetings.dashboard import dashboard, export_dashboard, forces, record_view, tables
from pages.common import current_user, enter_page, label, mark_viewed, md_escape

user = current_user()
enter_page("dashboard")
st.title("Dashboard")

today = london_now().date()
c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
picked = c1.date_input("Date range", value=(today - dt.timedelta(days=364), today), max_value=today,
                       format="DD/MM/YYYY", key="dash_range")
bucket = c2.radio("Buckets", ["month", "week"], format_func=lambda b: "Monthly" if b == "month" else "Weekly",
                  horizontal=True, key="dash_bucket")
with session_scope() as session:
    force_names = forces(session, user)
force = c3.selectbox("Force area", [None, *force_names], format_func=lambda f: "All" if f is None else f,
                     key="dash_force")
district = c4.text_input("Postcode district", placeholder="e.g. NG5", max_chars=8, key="dash_district").strip() or None
if not isinstance(picked, (tuple, list)) or len(picked) != 2:
    st.info("Choose the last day of the range.")
    st.stop()
start, end = picked

params = (start.isoformat(), end.isoformat(), bucket, force, district)
try:
    with session_scope() as session:  # checked (a refusal is audited), the first view audited: milliseconds
        record_view(session, user, start, end, bucket, district, force=force,
                    audited=mark_viewed("dashboard", params))
    # the figures in a read-only session: on SQLite it takes no lock, so saves and imports never wait for them
    with read_scope() as session:
        figures = dashboard(session, user, start, end, bucket, district, force=force, record_view=False)
except Refused as exc:
    st.error(str(exc))
    st.stop()
TABLES = tables(figures)
nt, rk, ch, rp, mt, ac, en = (figures[k] for k in ("notifications", "risk", "children", "repeats", "meetings",
                                                    "actions", "encompass"))
# the force comes from an extract and the district is typed: escaped, as st.caption renders Markdown
st.caption(md_escape(f"{start:%d/%m/%Y} to {end:%d/%m/%Y} ({figures['range']['days']} days), "
                     f"{'monthly' if bucket == 'month' else 'weekly'} buckets"
                     f"{', force: ' + force if force else ''}"
                     f"{', district: ' + figures['range']['district'] if district else ''}."))


def numbers(name: str, key: str) -> None:
    """The chart's numbers, one click away (a toggle: nothing is built while it is off)."""
    if st.toggle("Show the numbers", key=f"dash_nums_{key}"):
        t = TABLES[name]
        st.dataframe(pd.DataFrame(t["rows"], columns=t["headers"]), hide_index=True, width="stretch")


def frame(rows: list[dict], index: str, columns: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[index, *columns]) if rows else pd.DataFrame(columns=[index, *columns])
    return df.set_index(index).rename(columns=columns)


def chart(df: pd.DataFrame, mark: str, *, stack: bool = True, horizontal: bool = False) -> None:
    """A line or bar chart of ``df`` (index: the categories, columns: the series) as a plain Vega-Lite spec.
    ``st.line_chart``/``st.bar_chart`` build theirs with Altair, which validates every spec against the Vega-Lite
    schema: about 70 ms a line chart, a sixth of the page's render for a year (bench/dashboard_bench.py); this
    takes 3 ms. ``stack=False``: bars side by side."""
    data = df.reset_index()
    category, series = data.columns[0], [str(c) for c in data.columns[1:]]
    cat = {"field": category, "type": "nominal", "sort": None, "title": None}
    value = {"field": "value", "type": "quantitative", "title": None}
    if mark == "bar" and not stack:
        value["stack"] = None
    enc = {"y": cat, "x": value} if horizontal else {"x": cat, "y": value}
    enc["color"] = {"field": "series", "type": "nominal", "sort": series, "title": None}
    if mark == "bar" and not stack:
        enc["yOffset" if horizontal else "xOffset"] = {"field": "series", "sort": series}
    enc["tooltip"] = [{"field": category, "type": "nominal"}, {"field": "series", "type": "nominal"},
                      {"field": "value", "type": "quantitative"}]
    st.vega_lite_chart(data, {"transform": [{"fold": series, "as": ["series", "value"]}],
                              "mark": {"type": mark, "tooltip": True}, "encoding": enc}, width="stretch")


def fmt(v, suffix: str = "") -> str:
    return "–" if v is None else f"{v:,}{suffix}" if isinstance(v, int) else f"{v}{suffix}"


# -- notifications ---------------------------------------------------------------------------------------------
st.header("Notifications")
m = st.columns(5)
m[0].metric("Notifications", fmt(nt["total"]))
m[1].metric("Crime", fmt(nt["crime_pct"], " %"))
m[2].metric("Daily average", fmt(nt["daily_average"]))
m[3].metric("Peak day", fmt(nt["peak_day_count"]), nt["peak_day"] or None, delta_color="off")
m[4].metric("Forecast per month", fmt(nt["forecast_per_month"]))
cols = {"crime": "crime", "non_crime": "non-crime", "total": "total"}
if nt["forecast_per_month"]:
    cols["forecast"] = "forecast"
chart(frame(nt["by_bucket"], "bucket", cols), "line")
numbers("Notifications", "notifications")

st.header("Risk and children")
m = st.columns(4)
high = next((r for r in rk["rows"] if r["risk"] == "high"), None)
m[0].metric("High risk", fmt(high["pct"] if high else None, " %"))
m[1].metric("With children", fmt(ch["with_children_pct"], " %"))
m[2].metric("Children involved", fmt(ch["children"]))
m[3].metric("With a child under 5", fmt(ch["with_under5_pct"], " %"))
left, right = st.columns(2)
with left:
    risk_rows = [dict(r, risk=label(r["risk"])) for r in rk["rows"]]
    chart(frame(risk_rows, "risk", {"crime": "crime", "non_crime": "non-crime"}), "bar")
    numbers("Risk", "risk")
with right:
    chart(frame(ch["by_bucket"], "bucket", {"with_children": "with children", "with_under5": "with a child under 5"}),
          "bar", stack=False)
    numbers("Children", "children")

st.header("Repeat victims")
m = st.columns(3)
m[0].metric("Repeat victims", fmt(rp["repeat_pct"], " %"), f"{rp['repeat']:,} notifications", delta_color="off")
m[1].metric("Escalation (3rd+ in 12 months)", fmt(rp["escalation"]))
m[2].metric("MARAC repeat", fmt(rp["marac_repeat"]))
chart(frame(rp["by_bucket"], "bucket", {"repeat": "repeat victim", "escalation": "escalation",
                                         "marac_repeat": "MARAC repeat"}), "line")
numbers("Repeats", "repeats")

st.header("The meeting")
m = st.columns(4)
m[0].metric("Meetings held", fmt(mt["meetings"]))
m[1].metric("Cases per meeting", fmt(mt["cases_per_meeting"]))
m[2].metric("Median minutes per case", fmt(mt["median_minutes_per_case"]))
m[3].metric("Progressed to children's social care", fmt(mt["csc_pct"], " %"))
left, right = st.columns(2)
with left:
    chart(frame(mt["by_bucket"], "bucket", {"cases": "cases discussed"}), "bar")
    numbers("Meetings", "meetings")
with right:
    chart(frame([dict(d, decision=label(d["decision"])) for d in mt["decisions"]], "decision", {"cases": "cases"}),
          "bar", horizontal=True)
    numbers("Decisions", "decisions")
st.subheader("Attendance by agency")
chart(frame(mt["attendance"], "agency", {"rate_pct": "attendance %"}), "bar", horizontal=True)
numbers("Attendance", "attendance")

st.header("Actions")
t = ac["total"]
m = st.columns(5)
m[0].metric("Agreed", fmt(t["agreed"]))
m[1].metric("Completed on time", fmt(t["on_time_pct"], " %"))
m[2].metric("Overdue now", fmt(t["overdue"]))
m[3].metric("Not done / not possible", f"{t['not_done']:,} / {t['not_possible']:,}")
m[4].metric("Median days to complete", fmt(t["median_days"]))
chart(frame(ac["rows"], "agency", {"on_time": "on time", "late": "late", "overdue": "overdue now",
                                   "not_done": "not done", "not_possible": "not possible"}), "bar", horizontal=True)
numbers("Actions", "actions")

st.header("Operation Encompass")
m = st.columns(5)
m[0].metric("Alerts", fmt(en["alerts"]))
m[1].metric("Before the deadline", fmt(en["on_time_pct"], " %"))
m[2].metric("Acknowledged", fmt(en["acknowledged_pct"], " %"))
m[3].metric("Median hours to notification", fmt(en["median_hours_to_notification"]))
m[4].metric("School to resolve", fmt(en["unresolved"]))
chart(frame(en["by_bucket"], "bucket", {"alerts": "alerts", "on_time": "before the deadline"}), "line")
numbers("Encompass", "encompass")

st.header("By force area and district")
numbers("Areas", "areas")

# -- export ------------------------------------------------------------------------------------------------------
st.divider()
below = get_settings().suppress_below
suppress = st.checkbox(f"Suppress small numbers (for outside the hub): counts under {below} shown as <{below}",
                       key="dash_suppress")
if st.button("Export (xlsx)", key="dash_export"):
    with session_scope() as session:
        st.session_state["dash_xlsx"] = (params + (suppress,), export_dashboard(session, user, figures, suppress=suppress))
ready = st.session_state.get("dash_xlsx")
if ready and ready[0] == params + (suppress,):
    st.download_button("Download the workbook", ready[1], file_name=f"da-daily-dashboard-{start}-{end}.xlsx",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="dash_download")
