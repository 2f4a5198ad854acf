"""Property tests for the parsers police data goes through: dates and names."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dv.parsing import excel_serial, match_key, normalise_name, parse_date, parse_datetime, parse_time, split_name

UK_FORMATS = ("%d/%m/%Y %H:%M", "%d/%m/%Y")
moments = st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(2099, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0))


@given(moments, st.sampled_from(["%d/%m/%Y %H:%M", "%d-%m-%Y %H:%M", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M:%S"]))
def test_a_formatted_datetime_parses_back_exactly(moment, fmt):
    assert parse_datetime(moment.strftime(fmt), (fmt,)) == moment


@given(st.dates(min_value=dt.date(1901, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_day_first_never_swaps_day_and_month(day):
    text = day.strftime("%d/%m/%Y")
    assert parse_date(text, UK_FORMATS) == day
    # and without leading zeros, as people type
    assert parse_date(f"{day.day}/{day.month}/{day.year}", UK_FORMATS) == day


@given(st.integers(min_value=1, max_value=31), st.integers(min_value=1, max_value=12), st.integers(1901, 2099))
def test_impossible_dates_are_errors_not_guesses(d, m, y):
    try:
        expected = dt.date(y, m, d)
    except ValueError:
        with pytest.raises(ValueError):
            parse_date(f"{d:02d}/{m:02d}/{y}", UK_FORMATS)
    else:
        assert parse_date(f"{d:02d}/{m:02d}/{y}", UK_FORMATS) == expected


@given(moments)
def test_excel_serials_round_trip(moment):
    serial = (moment - dt.datetime(1899, 12, 30)).total_seconds() / 86400
    assert excel_serial(serial) == moment
    assert parse_datetime(serial, ()) == moment


@given(st.text(max_size=30))
@settings(max_examples=300)
def test_unparseable_text_raises_value_error_never_anything_else(raw):
    try:
        parse_datetime(raw, UK_FORMATS)
    except ValueError:
        pass


@pytest.mark.parametrize("raw,expected", [("14:30", dt.time(14, 30)), ("1430", dt.time(14, 30)), (0.5, dt.time(12, 0)),
                                          (dt.time(9, 5), dt.time(9, 5)), ("", None)])
def test_times(raw, expected):
    assert parse_time(raw, ("%H:%M", "%H%M")) == expected


names = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll")), min_size=1, max_size=12)


@given(names, names)
def test_surname_comma_forename_splits_back(surname, forename):
    assert split_name(f"{surname}, {forename}") == (surname, forename)
    assert split_name(f"{forename} {surname}") == (surname, forename)


@given(st.text(max_size=40))
def test_normalising_is_idempotent_and_alphanumeric(name):
    once = normalise_name(name)
    assert normalise_name(once) == once
    assert all(ch.isalnum() for ch in once)


@pytest.mark.parametrize("a,b", [("O'Brien", "OBRIEN"), ("Zoë", "Zoe"), ("Smith-Jones", "smith jones"),
                                 ("  McDonald ", "MCDONALD"), ("Siân", "SIAN")])
def test_name_variants_the_issue_names_match(a, b):
    assert normalise_name(a) == normalise_name(b)
    assert match_key(a, "x", dt.date(2000, 1, 1)) == match_key(b, "x", dt.date(2000, 1, 1))


def test_no_key_without_a_date_of_birth():
    assert match_key("Smith", "John", None) is None


@pytest.mark.parametrize("raw,expected", [("Maria Da Silva", ("Da Silva", "Maria")),
                                          ("Aoife Ní Bhriain", ("Ní Bhriain", "Aoife")),
                                          ("Jan van der Berg", ("van der Berg", "Jan")),
                                          ("Jane Anne Smith", ("Smith", "Jane Anne")),
                                          ("SMITH-JONES, Kai", ("SMITH-JONES", "Kai"))])
def test_surname_particles_stay_with_the_surname(raw, expected):
    assert split_name(raw) == expected


def test_date_cells_come_back_as_they_are():
    day = dt.date(2019, 5, 1)
    assert parse_date(day, UK_FORMATS) is day
    moment = dt.datetime(2026, 10, 25, 1, 30)
    assert parse_datetime(moment, UK_FORMATS) is moment
    aware = moment.replace(tzinfo=dt.timezone.utc)
    assert parse_datetime(aware, UK_FORMATS) == moment and parse_datetime(aware, UK_FORMATS).tzinfo is None
    assert parse_date(moment, UK_FORMATS) == dt.date(2026, 10, 25)
    assert parse_date("", UK_FORMATS) is None and parse_datetime(None, UK_FORMATS) is None
