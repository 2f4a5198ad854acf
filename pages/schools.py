"""Schools and key adults (being built: issue 6)."""
import streamlit as st

from pages.common import current_user, enter_page

user = current_user()
enter_page("schools")
st.title("Schools and key adults")
