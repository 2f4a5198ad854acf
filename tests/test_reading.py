"""Hostile and odd files at the reading stage: zip bombs, XML entities, formulas, sizes, sheets."""
from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest

from core.settings import get_settings
from dv.reading import FileRejected, read_rows
from tests.factories import zip_bytes

CONTENT_TYPES = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'


def _workbook(cells: list[list]) -> bytes:
    book = openpyxl.Workbook()
    for row in cells:
        book.active.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_defusedxml_is_installed_for_openpyxl():
    assert openpyxl.xml.DEFUSEDXML


def test_reading_asserts_what_openpyxl_checks_without_importing_it():
    import subprocess
    import sys

    import dv.reading

    assert dv.reading.DEFUSEDXML == openpyxl.xml.DEFUSEDXML
    code = "import sys, dv.reading, dv.importer; print('openpyxl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # an import does not pay for openpyxl


def test_zip_bomb_is_refused_before_any_xml_is_parsed(monkeypatch):
    monkeypatch.setenv("DV_MAX_UNCOMPRESSED_MB", "5")
    bomb = zip_bytes({"[Content_Types].xml": CONTENT_TYPES, "xl/workbook.xml": b"<workbook/>",
                      "xl/worksheets/sheet1.xml": b"<a>" + b" " * (20 * 1024 * 1024) + b"</a>"})
    assert len(bomb) < 200_000  # tiny on disk
    with pytest.raises(FileRejected, match="would expand to"):
        read_rows(bomb, "bomb.xlsx")


def _set_declared_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite one member's uncompressed size in the zip's central directory (what a crafted bomb does)."""
    out = bytearray(data)
    pos = out.find(b"PK\x01\x02")
    while pos != -1:
        name_len = int.from_bytes(out[pos + 28 : pos + 30], "little")
        if bytes(out[pos + 46 : pos + 46 + name_len]) == member.encode():
            out[pos + 24 : pos + 28] = size.to_bytes(4, "little")
            return bytes(out)
        pos = out.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(member)


def test_a_member_that_lies_about_its_size_is_refused():
    honest = zip_bytes({"[Content_Types].xml": CONTENT_TYPES, "xl/workbook.xml": b"<workbook/>",
                        "xl/worksheets/sheet1.xml": b"<a>" + b"x" * 3_000_000 + b"</a>"})
    with pytest.raises(FileRejected, match="larger than it declares|corrupt"):
        read_rows(_set_declared_size(honest, "xl/worksheets/sheet1.xml", 10), "liar.xlsx")


@pytest.mark.parametrize("payload", [
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><sst>&lol2;</sst>',
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><sst>&xxe;</sst>',
])
def test_xml_entities_and_dtds_are_refused(payload):
    book = _workbook([["Occurrence No"], ["A1"]])
    with zipfile.ZipFile(io.BytesIO(book)) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    members["xl/sharedStrings.xml"] = payload
    with pytest.raises(FileRejected, match="declares XML entities or a DTD"):
        read_rows(zip_bytes(members), "evil.xlsx")


def test_formulas_are_never_evaluated_and_formula_text_in_csv_stays_text():
    book = _workbook([["Ref", "Value"], ["A1", "=1+2"], ["A2", '=HYPERLINK("http://example.invalid","x")']])
    rows = read_rows(book, "f.xlsx").rows
    assert rows[1][1] in ("", None)  # no cached value was saved, and nothing computed 3
    rows = read_rows(b"Ref,Value\nA1,=1+2\n", "f.csv").rows
    assert rows[1][1] == "=1+2"


def test_size_cap(monkeypatch):
    monkeypatch.setenv("DV_MAX_UPLOAD_MB", "1")
    with pytest.raises(FileRejected, match="over the limit"):
        read_rows(b"a,b\n" * 400_000, "big.csv")


def test_row_cap(monkeypatch):
    monkeypatch.setenv("DV_MAX_ROWS", "10")
    with pytest.raises(FileRejected, match="over the limit"):
        read_rows(b"a,b\n" * 50, "many.csv")
    with pytest.raises(FileRejected, match="over the limit"):
        read_rows(_workbook([["a"]] * 50), "many.xlsx")


def test_named_sheet_missing_lists_the_sheets():
    with pytest.raises(FileRejected, match="no sheet named 'DA Notifications'. Its sheets: Sheet"):
        read_rows(_workbook([["a"]]), "x.xlsx", sheet="DA Notifications")


def test_xlsx_name_on_a_text_file_is_refused():
    with pytest.raises(FileRejected, match="not an Excel workbook"):
        read_rows(b"a,b\n1,2\n", "x.xlsx")


def test_settings_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("DV_MAX_UPLOAD_MB", "7")
    assert get_settings().max_upload_bytes == 7 * 1024 * 1024


def test_walking_the_rows_gives_what_reading_them_all_gives():
    """An import walks the sheet (twice) instead of holding its rows: the rows must be the same, empty columns and
    rows left of and above the data included, so column positions and row numbers are as in the file."""
    from dv.reading import open_sheet

    book = openpyxl.Workbook()
    book.active["C3"] = "Occurrence No"
    book.active["D3"] = "When"
    book.active["C5"] = "A1"
    book.active["E6"] = 2.5
    buf = io.BytesIO()
    book.save(buf)
    data = buf.getvalue()
    rows = read_rows(data, "x.xlsx").rows
    assert rows[2][2] == "Occurrence No" and len(rows) == 6
    sheet = open_sheet(data, "x.xlsx")
    assert list(sheet.iter_rows()) == rows
    assert list(sheet.iter_rows()) == rows  # and again
    assert sheet.head(3) == rows[:3]
    csv_sheet = open_sheet(b"Ref,Value\nA1,1\nA2,2\n", "x.csv")
    assert list(csv_sheet.iter_rows()) == list(csv_sheet.iter_rows()) == [["Ref", "Value"], ["A1", "1"], ["A2", "2"]]


def test_csv_row_cap_holds_when_walking(monkeypatch):
    from dv.reading import open_sheet

    monkeypatch.setenv("DV_MAX_ROWS", "10")
    sheet = open_sheet(b"a,b\n" * 50, "many.csv")
    with pytest.raises(FileRejected, match="over the limit"):
        list(sheet.iter_rows())
