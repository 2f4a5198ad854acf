"""Schools and key adults: import the GIAS establishments file, find a school; for coordinators, each setting's
key adults (add, edit, deactivate), the key adults due for review and the remembered spellings of school names.

Imported text (school names, towns) is shown with st.dataframe / st.text, or escaped in Markdown widgets."""
import datetime as dt

import pandas as pd
import streamlit as st

from core.db import session_scope
from core.scope import Refused, can
from core.settings import get_settings
from core.timeutil import london_now
from dv.reading import FileRejected
from dv.schools import (
    MAX_GIAS_BYTES,
    AliasConflict,
    KeyAdultConflict,
    count_schools,
    deactivate_key_adult,
    forget_resolution,
    import_gias,
    key_adults_due_review,
    list_key_adults,
    list_resolutions,
    save_key_adult,
    search_schools,
)
from pages.common import (
    current_user,
    enter_page,
    forget_version,
    md_escape,
    seen_version,
)

user = current_user()
enter_page("schools")
st.title("Schools and key adults")
manage = can(user, "manage_schools")
today = london_now().date()

with session_scope() as session:
    counts = count_schools(session, user)
st.caption(f"The directory holds {counts['open']:,} open settings and {counts['closed']:,} closed ones (kept only "
           "to explain a name match; never chosen).")

for kind in ("schools_saved", "schools_error"):
    if message := st.session_state.pop(kind, None):
        (st.success if kind == "schools_saved" else st.error)(md_escape(message))

# ---------------------------------------------------------------------------------------------- import
if can(user, "import_schools"):
    las = get_settings().local_authorities
    with st.expander("Import the GIAS establishments file", expanded=counts["open"] == 0):
        st.caption("Download *edubasealldata.csv* (all establishments) from Get Information about Schools and "
                   "upload it unchanged. Kept: " + (md_escape(", ".join(las)) if las else "every local authority "
                                                    "(set DV_LOCAL_AUTHORITIES to keep only the hub's)") + ".")
        # The GIAS download (~60 MB) is over the 50 MB the police extract uploader keeps; the server admits 200 MB
        # (.streamlit/config.toml server.maxUploadSize)
        upload = st.file_uploader("GIAS establishments CSV", type=["csv"], key="gias_upload",
                                  max_upload_size=MAX_GIAS_BYTES // 2**20)
        if upload is not None and st.button("Import", type="primary", key="gias_import"):
            try:
                with st.spinner("Importing"), session_scope() as session:
                    result = import_gias(session, user, upload.getvalue(), file_name=upload.name)
            except FileRejected as exc:
                st.error(md_escape(f"Nothing was imported: {exc}"))
            except Refused as exc:
                st.error(str(exc))
            else:
                st.success(f"Imported ({result['encoding']}): {result['rows_read']:,} rows read, {result['kept']:,} "
                           f"kept ({result['closed_kept']:,} closed), {result['created']:,} new, "
                           f"{result['updated']:,} updated, {result['unchanged']:,} unchanged; "
                           f"{result['skipped_other_la']:,} in other local authorities.")
                m = st.columns(4)
                m[0].metric("Kept", result["kept"])
                m[1].metric("New", result["created"])
                m[2].metric("Updated", result["updated"])
                m[3].metric("Problems", len(result["errors"]))
                if result["errors"]:
                    st.dataframe(pd.DataFrame(result["errors"], columns=["row", "column", "message"]),
                                 hide_index=True, width="stretch")

# ---------------------------------------------------------------------------------------------- search
st.subheader("Find a school")
text = st.text_input("School name or URN", key="school_search", placeholder="e.g. St Marys CofE Primary")
found = []
if text.strip():
    with session_scope() as session:
        found = search_schools(session, user, text, limit=50)
    if found:
        frame = pd.DataFrame(found)
        frame["open"] = frame["is_open"].map({True: "yes", False: "no"})
        st.dataframe(frame[["urn", "name", "la_name", "town", "postcode", "type_name", "status", "low_age",
                            "high_age"]], hide_index=True, width="stretch",
                     column_config={"la_name": "local authority", "type_name": "type"})
    else:
        st.info("No school matches.")

if not manage:
    st.stop()

# ---------------------------------------------------------------------------------------------- key adults
st.subheader("Key adults")
open_found = {s["urn"]: s for s in found if s["is_open"]}
urn = st.selectbox("School", list(open_found), index=None, key="key_adult_school",
                   placeholder="Find the school above, then choose it here",
                   format_func=lambda u: f"{open_found[u]['name']} – {open_found[u]['town'] or ''}, "
                                         f"{open_found[u]['la_name'] or ''} (URN {u})")
if urn is not None:
    with session_scope() as session:
        adults = list_key_adults(session, user, urn)
    if adults:
        st.dataframe(pd.DataFrame(adults)[["name", "email", "phone", "review_date"]], hide_index=True,
                     width="stretch", column_config={"review_date": st.column_config.DateColumn(
                         "review by", format="DD/MM/YYYY")})
    else:
        st.info("This setting has no key adult yet: alert notices cannot be emailed to it.")
    by_id = {a["id"]: a for a in adults}
    chosen = st.selectbox("Key adult", [None, *by_id], key=f"key_adult_pick_{urn}",
                          format_func=lambda i: "Add a new key adult" if i is None else by_id[i]["name"])
    adult = by_id.get(chosen)
    suffix = f"{urn}_{chosen or 'new'}"
    version_key = f"key_adult_{chosen}" if chosen else None
    expected = seen_version(version_key, adult["version"]) if adult else None
    default_review = today + dt.timedelta(days=365)
    with st.form(f"key_adult_form_{suffix}", clear_on_submit=adult is None):
        name = st.text_input("Name", value=adult["name"] if adult else "", key=f"ka_name_{suffix}")
        email = st.text_input("Email", value=(adult["email"] or "") if adult else "", key=f"ka_email_{suffix}")
        phone = st.text_input("Phone", value=(adult["phone"] or "") if adult else "", key=f"ka_phone_{suffix}")
        review = st.date_input("Review by", value=(adult["review_date"] if adult and adult["review_date"]
                                                   else default_review), format="DD/MM/YYYY",
                               key=f"ka_review_{suffix}")
        submitted = st.form_submit_button("Save changes" if adult else "Add key adult")
    if submitted:
        try:
            with session_scope() as session:
                save_key_adult(session, user, urn=urn, name=name, email=email, phone=phone, review_date=review,
                               key_adult_id=chosen, expected_version=expected)
        except KeyAdultConflict as exc:
            forget_version(version_key)
            for field in ("name", "email", "phone", "review"):
                st.session_state.pop(f"ka_{field}_{suffix}", None)
            now = exc.current
            st.session_state["schools_error"] = (f"{exc} Now: {now['name']}, {now['email'] or ''}, "
                                                 f"{now['phone'] or ''}, review by {now['review_date'] or '-'}.")
            st.rerun()
        except (ValueError, Refused) as exc:
            st.error(md_escape(exc))
        else:
            if version_key:
                forget_version(version_key)
            st.session_state["schools_saved"] = f"Saved {name.strip()}."
            st.rerun()
    if adult is not None and st.button("Deactivate (no more alert notices)", key=f"ka_deactivate_{chosen}"):
        try:
            with session_scope() as session:
                deactivate_key_adult(session, user, chosen, expected_version=expected)
        except KeyAdultConflict as exc:
            st.session_state["schools_error"] = str(exc)
        except Refused as exc:
            st.session_state["schools_error"] = str(exc)
        else:
            st.session_state["schools_saved"] = f"{adult['name']} no longer receives alert notices."
        forget_version(version_key)
        st.rerun()

# ---------------------------------------------------------------------------------------------- due for review
st.subheader("Key adults due for review")
within = st.number_input("Due within (days)", min_value=0, max_value=365, value=30, step=7, key="review_within")
with session_scope() as session:
    due = key_adults_due_review(session, user, today, within_days=int(within))
if due:
    st.dataframe(pd.DataFrame(due)[["review_date", "school", "urn", "name", "email", "phone"]], hide_index=True,
                 width="stretch", column_config={"review_date": st.column_config.DateColumn(
                     "review by", format="DD/MM/YYYY")})
else:
    st.info("No key adult is due for review.")

# ---------------------------------------------------------------------------------------------- remembered spellings
st.subheader("Remembered spellings")
st.caption("A spelling resolved once goes straight to its school for every later child. Forget one that was "
           "resolved wrongly.")
with session_scope() as session:
    aliases = list_resolutions(session, user)
if aliases:
    st.dataframe(pd.DataFrame(aliases)[["name_key", "school", "urn", "la", "created_by", "created_at_utc"]],
                 hide_index=True, width="stretch",
                 column_config={"name_key": "spelling (normalised)", "created_at_utc": "when (UTC)"})
    by_key = {a["name_key"]: a for a in aliases}
    forget = st.selectbox("Spelling to forget", list(by_key), index=None, key="alias_forget")
    # the version shown when the spelling was chosen: the list is re-read on the click's own rerun
    alias_seen = seen_version(f"alias_{forget}", by_key[forget]["version"]) if forget in by_key else None
    if forget is not None and st.button("Forget this spelling", key="alias_forget_button"):
        try:
            with session_scope() as session:
                forgotten = forget_resolution(session, user, forget, expected_version=alias_seen)
        except AliasConflict as exc:  # a colleague re-pointed it meanwhile: theirs is kept and shown
            st.session_state["schools_error"] = str(exc)
        except Refused as exc:
            st.session_state["schools_error"] = str(exc)
        else:
            st.session_state["schools_saved"] = (f"Forgot the spelling '{forget}'." if forgotten else
                                                 f"The spelling '{forget}' was no longer remembered.")
        forget_version(f"alias_{forget}")
        st.session_state.pop("alias_forget", None)
        st.rerun()
else:
    st.info("No spelling has been remembered yet.")
