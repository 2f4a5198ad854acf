"""Operation Encompass deadlines (dv/schooldays.py): the start of the first school day of the child's setting
after the incident, across weekends, bank holidays, half-term, Christmas, INSET days, an independent school's own
calendar and the clock changes."""
from __future__ import annotations

import datetime as dt

import pytest

from core.timeutil import london_to_utc
from dv.schooldays import TermDatesError, load_term_dates

TERMS = """
school_day_starts = "08:30"
[default]
terms = [["2026-09-03", "2026-10-23"], ["2026-11-02", "2026-12-18"], ["2027-01-04", "2027-02-12"],
         ["2027-02-22", "2027-03-31"], ["2027-04-12", "2027-05-28"]]
closures = ["2027-01-04"]
[schools."123456"]          # an academy with its own INSET day
closures = ["2026-11-30"]
[schools."654321"]          # an independent school with its own, shorter terms
terms = [["2026-09-08", "2026-10-16"], ["2026-11-09", "2026-12-11"]]
"""


def at(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%d/%m/%Y %H:%M")


@pytest.fixture
def terms(tmp_path):
    path = tmp_path / "terms.toml"
    path.write_text(TERMS, encoding="utf-8")
    return load_term_dates(path)


@pytest.mark.parametrize("urn, incident, due", [
    (None, "20/11/2026 18:00", "23/11/2026 08:30"),  # Friday evening: Monday morning
    (None, "21/11/2026 23:59", "23/11/2026 08:30"),  # Saturday night
    (None, "24/11/2026 07:10", "24/11/2026 08:30"),  # before school on a school day: that morning
    (None, "24/11/2026 08:30", "25/11/2026 08:30"),  # at the start of the school day: the next one
    (None, "24/11/2026 10:00", "25/11/2026 08:30"),  # during the school day: the next school day
    (None, "23/10/2026 17:00", "02/11/2026 08:30"),  # half-term week
    (None, "18/12/2026 16:00", "05/01/2027 08:30"),  # Christmas, then the authority's INSET day 04/01
    (None, "24/12/2026 12:00", "05/01/2027 08:30"),  # in the holidays
    (None, "25/03/2027 18:00", "30/03/2027 08:30"),  # Good Friday 26/03 and Easter Monday 29/03 (bank holidays)
    (None, "02/04/2027 09:00", "12/04/2027 08:30"),  # the Easter holidays
    (None, "30/04/2027 20:00", "04/05/2027 08:30"),  # Early May bank holiday Monday 03/05/2027
    ("123456", "27/11/2026 18:00", "01/12/2026 08:30"),  # the academy's INSET day Monday 30/11
    (None, "27/11/2026 18:00", "30/11/2026 08:30"),  # ... which other settings do not have
    ("654321", "23/10/2026 17:00", "09/11/2026 08:30"),  # the independent school's longer half-term
    ("654321", "11/12/2026 10:00", None),  # its calendar in the file ends: an error when strict
    ("999999", "20/11/2026 18:00", "23/11/2026 08:30"),  # a setting without its own entry: the default
])
def test_deadlines(terms, urn, incident, due):
    if due is None:
        with pytest.raises(TermDatesError, match="No school day within 400 days"):
            terms.deadline(urn, at(incident), strict=True)
        # not strict (the import): every weekday that is not a bank holiday counts, so there is always a deadline
        assert terms.deadline(urn, at(incident)) == at("14/12/2026 08:30")
    else:
        assert terms.deadline(urn, at(incident)) == at(due)


def test_clock_changes_never_move_a_deadline(terms):
    # Clocks go back at 02:00 BST on Sunday 25/10/2026 and forward at 01:00 GMT on Sunday 28/03/2027.
    assert terms.deadline(None, at("25/10/2026 01:30")) == at("02/11/2026 08:30")
    due = terms.deadline(None, at("27/03/2027 22:00"))  # Easter weekend: Monday 29/03 is a bank holiday
    assert due == at("30/03/2027 08:30")  # 08:30 on the wall clock, BST
    assert london_to_utc(due) == at("30/03/2027 07:30")
    # an incident in the hour that does not exist on the wall clock is still placed in the right day
    assert terms.deadline(None, at("28/03/2027 01:30")) == at("30/03/2027 08:30")
    assert london_to_utc(terms.deadline(None, at("30/10/2026 18:00"))) == at("02/11/2026 08:30")  # GMT again


def test_the_shipped_file_and_the_setting(tmp_path, monkeypatch):
    shipped = load_term_dates()
    assert shipped.school_day_starts == dt.time(8, 30)
    assert shipped.deadline(None, at("20/11/2026 18:00")) == at("23/11/2026 08:30")
    custom = tmp_path / "t.toml"
    custom.write_text('school_day_starts = "08:45"\n[default]\nterms = [["2026-11-02", "2026-12-18"]]\n',
                      encoding="utf-8")
    monkeypatch.setenv("TERM_DATES_FILE", str(custom))
    assert load_term_dates().deadline(None, at("20/11/2026 18:00")) == at("23/11/2026 08:45")


@pytest.mark.parametrize("text, message", [
    ("[default]\nterms = [[\"2026-13-01\", \"2026-12-18\"]]\n", "default.terms[0]: '2026-13-01' is not a date"),
    ("[default]\nterms = [[\"2026-12-18\", \"2026-11-02\"]]\n", "default.terms[0]: ends before it starts"),
    ("school_day_starts = \"8.30am\"\n[default]\n", "school_day_starts: '8.30am' is not a time"),
    ("[schools.\"1\"]\nterms = []\n", "the [default] table"),
    ("[default]\nterm = []\n", "default: unknown key(s) term"),
])
def test_errors_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TermDatesError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_term_dates(path)
