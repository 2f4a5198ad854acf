"""My account: who I am, and changing my password."""
import streamlit as st

from core.auth import AuthError, PasswordRejected, change_password
from core.db import session_scope
from pages.common import current_user, enter_page

user = current_user()
enter_page("account")
st.title("My account")
st.text(f"{user.display_name} – {user.username} – {user.role.value}"
        + (f" – agency {user.agency_id}" if user.agency_id else "")
        + (f" – school {user.school_urn}" if user.school_urn else ""))
with st.form("password"):
    current = st.text_input("Current password", type="password")
    new = st.text_input("New password", type="password")
    again = st.text_input("New password again", type="password")
    if st.form_submit_button("Change password"):
        if new != again:
            st.error("The new passwords differ.")
        else:
            try:
                with session_scope() as session:
                    session.add(user)
                    change_password(session, user, current, new)
                st.success("Password changed.")
            except (AuthError, PasswordRejected) as exc:
                st.error(str(exc))
