"""The 'new layout' form on the Import page (a helper module, not a page of its own)."""
import streamlit as st

from core import audit
from core.db import session_scope
from core.scope import Refused, require
from dv.import_service import guess_header_row, preview_rows, suggest_mapping
from dv.profiles import FIELDS, ProfileError, profile_to_toml, save_profile
from dv.reading import FileRejected
from pages.common import current_user, md_escape


def profile_builder(data: bytes, file_name: str) -> None:
    # A toggle, not an expander: an expander's content runs (and reads the file) on every rerun.
    if not st.toggle("New layout? Build a profile from this file", key="build_profile"):
        return
    try:
        rows = preview_rows(data, file_name, nrows=30)
    except FileRejected as exc:
        st.error(md_escape(exc))
        return
    header_row = st.number_input("Header row (as Excel numbers it)", 1, len(rows) or 1, guess_header_row(rows))
    headers = [h for h in rows[header_row - 1] if h] if rows else []
    suggestions = suggest_mapping(headers)
    options = ["(not in this file)"] + headers
    with st.form("profile_builder"):
        name = st.text_input("Profile name", placeholder="Force – system – report")
        force = st.text_input("Force")
        mapping = {}
        for field, label in FIELDS.items():
            guess = suggestions.get(field)
            mapping[field] = st.selectbox(label, options, index=options.index(guess) if guess in options else 0,
                                          key=f"map_{field}")
        st.caption("Children: one set of columns per child ('wide'), one column of ';'-separated values "
                   "('list'), or one row per child ('rows'). Use {n} for the child number in wide headers.")
        layout = st.selectbox("Children layout", ["none", "wide", "list", "rows"])
        child_name = st.text_input("Child name header", placeholder="Child {n} Name")
        child_dob = st.text_input("Child date of birth header", placeholder="Child {n} DOB")
        child_school = st.text_input("Child school header", placeholder="Child {n} School")
        child_present = st.text_input("Child present header", placeholder="Child {n} Present")
        submitted = st.form_submit_button("Save profile")
    if submitted:
        columns = {f: h for f, h in mapping.items() if h != options[0]}
        children = None
        if layout != "none":
            children = {"layout": layout, "name": child_name, "dob": child_dob, "school": child_school,
                        "present": child_present}
            children = {k: v for k, v in children.items() if v}
        try:
            with session_scope() as session:
                user = current_user()
                require(session, user, "manage_profiles")
                path = save_profile(profile_to_toml(name, force, columns, children, header_row=header_row))
                audit.record(session, user, "change", "import_profile", path.stem, new=columns)
        except (ProfileError, ValueError, Refused) as exc:
            st.error(md_escape(exc))
        else:
            st.success(md_escape(f"Saved {path.name}. Choose it in the Profile list above."))
