"""Dashboard (being built: issue 7)."""
import streamlit as st

from pages.common import current_user, enter_page

user = current_user()
enter_page("dashboard")
st.title("Dashboard")
