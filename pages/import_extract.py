"""Import: upload a police extract, choose or detect its profile, check it (dry run), import it."""
import logging

import pandas as pd
import streamlit as st

from core.db import session_scope
from core.scope import Refused
from core.settings import get_settings
from dv.import_service import issues_workbook, preview_rows
from dv.importer import INTERRUPTIONS, detect_profiles, import_upload, interruption_message
from dv.notifications import log_export, recent_batches
from dv.profiles import list_profiles
from dv.reading import FileRejected
from pages.common import current_user, enter_page, md_escape
from pages.profile_builder import profile_builder

log = logging.getLogger(__name__)
user = current_user()
enter_page("import")


def _log_export(batch_id, rows):
    with session_scope() as session:
        log_export(session, user, "import_batch", batch_id=batch_id, rows=rows)


st.title("Import")
# the server lets 200 MB through for the GIAS download; a police extract keeps the importer's own cap
upload = st.file_uploader("Police extract (xlsx or csv)", type=["xlsx", "csv"], key="extract_upload",
                          max_upload_size=max(1, get_settings().max_upload_bytes // 2**20))
profile_problems: list[str] = []
profiles = list_profiles(problems=profile_problems)  # a broken profile file is skipped, not a stop for everyone
for problem in profile_problems:
    st.warning(md_escape(problem))
if not profiles:
    st.error("No import profile could be loaded: add one below, or ask an administrator to fix the profile files.")

if upload is not None and not profiles:
    profile_builder(upload.getvalue(), upload.name)
elif upload is not None:
    data = upload.getvalue()
    names = [p.name for p in profiles]
    # Detection opens the workbook once per profile: do it once per uploaded file, not on every rerun
    # (kept in this user's session state, never in a shared cache).
    key = ("detected", upload.file_id, tuple(names))
    if st.session_state.get("detected_key") != key:
        found = detect_profiles(data, upload.name, profiles)
        st.session_state["detected_key"] = key
        st.session_state["detected_name"] = found[0][0].name if found else None
    detected_name = st.session_state["detected_name"]
    default = names.index(detected_name) if detected_name in names else 0
    st.caption(md_escape(f"Detected layout: {detected_name}") if detected_name
               else "No profile matches this layout: choose one, or build one below.")
    choice = st.selectbox("Profile", names, index=default)
    profile = profiles[names.index(choice)]
    try:
        if st.toggle("Preview the first rows as they are in the file", key="preview"):
            st.dataframe(pd.DataFrame(preview_rows(data, upload.name, profile.sheet, profile.encoding)), hide_index=True)
    except FileRejected as exc:
        st.error(md_escape(exc))
    c1, c2 = st.columns(2)
    dry = c1.button("Check (dry run)", key="dry_run")
    real = c2.button("Import", type="primary", key="import")
    if dry or real:
        bar = st.progress(0.0, text="Starting")
        try:
            with session_scope() as session:
                result = import_upload(session, user, data, upload.name, profile, dry_run=dry,
                                       progress=lambda f, m: bar.progress(min(f, 1.0), text=m))
        except FileRejected as exc:
            bar.empty()
            st.error(md_escape(f"Nothing was imported: {exc}"))
        except Refused as exc:
            bar.empty()
            st.error(str(exc))
        except INTERRUPTIONS as exc:  # rolled back: say so plainly (no stack trace, no SQL), and what to do
            bar.empty()
            log.warning("Import of %s interrupted", upload.name, exc_info=True)
            st.error(interruption_message(exc))  # our own fixed wording: nothing from the file or the database
        else:
            bar.empty()
            (st.info if dry else st.success)(
                ("Dry run – nothing was written. " if dry else f"Imported (batch {result.batch_id}). ")
                + f"{result.rows_read} rows read: {result.created} new, {result.updated} updated, "
                f"{result.unchanged} unchanged, {result.duplicates_in_file} duplicates, {result.rejected} rejected.")
            m = st.columns(3)
            m[0].metric("Crime stream", result.crime)
            m[1].metric("Non-crime stream", result.non_crime)
            m[2].metric("Children", result.children)
            if result.errors or result.warnings:
                st.subheader(f"Rows not imported ({result.rejected}) and warnings ({len(result.warnings)})")
                st.dataframe(pd.DataFrame([vars(i) for i in result.errors + result.warnings],
                                          columns=["row", "column", "police_ref", "severity", "message"]),
                             hide_index=True, width="stretch")
                st.download_button("Download the row errors (xlsx)", issues_workbook(result),
                                   file_name=f"row-errors-{upload.name.rsplit('.', 1)[0]}.xlsx",
                                   on_click=_log_export, args=(result.batch_id, len(result.errors)))
    profile_builder(data, upload.name)

st.subheader("Recent imports")
with session_scope() as session:
    batches = recent_batches(session, user)
st.dataframe(pd.DataFrame(batches, columns=["id", "started_at_utc", "file_name", "profile_name", "imported_by",
                                            "rows_read", "created", "updated", "unchanged", "rejected", "crime",
                                            "non_crime", "children"]), hide_index=True, width="stretch")
