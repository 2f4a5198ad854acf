"""Users and agencies (coordinators and admins): create, change role or agency, disable, reset a password."""
import pandas as pd
import streamlit as st

from core.accounts import StaleEdit, add_agency, list_agencies, list_users, reset_password, update_user
from core.auth import PasswordRejected, create_user, manages_coordinators
from core.db import session_scope
from core.models import UserRole
from core.scope import Refused
from pages.common import current_user, enter_page, forget_version, label, md_escape, page_visit, seen_version

user = current_user()
enter_page("users")
st.title("Users and agencies")
with session_scope() as session:
    users = list_users(session, user)
    agencies = list_agencies(session, user)
agency_names = {a["id"]: a["name"] for a in agencies}
# Only a coordinator may give the coordinator role or reset a coordinator's password: not offered to an admin
# (core.auth.manages_coordinators refuses it anyway).
may_coordinate = manages_coordinators(user)
roles = [r.value for r in UserRole if may_coordinate or r != UserRole.coordinator]
FIELDS = ("role", "agency", "school", "disabled")
frame = pd.DataFrame(users, columns=["id", "username", "display_name", "role", "agency", "school_urn", "disabled",
                                     "must_change_password", "last_login_utc"])
frame["role"] = frame["role"].map(label)
st.dataframe(frame, hide_index=True, width="stretch", column_config={"id": None})
by_id = {u["id"]: u for u in users}
pick = st.selectbox("Account to change", list(by_id), index=None, placeholder="Choose an account",
                    key="account_to_change",  # keyed: the choice survives the list changing
                    format_func=lambda i: f"{by_id[i]['username']} ({by_id[i]['display_name']})")


def version_key(user_id: int) -> str:
    return f"user_{page_visit()}_{user_id}"


def save(user_id: int, seen: int) -> None:
    """A callback, passed the account's version as it was when its form was first shown (``seen_version``): the
    version re-read on the click's own rerun would already include another admin's change, which this save would
    then silently overwrite. The widgets are keyed per account, so what was typed survives a rerun."""
    try:
        with session_scope() as session:
            update_user(session, current_user(), user_id, seen, role=st.session_state[f"user_role_{user_id}"],
                        agency_id=st.session_state[f"user_agency_{user_id}"],
                        school_urn=st.session_state[f"user_school_{user_id}"].strip() or None,
                        disabled=st.session_state[f"user_disabled_{user_id}"])
    except StaleEdit as exc:
        now = exc.current
        st.session_state["users_error"] = (f"{exc} Now: {label(now['role'])}, agency "
                                           f"{agency_names.get(now['agency_id'], '–')}, school {now['school_urn'] or '–'}"
                                           f", {'disabled' if now['disabled'] else 'active'}.")
    except (ValueError, Refused) as exc:
        st.session_state["users_error"] = str(exc)
        return  # nothing was saved: keep what was typed, and the version it started from
    else:
        st.session_state["users_saved"] = "Saved."
    forget_version(version_key(user_id))
    for field in FIELDS:  # show the stored values from now on
        st.session_state.pop(f"user_{field}_{user_id}", None)


if pick is not None:
    chosen = by_id[pick]
    uid = chosen["id"]
    for other in by_id.keys() - {pick}:  # a form no longer on screen starts afresh when opened again
        forget_version(version_key(other))
    seen = seen_version(version_key(uid), chosen["version"])
    if err := st.session_state.pop("users_error", None):
        st.error(md_escape(err))
    if saved := st.session_state.pop("users_saved", None):
        st.success(saved)
    current_role = chosen["role"].value
    role_options = roles if current_role in roles else [current_role, *roles]  # an admin editing a coordinator
    agency_options = [None, *agency_names]
    with st.form(f"edit_{uid}"):
        st.subheader(f"Edit {md_escape(chosen['username'])}")
        st.selectbox("Role", role_options, index=role_options.index(current_role), key=f"user_role_{uid}")
        st.selectbox("Agency (agency representatives)", agency_options,
                     index=agency_options.index(chosen["agency_id"]), key=f"user_agency_{uid}",
                     format_func=lambda i: "–" if i is None else agency_names[i])
        st.text_input("School URN (school key adults)", value=chosen["school_urn"] or "", key=f"user_school_{uid}")
        st.checkbox("Disabled", value=chosen["disabled"], key=f"user_disabled_{uid}")
        st.form_submit_button("Save", on_click=save, args=(uid, seen))
    if (may_coordinate or current_role != UserRole.coordinator.value) and st.button("Reset password",
                                                                                    key=f"reset_{uid}"):
        try:
            with session_scope() as session:
                temporary = reset_password(session, user, uid)
        except Refused as exc:
            st.error(md_escape(exc))
        else:
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
            st.success(f"Added {md_escape(username.strip().lower())}.")

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
