"""Users and agencies (coordinators and admins): create, change role or agency, disable, reset a password."""
import pandas as pd
import streamlit as st

from core.accounts import StaleEdit, add_agency, list_agencies, list_users, reset_password, update_user
from core.auth import PasswordRejected, create_user
from core.db import session_scope
from core.models import UserRole
from core.scope import Refused
from pages.common import current_user, enter_page, label

user = current_user()
enter_page("users")
st.title("Users and agencies")
with session_scope() as session:
    users = list_users(session, user)
    agencies = list_agencies(session, user)
agency_names = {a["id"]: a["name"] for a in agencies}
roles = [r.value for r in UserRole]
frame = pd.DataFrame(users, columns=["id", "username", "display_name", "role", "agency", "school_urn", "disabled",
                                     "must_change_password", "last_login_utc"])
frame["role"] = frame["role"].map(label)
st.dataframe(frame, hide_index=True, width="stretch", column_config={"id": None})
by_id = {u["id"]: u for u in users}
pick = st.selectbox("Account to change", list(by_id), index=None, placeholder="Choose an account",
                    key="account_to_change",  # keyed: the choice survives the list changing
                    format_func=lambda i: f"{by_id[i]['username']} ({by_id[i]['display_name']})")

if pick is not None:
    chosen = by_id[pick]
    with st.form(f"edit_{chosen['id']}"):
        st.subheader(f"Edit {chosen['username']}")
        role = st.selectbox("Role", roles, index=roles.index(chosen["role"].value))
        agency = st.selectbox("Agency (agency representatives)", [None, *agency_names],
                              index=([None, *agency_names].index(chosen["agency_id"])),
                              format_func=lambda i: "–" if i is None else agency_names[i])
        school = st.text_input("School URN (school key adults)", value=chosen["school_urn"] or "")
        disabled = st.checkbox("Disabled", value=chosen["disabled"])
        save = st.form_submit_button("Save")
    if save:
        try:
            with session_scope() as session:
                update_user(session, user, chosen["id"], chosen["version"], role=role, agency_id=agency,
                            school_urn=school.strip() or None, disabled=disabled)
        except (ValueError, Refused, StaleEdit) as exc:
            st.error(str(exc))
        else:
            st.rerun()
    if st.button("Reset password", key=f"reset_{chosen['id']}"):
        with session_scope() as session:
            temporary = reset_password(session, user, chosen["id"])
        st.warning("Give this temporary password to the user by a safe route; it is shown once.")
        st.code(temporary, language=None)

with st.expander("Add a user"):
    with st.form("add_user", clear_on_submit=True):
        username = st.text_input("Username")
        name = st.text_input("Name")
        email = st.text_input("Email (for council sign-in and notices)")
        role = st.selectbox("Role", roles, key="new_role")
        agency = st.selectbox("Agency", [None, *agency_names], format_func=lambda i: "–" if i is None else agency_names[i])
        school = st.text_input("School URN")
        password = st.text_input("Temporary password (they must change it)", type="password")
        add = st.form_submit_button("Add user")
    if add:
        try:
            with session_scope() as session:
                create_user(session, user, username=username, display_name=name, role=UserRole(role), password=password,
                            email=email or None, agency_id=agency, school_urn=school.strip() or None,
                            must_change_password=True)
        except (ValueError, PasswordRejected, Refused) as exc:
            st.error(str(exc))
        else:
            st.success(f"Added {username}.")

st.subheader("Agencies")
st.dataframe(pd.DataFrame(agencies, columns=["name", "kind", "email", "active"]), hide_index=True)
with st.form("add_agency", clear_on_submit=True):
    name = st.text_input("New agency")
    email = st.text_input("Its email for the daily digest")
    if st.form_submit_button("Add agency"):
        try:
            with session_scope() as session:
                add_agency(session, user, name, email=email or None)
        except (ValueError, Refused) as exc:
            st.error(str(exc))
        else:
            st.rerun()
