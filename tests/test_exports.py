"""Exports never carry a live formula."""
from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from core.exports import csv_bytes, safe_cell, xlsx_bytes

HOSTILE = ["=1+2", "+44 7700 900123", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", '=HYPERLINK("http://x.invalid")']


@pytest.mark.parametrize("value", HOSTILE)
def test_dangerous_text_is_prefixed(value):
    assert safe_cell(value) == "'" + value


def test_plain_values_are_untouched():
    assert [safe_cell(v) for v in ("Smith", 3, -2, None, "a=b")] == ["Smith", 3, -2, None, "a=b"]


def test_xlsx_has_no_formula_cells():
    book = openpyxl.load_workbook(io.BytesIO(xlsx_bytes({"S": (["h"], [[v] for v in HOSTILE])})))
    cells = [c for row in book["S"].iter_rows(min_row=2) for c in row]
    assert all(c.data_type == "s" for c in cells)
    assert [c.value for c in cells] == ["'" + v.replace("\r", "\n") for v in HOSTILE]  # XML stores CR as LF
    assert book["S"].page_setup.orientation == "landscape"


def test_csv_cells_are_neutralised():
    rows = list(csv.reader(io.StringIO(csv_bytes(["h"], [[v] for v in HOSTILE]).decode("utf-8-sig"), newline="")))
    assert [r[0] for r in rows[1:]] == ["'" + v for v in HOSTILE]


def test_values_that_are_not_text_are_checked_once_turned_into_text():
    """A Decimal or any object whose text starts with = + - @ is as live as such a string: it is turned into text
    first and then checked (it used to go out as text unchecked)."""
    import decimal

    class Hostile:
        def __str__(self):
            return '=HYPERLINK("http://x.invalid")'

    values = [decimal.Decimal("-1.5"), Hostile(), ["@x"]]
    assert [safe_cell(v) for v in values] == ["'-1.5", "'" + str(Hostile()), "['@x']"]
    assert safe_cell(decimal.Decimal("2.5")) == "2.5"
    rows = list(csv.reader(io.StringIO(csv_bytes(["h"], [[Hostile()]]).decode("utf-8-sig"), newline="")))
    assert rows[1][0] == "'" + str(Hostile())
    book = openpyxl.load_workbook(io.BytesIO(xlsx_bytes({"S": (["h"], [[decimal.Decimal(-3)], [Hostile()]])})))
    assert [c.value for c in next(book["S"].iter_cols(min_row=2))] == ["'-3", "'" + str(Hostile())]
