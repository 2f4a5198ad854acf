"""End to end in a real browser: sign in, upload a police extract on the Import page, check it, import it, and
see the result on the Notifications page. Streamlit renders asynchronously, so every check is an auto-waiting
``expect``; nothing sleeps.

The upload is a small hand-written Athena (``athena_list`` profile) CSV in Windows-1252, so every expected count
below can be checked by reading the rows:

====  ========  ==========================================  =============================
row   PPN Ref   what                                        outcome
====  ========  ==========================================  =============================
2     PPN/1001  crime reference, 2 children                 new, crime
3     PPN/1002  Home Office code only                       new, crime
4     PPN/1003  "Non Crime", 1 child                        new, non-crime
5     PPN/1004  "Incident Only"                             new, non-crime
6     PPN/1005  crime reference; victim O’Brien (cp1252)    new, crime
7     PPN/1006  victim born in 2090                         rejected: Victim Date of Birth
8     PPN/1002  exact repeat of row 3                       duplicate
====  ========  ==========================================  =============================
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, text

from core.timeutil import london_now

pytestmark = pytest.mark.browser

HEADER = [
    "PPN Ref", "Crime Ref", "Outcome Type", "Offence Description", "HOCR", "Incident Date", "Incident Time",
    "Date Reported", "Incident Address", "Incident Postcode", "Risk Level", "DASH Total", "Risk Flags",
    "Submitting Officer", "Summary", "Relationship to Suspect", "Victim Surname", "Victim Forename",
    "Victim Date of Birth", "Victim Sex", "Victim Person ID", "Suspect Surname", "Suspect Forename",
    "Suspect Date of Birth", "Suspect Person ID", "Children Names", "Children DOBs", "Children Schools",
    "Children Present",
]
BAD_ROW, BAD_COLUMN, BAD_REF = 7, "Victim Date of Birth", "PPN/1006"
ROWS_READ, CREATED, DUPLICATES, REJECTED = 7, 5, 1, 1
CRIME, NON_CRIME, CHILDREN = 3, 2, 3


def athena_csv() -> bytes:
    """The extract described in the module docstring. Incidents are yesterday (Europe/London), inside the
    Notifications page's default window (the last two days) and never in the future."""
    day = (london_now() - dt.timedelta(days=1)).strftime("%d/%m/%Y")
    common = {"Date Reported": day, "Submitting Officer": "PC 4471 Patel", "Relationship to Suspect": "Partner"}
    rows = [
        {"PPN Ref": "PPN/1001", "Crime Ref": "NS/26/1001", "Outcome Type": "Crime Recorded", "HOCR": "8N",
         "Offence Description": "Assault occasioning ABH", "Incident Time": "09:10", "Risk Level": "H",
         "DASH Total": "16", "Risk Flags": "NFS; Pregnant", "Victim Surname": "Ashdown", "Victim Forename": "Maya",
         "Victim Date of Birth": "14/03/1991", "Victim Sex": "F", "Victim Person ID": "NXP-1",
         "Suspect Surname": "Fenwick", "Suspect Forename": "Lee", "Suspect Date of Birth": "02/07/1988",
         "Suspect Person ID": "NXP-2", "Children Names": "Ashdown, Ruby; Ashdown, Leo",
         "Children DOBs": "01/05/2016; 12/09/2019", "Children Schools": "Kexley Primary; Kexley Infants",
         "Children Present": "Y; N"},
        {"PPN Ref": "PPN/1002", "Outcome Type": "Crime Recorded", "HOCR": "105A", "Offence Description":
         "Malicious communications", "Incident Time": "10:20", "Risk Level": "M", "DASH Total": "9",
         "Victim Surname": "Brook", "Victim Forename": "Ellis", "Victim Date of Birth": "30/11/1985",
         "Victim Sex": "M", "Suspect Surname": "Carr", "Suspect Forename": "Jo"},
        {"PPN Ref": "PPN/1003", "Outcome Type": "Non Crime", "Offence Description": "Verbal argument",
         "Incident Time": "11:30", "Risk Level": "S", "DASH Total": "3", "Victim Surname": "Dale",
         "Victim Forename": "Priya", "Victim Date of Birth": "05/06/1994", "Victim Sex": "F",
         "Suspect Surname": "Dale", "Suspect Forename": "Sam", "Children Names": "Dale, Noah",
         "Children DOBs": "20/02/2021", "Children Present": "Y"},
        {"PPN Ref": "PPN/1004", "Outcome Type": "Incident Only", "Offence Description": "Concern for welfare",
         "Incident Time": "12:40", "Risk Level": "N/A", "Victim Surname": "Eaves", "Victim Forename": "Tom",
         "Victim Date of Birth": "17/08/1979", "Victim Sex": "M"},
        {"PPN Ref": "PPN/1005", "Crime Ref": "NS/26/1005", "Outcome Type": "Crime Recorded",
         "Offence Description": "Criminal damage", "Incident Time": "13:50", "Risk Level": "M", "DASH Total": "11",
         "Victim Surname": "O\u2019Brien", "Victim Forename": "Dee", "Victim Date of Birth": "09/01/1990",
         "Victim Sex": "F", "Suspect Surname": "Grey", "Suspect Forename": "Alex"},
        {"PPN Ref": BAD_REF, "Outcome Type": "Non Crime", "Offence Description": "Verbal argument",
         "Incident Time": "14:00", "Risk Level": "S", "Victim Surname": "Frost", "Victim Forename": "Ada",
         BAD_COLUMN: "01/02/2090", "Victim Sex": "F"},
    ]
    rows.append(dict(rows[1]))  # an exact repeat: counted as a duplicate, not imported twice
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for r in rows:
        values = {**common, "Incident Date": day, "Incident Address": "1 Mill Lane, Kexley",
                  "Incident Postcode": "NX1 4AB", "Summary": "Synthetic test record.", **r}
        writer.writerow([values.get(h, "") for h in HEADER])
    return out.getvalue().encode("cp1252")  # as Excel saves "CSV" on Windows; the profile says cp1252


# ---------------------------------------------------------------------------------------------- helpers


def sign_in(page: Page, app, password: str | None = None) -> None:
    page.goto(app.url)
    page.get_by_role("textbox", name="Username", exact=True).fill(app.username)
    page.get_by_role("textbox", name="Password", exact=True).fill(password or app.password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def go_to(page: Page, link: str, url_path: str, *, default: bool = False) -> None:
    """Follow the sidebar link; the default (first) page of st.navigation is served at "/" as well."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/({url_path})?$" if default else rf"/{url_path}$"))
    expect(page.get_by_role("heading", name=link, exact=True)).to_be_visible()


def metric(page: Page, label: str):
    """The value of the st.metric labelled exactly ``label`` ("Crime stream" must not match "Non-crime stream")."""
    return (page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel")
                                                   .get_by_text(label, exact=True))
            .get_by_test_id("stMetricValue"))


COUNTS = (f"{ROWS_READ} rows read: {CREATED} new, 0 updated, 0 unchanged, {DUPLICATES} duplicates, "
          f"{REJECTED} rejected.")


# ---------------------------------------------------------------------------------------------- tests


def test_import_extract_then_see_streams(page: Page, streamlit_app):
    sign_in(page, streamlit_app)
    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"Signed in as {streamlit_app.display_name}")

    go_to(page, "Import", "import")
    uploader = page.get_by_test_id("stFileUploader")
    uploader.locator("input[type=file]").set_input_files(
        files=[{"name": "northshire_ppn.csv", "mimeType": "text/csv", "buffer": athena_csv()}])
    expect(uploader).to_contain_text("northshire_ppn.csv")
    expect(page.get_by_text("Detected layout: Northshire Constabulary - Athena PPN", exact=True)).to_be_visible()

    # Dry run: the counts, and nothing written (the real import below still finds every notification new).
    page.get_by_role("button", name="Check (dry run)", exact=True).click()
    dry = page.get_by_test_id("stAlert").filter(has_text="Dry run")
    expect(dry).to_have_text("Dry run – nothing was written. " + COUNTS)
    expect(metric(page, "Crime stream")).to_have_text(str(CRIME))
    expect(metric(page, "Non-crime stream")).to_have_text(str(NON_CRIME))
    expect(metric(page, "Children")).to_have_text(str(CHILDREN))

    page.get_by_role("button", name="Import", exact=True).click()
    success = page.get_by_test_id("stAlertContentSuccess")
    expect(success).to_have_text(re.compile(r"Imported \(batch \d+\)\. " + re.escape(COUNTS)))
    expect(dry).to_have_count(0)
    expect(metric(page, "Crime stream")).to_have_text(str(CRIME))
    expect(metric(page, "Non-crime stream")).to_have_text(str(NON_CRIME))
    expect(metric(page, "Children")).to_have_text(str(CHILDREN))

    expect(page.get_by_role("heading", name=f"Rows not imported ({REJECTED}) and warnings (0)")).to_be_visible()
    # st.dataframe draws on a canvas; glide-data-grid keeps an accessible <table> of the visible cells inside it
    # (canvas content is outside the accessibility tree, so CSS locators, not get_by_role).
    errors = page.get_by_test_id("stDataFrame").filter(has=page.locator("th", has_text=re.compile(r"^severity$")))
    expect(errors.locator("th")).to_have_text(["row", "column", "police_ref", "severity", "message"])
    expect(errors.locator("tbody tr")).to_have_count(1)
    expect(errors.locator("tbody td")).to_have_text(
        [str(BAD_ROW), BAD_COLUMN, BAD_REF, "error", "Victim's date of birth 01/02/2090 is in the future."])
    expect(page.get_by_role("button", name="Download the row errors (xlsx)")).to_be_visible()

    go_to(page, "Notifications", "notifications", default=True)
    expect(page.get_by_role("tab", name=f"Crime stream ({CRIME})", exact=True)).to_be_visible()
    expect(page.get_by_role("tab", name=f"Non-crime stream ({NON_CRIME})", exact=True)).to_be_visible()
    crime_table = page.get_by_role("tabpanel").filter(visible=True).get_by_test_id("stDataFrame")
    expect(crime_table.locator("tbody tr")).to_have_count(CRIME)
    expect(crime_table).to_contain_text("O\u2019Brien, Dee")  # decoded as Windows-1252, as the profile says

    # What the browser showed is what the database holds.
    engine = create_engine(streamlit_app.database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT stream, count(*) FROM notification GROUP BY stream ORDER BY stream")
                                ).all() == [("crime", CRIME), ("non_crime", NON_CRIME)]
            assert conn.execute(text('SELECT "row", "column", police_ref FROM row_error')).all() == [
                (BAD_ROW, BAD_COLUMN, BAD_REF)]
            assert conn.execute(text("SELECT count(*) FROM import_batch")).scalar() == 1
    finally:
        engine.dispose()


def test_wrong_password_is_refused(page: Page, streamlit_app):
    sign_in(page, streamlit_app, password="Not-The-Right-Password-1")
    expect(page.get_by_text("The username or password is wrong.", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    expect(page.get_by_text("Signed in as")).to_have_count(0)


def test_import_page_needs_sign_in(page: Page, streamlit_app):
    page.goto(f"{streamlit_app.url}/import")
    # st.navigation only routes to the pages it was given: a visitor gets the sign-in page instead.
    expect(page.get_by_role("dialog")).to_contain_text("Page not found")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_attached()
    expect(page.get_by_role("heading", name="DA Daily", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Import", exact=True)).to_have_count(0)
    expect(page.get_by_test_id("stFileUploader")).to_have_count(0)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
